package manager

import (
	"context"
	"fmt"
	"os"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// ---- List ----

// List is a proxy of a list on the server (Python's ListProxy). Indexes
// follow Python: negative ones count from the end; out of range is
// ErrIndex.
type List[T any] struct {
	ref
	c wire.Value[T]
}

// NewList creates a list on the manager's server holding items.
func NewList[T any](ctx context.Context, m *Manager, items []T, opts ...ObjectOption) (*List[T], error) {
	p := &List[T]{}
	c, err := createSeq(ctx, m, kindList, items, opts, &p.ref)
	if err != nil {
		return nil, err
	}
	p.c = c
	return p, nil
}

// ImportResource makes l the receiving process's proxy of a List sent to it.
func (l *List[T]) ImportResource(state []byte, files []*os.File) error {
	if err := l.ref.importFrom(state, files, kindList, typeName[T]()); err != nil {
		return err
	}
	l.c = elemCodec[T](l.ref.c)
	return nil
}

func encodeAll[T any](c wire.Value[T], vs []T) ([][]byte, error) {
	out := make([][]byte, len(vs))
	for i, v := range vs {
		b, err := c.Append(nil, v)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func decodeAll[T any](c wire.Value[T], res [][]byte, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	out := make([]T, len(res))
	for i, b := range res {
		if out[i], err = c.Decode(b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeOne[T any](c wire.Value[T], b []byte, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return c.Decode(b)
}

// Append appends vs (Python's append, or extend for several).
func (l *List[T]) Append(ctx context.Context, vs ...T) error {
	args, err := encodeAll(l.c, vs)
	if err != nil {
		return err
	}
	_, err = l.call(ctx, opListAppend, args...)
	return err
}

// Get returns l[i].
func (l *List[T]) Get(ctx context.Context, i int) (T, error) {
	b, err := one(l.call(ctx, opListGet, idx(i)))
	return decodeOne(l.c, b, err)
}

// Set stores l[i] = v.
func (l *List[T]) Set(ctx context.Context, i int, v T) error {
	b, err := appendVal(l.c, v)
	if err != nil {
		return err
	}
	_, err = l.call(ctx, opListSet, idx(i), b)
	return err
}

// Len returns the list's length.
func (l *List[T]) Len(ctx context.Context) (int, error) { return oneInt(l.call(ctx, opListLen)) }

// All returns a copy of the whole list (Python's l[:]).
func (l *List[T]) All(ctx context.Context) ([]T, error) {
	res, err := l.call(ctx, opListAll)
	return decodeAll(l.c, res, err)
}

// Slice returns l[from:to], with Python's clamping.
func (l *List[T]) Slice(ctx context.Context, from, to int) ([]T, error) {
	res, err := l.call(ctx, opListSlice, idx(from), idx(to))
	return decodeAll(l.c, res, err)
}

// Pop removes and returns l[i] (Python's pop(i); pass -1 for the last).
func (l *List[T]) Pop(ctx context.Context, i int) (T, error) {
	b, err := one(l.call(ctx, opListPop, idx(i)))
	return decodeOne(l.c, b, err)
}

// Insert inserts v before index i (clamped, as in Python).
func (l *List[T]) Insert(ctx context.Context, i int, v T) error {
	b, err := appendVal(l.c, v)
	if err != nil {
		return err
	}
	_, err = l.call(ctx, opListInsert, idx(i), b)
	return err
}

// Clear removes every element.
func (l *List[T]) Clear(ctx context.Context) error {
	_, err := l.call(ctx, opListClear)
	return err
}

// Remove removes the first element equal to v (by encoding), or returns
// an error matching ErrValueNotFound.
func (l *List[T]) Remove(ctx context.Context, v T) error {
	b, err := appendVal(l.c, v)
	if err != nil {
		return err
	}
	_, err = l.call(ctx, opListRemove, b)
	return err
}

// Index returns the index of the first element equal to v, or an error
// matching ErrValueNotFound.
func (l *List[T]) Index(ctx context.Context, v T) (int, error) {
	b, err := appendVal(l.c, v)
	if err != nil {
		return 0, err
	}
	return oneInt(l.call(ctx, opListIndex, b))
}

// ---- Array ----

// Array is a proxy of a fixed-length array on the server (the manager's
// Array(typecode, sequence)): elements are read and written, the length
// never changes.
type Array[T any] struct {
	ref
	c wire.Value[T]
}

// NewArray creates an array on the manager's server holding a copy of items.
func NewArray[T any](ctx context.Context, m *Manager, items []T, opts ...ObjectOption) (*Array[T], error) {
	p := &Array[T]{}
	c, err := createSeq(ctx, m, kindArray, items, opts, &p.ref)
	if err != nil {
		return nil, err
	}
	p.c = c
	return p, nil
}

// ImportResource makes a the receiving process's proxy of an Array sent to it.
func (a *Array[T]) ImportResource(state []byte, files []*os.File) error {
	if err := a.ref.importFrom(state, files, kindArray, typeName[T]()); err != nil {
		return err
	}
	a.c = elemCodec[T](a.ref.c)
	return nil
}

// Get returns a[i].
func (a *Array[T]) Get(ctx context.Context, i int) (T, error) {
	b, err := one(a.call(ctx, opListGet, idx(i)))
	return decodeOne(a.c, b, err)
}

// Set stores a[i] = v.
func (a *Array[T]) Set(ctx context.Context, i int, v T) error {
	b, err := appendVal(a.c, v)
	if err != nil {
		return err
	}
	_, err = a.call(ctx, opListSet, idx(i), b)
	return err
}

// Len returns the array's length.
func (a *Array[T]) Len(ctx context.Context) (int, error) { return oneInt(a.call(ctx, opListLen)) }

// All returns a copy of the array.
func (a *Array[T]) All(ctx context.Context) ([]T, error) {
	res, err := a.call(ctx, opListAll)
	return decodeAll(a.c, res, err)
}

// ---- Value ----

// Value is a proxy of one value on the server (the manager's
// Value(typecode, value)). Incr, Update, Swap and CompareAndSwap are
// atomic on the server.
type Value[T any] struct {
	ref
	c wire.Value[T]
}

// NewValue creates a value on the manager's server, initially v.
func NewValue[T any](ctx context.Context, m *Manager, v T, opts ...ObjectOption) (*Value[T], error) {
	sp, err := checkValue[T]("value")
	if err != nil {
		return nil, err
	}
	if m == nil || m.c == nil {
		return nil, ErrClosed
	}
	c := elemCodec[T](m.c)
	b, err := c.Append(nil, v)
	if err != nil {
		return nil, err
	}
	p := &Value[T]{}
	if err := p.ref.createOf(ctx, m, kindValue, sp, typeName[T](), opts, b); err != nil {
		return nil, err
	}
	p.c = c
	return p, nil
}

// ImportResource makes v the receiving process's proxy of a Value sent to it.
func (v *Value[T]) ImportResource(state []byte, files []*os.File) error {
	if err := v.ref.importFrom(state, files, kindValue, typeName[T]()); err != nil {
		return err
	}
	v.c = elemCodec[T](v.ref.c)
	return nil
}

// Get returns the value.
func (v *Value[T]) Get(ctx context.Context) (T, error) {
	b, err := one(v.call(ctx, opValueGet))
	return decodeOne(v.c, b, err)
}

// Set stores x.
func (v *Value[T]) Set(ctx context.Context, x T) error {
	b, err := appendVal(v.c, x)
	if err != nil {
		return err
	}
	_, err = v.call(ctx, opValueSet, b)
	return err
}

// Swap stores x and returns the previous value.
func (v *Value[T]) Swap(ctx context.Context, x T) (T, error) {
	b, err := appendVal(v.c, x)
	if err != nil {
		return x, err
	}
	ob, err := one(v.call(ctx, opValueSwap, b))
	return decodeOne(v.c, ob, err)
}

// CompareAndSwap stores x if the value is old (compared by encoding) and
// reports whether it did.
func (v *Value[T]) CompareAndSwap(ctx context.Context, old, x T) (bool, error) {
	ob, err := appendVal(v.c, old)
	if err != nil {
		return false, err
	}
	nb, err := appendVal(v.c, x)
	if err != nil {
		return false, err
	}
	return oneBool(v.call(ctx, opValueCAS, ob, nb))
}

// Incr adds delta on the server, atomically, and returns the sum. T must
// be a number. Integers wrap around at T's width as Go's + does, and
// floats add at T's precision, whatever the connection's encoding.
func (v *Value[T]) Incr(ctx context.Context, delta T) (T, error) {
	nk := numArg[T]()
	if nk == nil {
		return delta, fmt.Errorf("%w: Incr of a %s, not a number", ErrTypeMismatch, typeName[T]())
	}
	db, err := appendVal(v.c, delta)
	if err != nil {
		return delta, err
	}
	b, err := one(v.call(ctx, opValueIncr, nk, db))
	return decodeOne(v.c, b, err)
}

// Update replaces the value with fn(value, true) on the server,
// atomically, and returns it; fn is registered with RegisterUpdate.
func (v *Value[T]) Update(ctx context.Context, fn UpdateFunc[T]) (T, error) {
	b, err := one(v.call(ctx, opValueUpdateFn, []byte(fn.name)))
	return decodeOne(v.c, b, err)
}

// ---- Namespace ----

// Namespace is a proxy of a namespace on the server (Python's
// manager.Namespace(): attributes set by one process are seen by all).
// Attributes are typed: GetAttr[T] of an attribute stored as another
// type returns ErrTypeMismatch.
type Namespace struct{ ref }

// NewNamespace creates a namespace on the manager's server.
func NewNamespace(ctx context.Context, m *Manager, opts ...ObjectOption) (*Namespace, error) {
	p := &Namespace{}
	if err := p.ref.create(ctx, m, kindNamespace, "", opts); err != nil {
		return nil, err
	}
	return p, nil
}

// ImportResource makes n the receiving process's proxy of a Namespace sent to it.
func (n *Namespace) ImportResource(state []byte, files []*os.File) error {
	return n.ref.importFrom(state, files, kindNamespace, "")
}

// SetAttr sets attribute name of ns to v (Python's ns.name = v).
func SetAttr[T any](ctx context.Context, ns *Namespace, name string, v T) error {
	sp, err := checkValue[T]("attribute")
	if err != nil {
		return err
	}
	if ns == nil || ns.ref.c == nil {
		return ErrClosed
	}
	b, err := elemCodec[T](ns.ref.c).Append(nil, v)
	if err != nil {
		return err
	}
	args := [][]byte{[]byte(name), []byte(typeName[T]()), b}
	if sp != nil {
		// The attribute is a reference: the spec tells the server so.
		args = append(args, append([]byte{sp.kind}, sp.desc...))
	}
	_, err = ns.call(ctx, opNsSet, args...)
	return err
}

// GetAttr returns attribute name of ns (Python's ns.name): an error
// matching ErrKeyNotFound if it is not set, ErrTypeMismatch if it holds
// another type.
func GetAttr[T any](ctx context.Context, ns *Namespace, name string) (T, error) {
	var zero T
	if ns == nil || ns.ref.c == nil {
		return zero, ErrClosed
	}
	b, err := one(ns.call(ctx, opNsGet, []byte(name), []byte(typeName[T]())))
	return decodeOne(elemCodec[T](ns.ref.c), b, err)
}

// Delete removes an attribute, or returns an error matching ErrKeyNotFound.
func (n *Namespace) Delete(ctx context.Context, name string) error {
	_, err := n.call(ctx, opNsDel, []byte(name))
	return err
}

// Names returns the attributes' names, sorted.
func (n *Namespace) Names(ctx context.Context) ([]string, error) {
	res, err := n.call(ctx, opNsNames)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(res))
	for i, b := range res {
		out[i] = string(b)
	}
	return out, nil
}

// ---- Queue and JoinableQueue ----

// Queue is a proxy of a FIFO queue on the server (the manager's Queue()):
// Put blocks while a bounded queue is full, Get while it is empty; TryPut
// and TryGet return ErrFull and ErrEmpty instead (ipc's sentinels, as
// Python's put_nowait and get_nowait raise queue.Full and queue.Empty).
type Queue[T any] struct {
	ref
	c wire.Value[T]
}

// NewQueue creates a queue on the manager's server holding at most
// maxsize items (0: unbounded).
func NewQueue[T any](ctx context.Context, m *Manager, maxsize int, opts ...ObjectOption) (*Queue[T], error) {
	q := &Queue[T]{}
	if err := q.create(ctx, m, kindQueue, maxsize, opts); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *Queue[T]) create(ctx context.Context, m *Manager, kind byte, maxsize int, opts []ObjectOption) error {
	sp, err := checkValue[T]("item")
	if err != nil {
		return err
	}
	if maxsize < 0 {
		return fmt.Errorf("manager: queue of maxsize %d", maxsize)
	}
	if err := q.ref.createOf(ctx, m, kind, sp, typeName[T](), opts, putU64(uint64(maxsize))); err != nil {
		return err
	}
	q.c = elemCodec[T](m.c)
	return nil
}

// ImportResource makes q the receiving process's proxy of a Queue sent to it.
func (q *Queue[T]) ImportResource(state []byte, files []*os.File) error {
	if err := q.ref.importFrom(state, files, kindQueue, typeName[T]()); err != nil {
		return err
	}
	q.c = elemCodec[T](q.ref.c)
	return nil
}

func (q *Queue[T]) put(ctx context.Context, v T, try bool) error {
	b, err := appendVal(q.c, v)
	if err != nil {
		return err
	}
	t := []byte{0}
	if try {
		t[0] = 1
	}
	_, err = q.call(ctx, opQueuePut, b, t)
	return err
}

func (q *Queue[T]) get(ctx context.Context, try bool) (T, error) {
	t := []byte{0}
	if try {
		t[0] = 1
	}
	b, err := one(q.call(ctx, opQueueGet, t))
	return decodeOne(q.c, b, err)
}

// Put appends v, waiting while the queue is full until ctx ends.
func (q *Queue[T]) Put(ctx context.Context, v T) error { return q.put(ctx, v, false) }

// TryPut appends v, or returns ErrFull at once.
func (q *Queue[T]) TryPut(v T) error { return q.put(context.Background(), v, true) }

// Get removes and returns the first item, waiting while the queue is
// empty until ctx ends.
func (q *Queue[T]) Get(ctx context.Context) (T, error) { return q.get(ctx, false) }

// TryGet removes and returns the first item, or returns ErrEmpty at once.
func (q *Queue[T]) TryGet() (T, error) { return q.get(context.Background(), true) }

// Len returns the number of items (Python's qsize).
func (q *Queue[T]) Len(ctx context.Context) (int, error) { return oneInt(q.call(ctx, opQueueLen)) }

// JoinableQueue is a Queue whose consumers call TaskDone for every item
// they finished and whose Join waits until every item put was done.
type JoinableQueue[T any] struct{ Queue[T] }

// NewJoinableQueue creates a joinable queue on the manager's server.
func NewJoinableQueue[T any](ctx context.Context, m *Manager, maxsize int, opts ...ObjectOption) (*JoinableQueue[T], error) {
	q := &JoinableQueue[T]{}
	if err := q.Queue.create(ctx, m, kindJoinableQueue, maxsize, opts); err != nil {
		return nil, err
	}
	return q, nil
}

// ImportResource makes q the receiving process's proxy of a JoinableQueue sent to it.
func (q *JoinableQueue[T]) ImportResource(state []byte, files []*os.File) error {
	if err := q.ref.importFrom(state, files, kindJoinableQueue, typeName[T]()); err != nil {
		return err
	}
	q.c = elemCodec[T](q.ref.c)
	return nil
}

// TaskDone marks one item taken from the queue as done; more calls than
// items put return an error matching both ErrOverReleased (Python's
// ValueError) and ipc.ErrTaskDone, so code written for an
// ipc.JoinableQueue works with this proxy too.
func (q *JoinableQueue[T]) TaskDone(ctx context.Context) error {
	_, err := q.call(ctx, opQueueTaskDone)
	return err
}

// Join waits until every item put was marked done, or ctx ends.
func (q *JoinableQueue[T]) Join(ctx context.Context) error {
	_, err := q.call(ctx, opQueueJoin)
	return err
}

// createSeq creates a List or an Array of items on m's server into r and
// returns the element codec: the two differ only in their kind.
func createSeq[T any](ctx context.Context, m *Manager, kind uint8, items []T, opts []ObjectOption, r *ref) (wire.Value[T], error) {
	sp, err := checkValue[T]("element")
	if err != nil {
		return nil, err
	}
	if m == nil || m.c == nil {
		return nil, ErrClosed
	}
	c := elemCodec[T](m.c)
	init, err := encodeAll(c, items)
	if err != nil {
		return nil, err
	}
	if err := r.createOf(ctx, m, kind, sp, typeName[T](), opts, init...); err != nil {
		return nil, err
	}
	return c, nil
}
