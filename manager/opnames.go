package manager

import "fmt"

var opNames = map[byte]string{
	opHello: "hello", opCreate: "create", opRelease: "release", opHandoff: "handoff", opClaim: "claim", opMethods: "methods",
	opDictSet: "Dict.Set", opDictGet: "Dict.Get", opDictGetOr: "Dict.GetOr", opDictDel: "Dict.Delete", opDictHas: "Dict.Has",
	opDictLen: "Dict.Len", opDictKeys: "Dict.Keys", opDictValues: "Dict.Values", opDictItems: "Dict.Items", opDictPop: "Dict.Pop",
	opDictSetDefault: "Dict.SetDefault", opDictClear: "Dict.Clear", opDictIncr: "Dict.Incr", opDictUpdateFn: "Dict.Update",
	opDictUpdate: "Dict.SetMany",
	opListAppend: "List.Append", opListExtend: "List.Extend", opListGet: "List.Get", opListSet: "List.Set", opListLen: "List.Len",
	opListAll: "List.All", opListPop: "List.Pop", opListInsert: "List.Insert", opListClear: "List.Clear", opListRemove: "List.Remove",
	opListIndex: "List.Index", opListSlice: "List.Slice",
	opValueGet: "Value.Get", opValueSet: "Value.Set", opValueIncr: "Value.Incr", opValueUpdateFn: "Value.Update",
	opValueSwap: "Value.Swap", opValueCAS: "Value.CompareAndSwap",
	opNsGet: "Namespace.Get", opNsSet: "Namespace.Set", opNsDel: "Namespace.Delete", opNsNames: "Namespace.Names",
	opQueuePut: "Queue.Put", opQueueGet: "Queue.Get", opQueueLen: "Queue.Len", opQueueTaskDone: "Queue.TaskDone", opQueueJoin: "Queue.Join",
	opAcquire: "Acquire", opRelease1: "Release", opMarkConsistent: "MarkConsistent", opSemValue: "Semaphore.Value",
	opCondWait: "Condition.Wait", opCondNotify: "Condition.Notify",
	opEventSet: "Event.Set", opEventClear: "Event.Clear", opEventIsSet: "Event.IsSet", opEventWait: "Event.Wait",
	opBarrierWait: "Barrier.Wait", opBarrierAbort: "Barrier.Abort", opBarrierReset: "Barrier.Reset", opBarrierInfo: "Barrier.Info",
	opCall: "Call", opSettle: "settle", opQueueUnget: "Queue.Unget",
}

func opName(op byte) string {
	if n, ok := opNames[op]; ok {
		return n
	}
	return fmt.Sprintf("op%d", op)
}
