package manager

// Object kinds, as the server knows them.
const (
	kindDict byte = iota + 1
	kindList
	kindValue
	kindArray
	kindNamespace
	kindQueue
	kindJoinableQueue
	kindLock
	kindRLock
	kindSemaphore
	kindBoundedSemaphore
	kindEvent
	kindCondition
	kindBarrier
	kindCustom
	numKinds
)

var kindNames = [numKinds]string{"", "Dict", "List", "Value", "Array", "Namespace", "Queue", "JoinableQueue",
	"Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event", "Condition", "Barrier", "custom"}

func kindName(k byte) string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// Operations. Those on object 0 address the server.
const (
	// server
	opHello   byte = iota + 1 // args: heartbeat ms, raw wanted (1 byte) → instance, raw (1 byte), heartbeat ms
	opCreate                  // args: kind, desc, name ("" unnamed), init... → object id
	opRelease                 // args: object ids (u64 each) → nothing
	opHandoff                 // args: object id → token
	opClaim                   // args: object id, token → nothing (a reference for this connection)
	opMethods                 // args: object id → per method: name, in, out

	// dict
	opDictSet
	opDictGet
	opDictGetOr // key, default → value
	opDictDel
	opDictHas
	opDictLen
	opDictKeys
	opDictValues
	opDictItems
	opDictPop
	opDictSetDefault
	opDictClear
	opDictIncr
	opDictUpdateFn
	opDictUpdate // k1, v1, k2, v2...

	// list and array
	opListAppend
	opListExtend
	opListGet
	opListSet
	opListLen
	opListAll
	opListPop
	opListInsert
	opListClear
	opListRemove
	opListIndex
	opListSlice // from, to

	// value
	opValueGet
	opValueSet
	opValueIncr
	opValueUpdateFn
	opValueSwap // new → old
	opValueCAS  // old, new → swapped (1 byte)

	// namespace
	opNsGet
	opNsSet
	opNsDel
	opNsNames

	// queues
	opQueuePut // value, try (1 byte)
	opQueueGet // try (1 byte)
	opQueueLen // → n
	opQueueTaskDone
	opQueueJoin

	// locks, semaphores, conditions
	opAcquire // try (1 byte)
	opRelease1
	opMarkConsistent
	opSemValue
	opCondWait
	opCondNotify // n

	// event
	opEventSet
	opEventClear
	opEventIsSet
	opEventWait

	// barrier
	opBarrierWait
	opBarrierAbort
	opBarrierReset
	opBarrierInfo

	// custom
	opCall // method, args...

	// server, added after the others so that no number changes
	opSettle // args: hand-off token, delivered (1 byte) → nothing
	// opQueueUnget puts an item a Get took back at the queue's front: a
	// client's undo of a Get whose answer came after its caller gave up
	// (client.undoLate). args: the item as the Get handed it out.
	opQueueUnget
)
