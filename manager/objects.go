package manager

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"github.com/multiproc-go/multiproc/ipc"
	"slices"
	"sync"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// object is one object the server owns. handle runs a request on it;
// requests for which blocks is true run on a goroutine of their own.
type object interface {
	handle(ctx context.Context, c *sconn, r *request) ([][]byte, error)
	blocks(r *request) bool
	// connGone is called once for each connection that touched the
	// object (see sconn.touch) when that connection ends: what it held is
	// released as a dead holder's.
	connGone(c *sconn)
	// kill marks the object gone and wakes every waiter, which returns
	// ErrNoSuchObject.
	kill()
}

// base is the lock and the change broadcast every object has.
type base struct {
	mu   sync.Mutex
	ch   chan struct{} // closed at the next change; nil when nobody waits
	dead bool
}

func (b *base) changed() {
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// wait sleeps until the next change or ctx's end; b.mu is held on entry
// and on return.
func (b *base) wait(ctx context.Context) error {
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	ch := b.ch
	b.mu.Unlock()
	var err error
	select {
	case <-ch:
	case <-ctx.Done():
		err = ctx.Err()
	}
	b.mu.Lock()
	if b.dead {
		return fmt.Errorf("%w: released while waiting", ErrNoSuchObject)
	}
	return err
}

func (b *base) kill() {
	b.mu.Lock()
	b.dead = true
	b.changed()
	b.mu.Unlock()
}

// lock takes b.mu and fails for a dead object.
func (b *base) lock() error {
	b.mu.Lock()
	if b.dead {
		b.mu.Unlock()
		return ErrNoSuchObject
	}
	return nil
}

func (b *base) connGone(*sconn) {}

// newObject makes an object of kind; spec, when not nil, says that its
// elements are references (a Dict's values, a List's or an Array's
// items, a Value, a Queue's items), and the references in init are taken.
func newObject(ctx context.Context, c *sconn, kind byte, desc string, spec *elemSpec, init [][]byte) (object, error) {
	raw := c.s.raw
	h := holder{s: c.s, spec: spec}
	switch kind {
	case kindDict, kindList, kindArray, kindValue, kindQueue, kindJoinableQueue:
	default:
		if spec != nil {
			return nil, fmt.Errorf("%w: a %s holds no elements", ErrTypeMismatch, kindName(kind))
		}
	}
	switch kind {
	case kindDict:
		return &dictObj{holder: h, raw: raw, m: map[string]*dent{}}, nil
	case kindList, kindArray:
		items := cloneAll(init)
		if err := h.hold(items...); err != nil {
			return nil, err
		}
		return &listObj{holder: h, raw: raw, items: items, fixed: kind == kindArray}, nil
	case kindValue:
		if len(init) != 1 {
			return nil, fmt.Errorf("%w: a Value needs its initial value", wire.ErrCorrupt)
		}
		v := bytes.Clone(init[0])
		if err := h.hold(v); err != nil {
			return nil, err
		}
		return &valueObj{holder: h, raw: raw, v: v}, nil
	case kindNamespace:
		return &nsObj{holder: h, m: map[string]nsval{}}, nil
	case kindQueue, kindJoinableQueue:
		n, err := initInt(init)
		if err != nil {
			return nil, err
		}
		return &queueObj{holder: h, max: int(n)}, nil
	case kindLock, kindRLock:
		return &lockObj{reentrant: kind == kindRLock}, nil
	case kindSemaphore, kindBoundedSemaphore:
		n, err := initInt(init)
		if err != nil {
			return nil, err
		}
		s := &semObj{value: int(n)}
		if kind == kindBoundedSemaphore {
			s.bounded, s.max, s.units = true, int(n), map[*sconn]int{}
		}
		return s, nil
	case kindEvent:
		return &eventObj{}, nil
	case kindCondition:
		id, err := initInt(init)
		if err != nil {
			return nil, err
		}
		c.s.mu.Lock()
		e := c.s.objs[id]
		c.s.mu.Unlock()
		if e == nil {
			return nil, fmt.Errorf("%w: the condition's lock", ErrNoSuchObject)
		}
		l, ok := e.obj.(*lockObj)
		if !ok {
			return nil, fmt.Errorf("%w: a condition's lock must be a Lock or RLock", ErrTypeMismatch)
		}
		return &condObj{l: l}, nil
	case kindBarrier:
		n, err := initInt(init)
		if err != nil {
			return nil, err
		}
		if n == 0 || n > 1<<20 {
			return nil, fmt.Errorf("manager: a barrier of %d parties", n)
		}
		return &barrierObj{parties: int(n), waiting: map[*sconn]int{}}, nil
	case kindCustom:
		t := lookupType(desc)
		if t == nil {
			return nil, fmt.Errorf("%w: the manager has no type %q (RegisterType it in the server's program)", ErrNotRegistered, desc)
		}
		return t.newObj(ctx)
	}
	return nil, fmt.Errorf("%w: object kind %d", ErrNoSuchMethod, kind)
}

func initInt(init [][]byte) (uint64, error) {
	if len(init) != 1 {
		return 0, fmt.Errorf("%w: %d initial arguments", wire.ErrCorrupt, len(init))
	}
	return u64(init[0])
}

func cloneAll(bs [][]byte) [][]byte {
	out := make([][]byte, len(bs))
	for i, b := range bs {
		out[i] = bytes.Clone(b)
	}
	return out
}

func want(r *request, n int) error {
	if len(r.args) != n {
		return errArgs(r)
	}
	return nil
}

func flag(b []byte) bool { return len(b) == 1 && b[0] != 0 }

func boolRes(v bool) [][]byte {
	if v {
		return [][]byte{{1}}
	}
	return [][]byte{{0}}
}

func unknownOp(k byte, r *request) error {
	return fmt.Errorf("%w: a %s has no operation %s", ErrNoSuchMethod, kindName(k), opName(r.op))
}

// ---- Dict ----

type dent struct {
	seq uint64
	v   []byte
}

type dictObj struct {
	base
	holder
	raw bool
	m   map[string]*dent
	seq uint64
}

func (d *dictObj) blocks(*request) bool { return false }

// ordered returns the keys in insertion order, as Python's dicts keep it.
func (d *dictObj) ordered() []string {
	ks := make([]string, 0, len(d.m))
	for k := range d.m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b string) int { return cmp.Compare(d.m[a].seq, d.m[b].seq) })
	return ks
}

// set stores d[k] = v, giving back the reference an old value held.
func (d *dictObj) set(k string, v []byte) {
	if e := d.m[k]; e != nil {
		d.release(e.v)
		e.v = v
		return
	}
	d.seq++
	d.m[k] = &dent{seq: d.seq, v: v}
}

func (d *dictObj) kill() {
	d.mu.Lock()
	var held [][]byte
	if !d.dead && d.spec != nil {
		for _, e := range d.m {
			held = append(held, e.v)
		}
	}
	d.dead = true
	d.m = map[string]*dent{}
	d.changed()
	d.mu.Unlock()
	d.killHeld(held)
}

func (d *dictObj) handle(ctx context.Context, c *sconn, r *request) ([][]byte, error) {
	if err := d.lock(); err != nil {
		return nil, err
	}
	defer d.unlock(&d.mu)
	a := r.args
	switch r.op {
	case opDictSet:
		if err := want(r, 2); err != nil {
			return nil, err
		}
		v := bytes.Clone(a[1])
		if err := d.hold(v); err != nil {
			return nil, err
		}
		d.set(string(a[0]), v)
		return nil, nil
	case opDictGet, opDictPop:
		if err := want(r, 1); err != nil {
			return nil, err
		}
		e := d.m[string(a[0])]
		if e == nil {
			return nil, ErrKeyNotFound
		}
		res, err := d.out1(c, e.v)
		if err != nil {
			return nil, err
		}
		if r.op == opDictPop {
			delete(d.m, string(a[0]))
			d.release(e.v) // the reader's lent reference keeps it
		}
		return res, nil
	case opDictGetOr:
		if err := want(r, 2); err != nil {
			return nil, err
		}
		if e := d.m[string(a[0])]; e != nil {
			return d.out1(c, e.v)
		}
		return d.out1(c, a[1])
	case opDictDel:
		if err := want(r, 1); err != nil {
			return nil, err
		}
		e := d.m[string(a[0])]
		if e == nil {
			return nil, ErrKeyNotFound
		}
		delete(d.m, string(a[0]))
		d.release(e.v)
		return nil, nil
	case opDictHas:
		if err := want(r, 1); err != nil {
			return nil, err
		}
		return boolRes(d.m[string(a[0])] != nil), nil
	case opDictLen:
		return [][]byte{putU64(uint64(len(d.m)))}, nil
	case opDictKeys, opDictValues, opDictItems:
		ks := d.ordered()
		res := make([][]byte, 0, len(ks)*2)
		for _, k := range ks {
			switch r.op {
			case opDictKeys:
				res = append(res, []byte(k))
			case opDictValues:
				res = append(res, d.m[k].v)
			default:
				res = append(res, []byte(k), d.m[k].v)
			}
		}
		if d.spec == nil || r.op == opDictKeys {
			return res, nil
		}
		if r.op == opDictValues {
			return d.out(c, res...)
		}
		vs := make([][]byte, len(ks))
		for i := range ks {
			vs[i] = res[2*i+1]
		}
		lent, err := d.out(c, vs...)
		if err != nil {
			return nil, err
		}
		for i := range ks {
			res[2*i+1] = lent[i]
		}
		return res, nil
	case opDictSetDefault:
		if err := want(r, 2); err != nil {
			return nil, err
		}
		if e := d.m[string(a[0])]; e != nil {
			return d.out1(c, e.v)
		}
		v := bytes.Clone(a[1])
		if err := d.hold(v); err != nil {
			return nil, err
		}
		d.set(string(a[0]), v)
		return d.out1(c, v)
	case opDictClear:
		for _, e := range d.m {
			d.release(e.v)
		}
		clear(d.m)
		return nil, nil
	case opDictIncr:
		if err := want(r, 3); err != nil {
			return nil, err
		}
		if err := d.refuse(r); err != nil {
			return nil, err
		}
		if len(a[1]) != 1 && len(a[1]) != 2 {
			return nil, errArgs(r)
		}
		e := d.m[string(a[0])]
		if e == nil {
			v := bytes.Clone(a[2])
			d.set(string(a[0]), v)
			return [][]byte{v}, nil
		}
		nv, err := addNumbers(d.raw, a[1], e.v, a[2])
		if err != nil {
			return nil, err
		}
		e.v = nv
		return [][]byte{nv}, nil
	case opDictUpdateFn:
		if err := want(r, 2); err != nil {
			return nil, err
		}
		if err := d.refuse(r); err != nil {
			return nil, err
		}
		fn := lookupUpdate(string(a[1]))
		if fn == nil {
			return nil, fmt.Errorf("%w: update function %q", ErrNotRegistered, a[1])
		}
		e := d.m[string(a[0])]
		var old []byte
		if e != nil {
			old = e.v
		}
		nv, err := fn.run(d.raw, old, e != nil)
		if err != nil {
			return nil, err
		}
		d.set(string(a[0]), nv)
		return [][]byte{nv}, nil
	case opDictUpdate:
		if len(a)%2 != 0 {
			return nil, errArgs(r)
		}
		vs := make([][]byte, 0, len(a)/2)
		for i := 1; i < len(a); i += 2 {
			vs = append(vs, bytes.Clone(a[i]))
		}
		if err := d.hold(vs...); err != nil {
			return nil, err
		}
		for i := 0; i < len(a); i += 2 {
			d.set(string(a[i]), vs[i/2])
		}
		return nil, nil
	}
	return nil, unknownOp(kindDict, r)
}

// ---- List and Array ----

type listObj struct {
	base
	holder
	raw   bool
	fixed bool // an Array: no length changes
	items [][]byte
}

func (l *listObj) blocks(*request) bool { return false }

// index reads a Python index (negative counts from the end) into [0, n).
func index(b []byte, n int, insert bool) (int, error) {
	u, err := u64(b)
	if err != nil {
		return 0, err
	}
	i := int(int64(u))
	if i < 0 {
		i += n
	}
	if insert {
		return max(0, min(i, n)), nil
	}
	if i < 0 || i >= n {
		return 0, fmt.Errorf("%w: index %d, length %d", ErrIndex, int64(u), n)
	}
	return i, nil
}

func (l *listObj) kill() {
	l.mu.Lock()
	var held [][]byte
	if !l.dead {
		held = l.items
	}
	l.dead, l.items = true, nil
	l.changed()
	l.mu.Unlock()
	l.killHeld(held)
}

func (l *listObj) handle(ctx context.Context, c *sconn, r *request) ([][]byte, error) {
	if err := l.lock(); err != nil {
		return nil, err
	}
	defer l.unlock(&l.mu)
	k := kindList
	if l.fixed {
		k = kindArray
		switch r.op {
		case opListAppend, opListExtend, opListPop, opListInsert, opListClear, opListRemove:
			return nil, unknownOp(k, r)
		}
	}
	a := r.args
	switch r.op {
	case opListAppend, opListExtend:
		vs := cloneAll(a)
		if err := l.hold(vs...); err != nil {
			return nil, err
		}
		l.items = append(l.items, vs...)
		return nil, nil
	case opListGet:
		if err := want(r, 1); err != nil {
			return nil, err
		}
		i, err := index(a[0], len(l.items), false)
		if err != nil {
			return nil, err
		}
		return l.out1(c, l.items[i])
	case opListSet:
		if err := want(r, 2); err != nil {
			return nil, err
		}
		i, err := index(a[0], len(l.items), false)
		if err != nil {
			return nil, err
		}
		v := bytes.Clone(a[1])
		if err := l.hold(v); err != nil {
			return nil, err
		}
		l.release(l.items[i])
		l.items[i] = v
		return nil, nil
	case opListLen:
		return [][]byte{putU64(uint64(len(l.items)))}, nil
	case opListAll:
		return l.out(c, l.items...)
	case opListSlice:
		if err := want(r, 2); err != nil {
			return nil, err
		}
		from, err := index(a[0], len(l.items), true)
		if err != nil {
			return nil, err
		}
		to, err := index(a[1], len(l.items), true)
		if err != nil {
			return nil, err
		}
		if to < from {
			return nil, nil
		}
		return l.out(c, l.items[from:to]...)
	case opListPop:
		if err := want(r, 1); err != nil {
			return nil, err
		}
		i, err := index(a[0], len(l.items), false)
		if err != nil {
			return nil, err
		}
		v := l.items[i]
		res, err := l.out1(c, v)
		if err != nil {
			return nil, err
		}
		l.items = slices.Delete(l.items, i, i+1)
		l.release(v) // the reader's lent reference keeps it
		return res, nil
	case opListInsert:
		if err := want(r, 2); err != nil {
			return nil, err
		}
		i, err := index(a[0], len(l.items), true)
		if err != nil {
			return nil, err
		}
		v := bytes.Clone(a[1])
		if err := l.hold(v); err != nil {
			return nil, err
		}
		l.items = slices.Insert(l.items, i, v)
		return nil, nil
	case opListClear:
		l.release(l.items...)
		l.items = nil
		return nil, nil
	case opListRemove, opListIndex:
		if err := want(r, 1); err != nil {
			return nil, err
		}
		i := slices.IndexFunc(l.items, func(b []byte) bool { return bytes.Equal(b, a[0]) })
		if i < 0 {
			return nil, ErrValueNotFound
		}
		if r.op == opListIndex {
			return [][]byte{putU64(uint64(i))}, nil
		}
		l.release(l.items[i])
		l.items = slices.Delete(l.items, i, i+1)
		return nil, nil
	}
	return nil, unknownOp(k, r)
}

// ---- Value ----

type valueObj struct {
	base
	holder
	raw bool
	v   []byte
}

func (v *valueObj) blocks(*request) bool { return false }

func (v *valueObj) kill() {
	v.mu.Lock()
	var held [][]byte
	if !v.dead {
		held = [][]byte{v.v}
	}
	v.dead, v.v = true, nil
	v.changed()
	v.mu.Unlock()
	v.killHeld(held)
}

func (v *valueObj) handle(ctx context.Context, c *sconn, r *request) ([][]byte, error) {
	if err := v.lock(); err != nil {
		return nil, err
	}
	defer v.unlock(&v.mu)
	a := r.args
	switch r.op {
	case opValueGet:
		return v.out1(c, v.v)
	case opValueSet, opValueSwap:
		if err := want(r, 1); err != nil {
			return nil, err
		}
		nv := bytes.Clone(a[0])
		if err := v.hold(nv); err != nil {
			return nil, err
		}
		old := v.v
		var res [][]byte
		if r.op == opValueSwap {
			var err error
			if res, err = v.out1(c, old); err != nil {
				v.release(nv)
				return nil, err
			}
		}
		v.v = nv
		v.release(old)
		return res, nil
	case opValueCAS:
		if err := want(r, 2); err != nil {
			return nil, err
		}
		if !bytes.Equal(v.v, a[0]) {
			return boolRes(false), nil
		}
		nv := bytes.Clone(a[1])
		if err := v.hold(nv); err != nil {
			return nil, err
		}
		v.release(v.v)
		v.v = nv
		return boolRes(true), nil
	case opValueIncr:
		if err := want(r, 2); err != nil {
			return nil, err
		}
		if err := v.refuse(r); err != nil {
			return nil, err
		}
		if len(a[0]) != 1 && len(a[0]) != 2 {
			return nil, errArgs(r)
		}
		nv, err := addNumbers(v.raw, a[0], v.v, a[1])
		if err != nil {
			return nil, err
		}
		v.v = nv
		return [][]byte{nv}, nil
	case opValueUpdateFn:
		if err := want(r, 1); err != nil {
			return nil, err
		}
		if err := v.refuse(r); err != nil {
			return nil, err
		}
		fn := lookupUpdate(string(a[0]))
		if fn == nil {
			return nil, fmt.Errorf("%w: update function %q", ErrNotRegistered, a[0])
		}
		nv, err := fn.run(v.raw, v.v, true)
		if err != nil {
			return nil, err
		}
		v.v = nv
		return [][]byte{nv}, nil
	}
	return nil, unknownOp(kindValue, r)
}

// ---- Namespace ----

type nsval struct {
	typ  string
	v    []byte
	spec *elemSpec // the attribute holds a reference
}

type nsObj struct {
	base
	holder // spec nil: each attribute has its own
	m      map[string]nsval
}

func (n *nsObj) kill() {
	n.mu.Lock()
	var held [][]byte
	if !n.dead {
		for _, e := range n.m {
			if e.spec != nil {
				held = append(held, e.v)
			}
		}
	}
	n.dead, n.m = true, map[string]nsval{}
	n.changed()
	n.mu.Unlock()
	for _, o := range n.s.release(held...) {
		o.kill()
	}
}

// drop gives back the reference attribute e held, if any.
func (n *nsObj) dropAttr(e nsval) {
	if e.spec != nil {
		n.drop = append(n.drop, n.s.release(e.v)...)
	}
}

func (n *nsObj) blocks(*request) bool { return false }

func (n *nsObj) handle(ctx context.Context, c *sconn, r *request) ([][]byte, error) {
	if err := n.lock(); err != nil {
		return nil, err
	}
	defer n.unlock(&n.mu)
	a := r.args
	switch r.op {
	case opNsGet:
		if err := want(r, 2); err != nil {
			return nil, err
		}
		e, ok := n.m[string(a[0])]
		if !ok {
			return nil, fmt.Errorf("%w: attribute %q", ErrKeyNotFound, a[0])
		}
		if e.typ != string(a[1]) {
			return nil, fmt.Errorf("%w: attribute %q holds a %s, not a %s", ErrTypeMismatch, a[0], e.typ, a[1])
		}
		if e.spec != nil {
			b, err := n.s.lend(c, e.spec, e.v)
			if err != nil {
				return nil, err
			}
			return [][]byte{b}, nil
		}
		return [][]byte{e.v}, nil
	case opNsSet:
		// name, type, value[, element spec: the value is a reference]
		if len(a) != 3 && len(a) != 4 {
			return nil, errArgs(r)
		}
		nv := nsval{typ: string(a[1]), v: bytes.Clone(a[2])}
		if len(a) == 4 {
			sp, err := parseSpec(a[3])
			if err != nil {
				return nil, err
			}
			if sp == nil {
				return nil, errArgs(r)
			}
			if err := n.s.hold(sp, nv.v); err != nil {
				return nil, err
			}
			nv.spec = sp
		}
		if old, ok := n.m[string(a[0])]; ok {
			n.dropAttr(old)
		}
		n.m[string(a[0])] = nv
		return nil, nil
	case opNsDel:
		if err := want(r, 1); err != nil {
			return nil, err
		}
		old, ok := n.m[string(a[0])]
		if !ok {
			return nil, fmt.Errorf("%w: attribute %q", ErrKeyNotFound, a[0])
		}
		n.dropAttr(old)
		delete(n.m, string(a[0]))
		return nil, nil
	case opNsNames:
		var res [][]byte
		for k := range n.m {
			res = append(res, []byte(k))
		}
		slices.SortFunc(res, bytes.Compare)
		return res, nil
	}
	return nil, unknownOp(kindNamespace, r)
}

// ---- Queue and JoinableQueue ----

type queueObj struct {
	base
	holder
	max        int // 0: unbounded
	items      [][]byte
	unfinished int
}

func (q *queueObj) blocks(r *request) bool {
	switch r.op {
	case opQueuePut:
		return len(r.args) == 2 && !flag(r.args[1]) && q.max > 0
	case opQueueGet:
		return len(r.args) == 1 && !flag(r.args[0])
	case opQueueJoin:
		return true
	}
	return false
}

func (q *queueObj) kill() {
	q.mu.Lock()
	var held [][]byte
	if !q.dead {
		held = q.items
	}
	q.dead, q.items = true, nil
	q.changed()
	q.mu.Unlock()
	q.killHeld(held)
}

func (q *queueObj) handle(ctx context.Context, c *sconn, r *request) ([][]byte, error) {
	if err := q.lock(); err != nil {
		return nil, err
	}
	defer q.unlock(&q.mu)
	a := r.args
	switch r.op {
	case opQueuePut:
		if err := want(r, 2); err != nil {
			return nil, err
		}
		for q.max > 0 && len(q.items) >= q.max {
			if flag(a[1]) {
				return nil, ErrFull
			}
			if err := q.wait(ctx); err != nil {
				return nil, err
			}
		}
		v := bytes.Clone(a[0])
		if err := q.hold(v); err != nil {
			return nil, err
		}
		q.items = append(q.items, v)
		q.unfinished++
		q.changed()
		return nil, nil
	case opQueueGet:
		if err := want(r, 1); err != nil {
			return nil, err
		}
		for len(q.items) == 0 {
			if flag(a[0]) {
				return nil, ErrEmpty
			}
			if err := q.wait(ctx); err != nil {
				return nil, err
			}
		}
		v := q.items[0]
		res, err := q.out1(c, v)
		if err != nil {
			return nil, err
		}
		q.items[0] = nil
		q.items = q.items[1:]
		q.release(v) // the reader's lent reference keeps it
		q.changed()
		return res, nil
	case opQueueUnget:
		// At the front, where the Get took it, even if the queue has
		// filled meanwhile (it was counted there before); the unfinished
		// count is untouched, as the Get left it.
		if err := want(r, 1); err != nil {
			return nil, err
		}
		v, lent := a[0], false
		if q.spec != nil && len(v) > 0 {
			// A lent reference (stored form and description; a nil one is
			// empty): the queue takes its own reference again and c's
			// lent one goes.
			if len(v) < refLen {
				return nil, errArgs(r)
			}
			v, lent = v[:refLen], true
			// Only a reference lent to c goes back: one c never got
			// would be stored without a reference of its own, and the
			// queue would hold an object that can die under it.
			id := binary.LittleEndian.Uint64(v[8:])
			c.mu.Lock()
			held := c.refs[id] > 0
			c.mu.Unlock()
			if !held {
				return nil, fmt.Errorf("%w: Queue.Unget of object %d, which this connection was not lent", ErrNoSuchObject, id)
			}
		}
		v = bytes.Clone(v)
		if err := q.hold(v); err != nil {
			return nil, err
		}
		if lent {
			q.unlend(c, a[0])
		}
		q.items = slices.Insert(q.items, 0, v)
		q.changed()
		return nil, nil
	case opQueueLen:
		return [][]byte{putU64(uint64(len(q.items)))}, nil
	case opQueueTaskDone:
		if q.unfinished == 0 {
			return nil, fmt.Errorf("%w (%w): TaskDone called more times than items were put", ErrOverReleased, ipc.ErrTaskDone)
		}
		q.unfinished--
		if q.unfinished == 0 {
			q.changed()
		}
		return nil, nil
	case opQueueJoin:
		for q.unfinished > 0 {
			if err := q.wait(ctx); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	return nil, unknownOp(kindQueue, r)
}

// ---- Lock and RLock: owned by connections, robust like psync's ----

type lockObj struct {
	base
	reentrant bool
	owner     *sconn
	count     int
	// ownerDied: the last holder's connection ended while it held the
	// lock; the next acquirer gets ErrOwnerDead. pending: the holder got
	// ErrOwnerDead and has not called MarkConsistent. broken: it
	// unlocked without doing so, and the lock is never held again.
	ownerDied, pending, broken bool
}

func (l *lockObj) blocks(r *request) bool {
	return r.op == opAcquire && !(len(r.args) == 1 && flag(r.args[0]))
}

// acquireLocked takes the lock for c, waiting unless try.
func (l *lockObj) acquireLocked(ctx context.Context, c *sconn, try bool) (bool, error) {
	for {
		if l.broken {
			return false, ErrNotRecoverable
		}
		if l.owner == nil {
			l.owner, l.count = c, 1
			if l.ownerDied {
				l.ownerDied, l.pending = false, true
				return true, ErrOwnerDead
			}
			return true, nil
		}
		if l.owner == c && l.reentrant {
			l.count++
			return true, nil
		}
		if try {
			return false, nil
		}
		if err := l.wait(ctx); err != nil {
			return false, err
		}
	}
}

func (l *lockObj) releaseLocked(c *sconn) error {
	if l.owner != c {
		return ErrNotHeld
	}
	l.count--
	if l.count > 0 {
		return nil
	}
	l.owner = nil
	if l.pending {
		l.pending, l.broken = false, true
	}
	l.changed()
	return nil
}

func (l *lockObj) handle(ctx context.Context, c *sconn, r *request) ([][]byte, error) {
	if err := l.lock(); err != nil {
		return nil, err
	}
	defer l.mu.Unlock()
	switch r.op {
	case opAcquire:
		if err := want(r, 1); err != nil {
			return nil, err
		}
		c.touch(r.obj, l)
		got, err := l.acquireLocked(ctx, c, flag(r.args[0]))
		return boolRes(got), err
	case opRelease1:
		return nil, l.releaseLocked(c)
	case opMarkConsistent:
		if l.owner != c {
			return nil, ErrNotHeld
		}
		l.pending = false
		return nil, nil
	}
	k := kindLock
	if l.reentrant {
		k = kindRLock
	}
	return nil, unknownOp(k, r)
}

func (l *lockObj) connGone(c *sconn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.owner == c {
		l.owner, l.count, l.ownerDied, l.pending = nil, 0, true, false
		l.changed()
	}
}

// ---- Semaphore and BoundedSemaphore ----

type semObj struct {
	base
	value   int
	bounded bool
	max     int
	units   map[*sconn]int // bounded: units held per connection
	dead    int            // bounded: units returned by dead holders, not yet re-acquired
}

func (s *semObj) blocks(r *request) bool {
	return r.op == opAcquire && !(len(r.args) == 1 && flag(r.args[0]))
}

func (s *semObj) handle(ctx context.Context, c *sconn, r *request) ([][]byte, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	switch r.op {
	case opAcquire:
		if err := want(r, 1); err != nil {
			return nil, err
		}
		for s.value == 0 {
			if flag(r.args[0]) {
				return boolRes(false), nil
			}
			if err := s.wait(ctx); err != nil {
				return nil, err
			}
		}
		s.value--
		if s.bounded {
			c.touch(r.obj, s)
			s.units[c]++
			if s.dead > 0 {
				s.dead--
				return boolRes(true), ErrOwnerDead
			}
		}
		return boolRes(true), nil
	case opRelease1:
		if s.bounded {
			if s.units[c] == 0 {
				return nil, ErrOverReleased
			}
			if s.units[c]--; s.units[c] == 0 {
				delete(s.units, c)
			}
		}
		s.value++
		s.changed()
		return nil, nil
	case opSemValue:
		return [][]byte{putU64(uint64(s.value))}, nil
	}
	return nil, unknownOp(kindSemaphore, r)
}

func (s *semObj) connGone(c *sconn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.units[c]; n > 0 {
		delete(s.units, c)
		s.value += n
		s.dead += n
		s.changed()
	}
}

// ---- Event ----

type eventObj struct {
	base
	set bool
}

func (e *eventObj) blocks(r *request) bool { return r.op == opEventWait }

func (e *eventObj) handle(ctx context.Context, c *sconn, r *request) ([][]byte, error) {
	if err := e.lock(); err != nil {
		return nil, err
	}
	defer e.mu.Unlock()
	switch r.op {
	case opEventSet:
		e.set = true
		e.changed()
		return nil, nil
	case opEventClear:
		e.set = false
		return nil, nil
	case opEventIsSet:
		return boolRes(e.set), nil
	case opEventWait:
		for !e.set {
			if err := e.wait(ctx); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	return nil, unknownOp(kindEvent, r)
}

// ---- Condition (over a Lock or RLock object) ----

type condObj struct {
	base
	l       *lockObj
	waiters []chan struct{}
}

func (cd *condObj) blocks(r *request) bool { return r.op == opCondWait }

func (cd *condObj) handle(ctx context.Context, c *sconn, r *request) ([][]byte, error) {
	if err := cd.lock(); err != nil {
		return nil, err
	}
	switch r.op {
	case opCondNotify:
		defer cd.mu.Unlock()
		if err := want(r, 1); err != nil {
			return nil, err
		}
		n, err := u64(r.args[0])
		if err != nil {
			return nil, err
		}
		cd.l.mu.Lock()
		held := cd.l.owner == c
		cd.l.mu.Unlock()
		if !held {
			return nil, ErrNotHeld
		}
		for ; n > 0 && len(cd.waiters) > 0; n-- {
			close(cd.waiters[0])
			cd.waiters = cd.waiters[1:]
		}
		return nil, nil
	case opCondWait:
		l := cd.l
		l.mu.Lock()
		if l.owner != c {
			l.mu.Unlock()
			cd.mu.Unlock()
			return nil, ErrNotHeld
		}
		ch := make(chan struct{})
		cd.waiters = append(cd.waiters, ch)
		cd.mu.Unlock()
		// Release the lock whole (an RLock's every level) and take it
		// back as deep after the wake-up, whatever ends the wait.
		count := l.count
		l.count = 1
		l.releaseLocked(c)
		l.mu.Unlock()
		var werr error
		select {
		case <-ch:
		case <-ctx.Done():
			werr = ctx.Err()
			cd.mu.Lock()
			if i := slices.Index(cd.waiters, ch); i >= 0 {
				cd.waiters = slices.Delete(cd.waiters, i, i+1)
			}
			cd.mu.Unlock()
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		// Re-take under the connection's own context: a caller's ended
		// context must not leave the lock unheld (psync's contract).
		_, err := l.acquireLocked(c.ctx, c, false)
		if err != nil && err != ErrOwnerDead {
			return nil, err
		}
		l.count = count
		if werr != nil {
			return nil, werr
		}
		return nil, err
	}
	cd.mu.Unlock()
	return nil, unknownOp(kindCondition, r)
}

// ---- Barrier ----

type barrierObj struct {
	base
	parties int
	count   int
	gen     uint64
	broken  bool
	waiting map[*sconn]int
}

func (b *barrierObj) blocks(r *request) bool { return r.op == opBarrierWait }

func (b *barrierObj) breakLocked() {
	b.broken = true
	b.count = 0
	b.changed()
}

func (b *barrierObj) handle(ctx context.Context, c *sconn, r *request) ([][]byte, error) {
	if err := b.lock(); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	switch r.op {
	case opBarrierWait:
		if b.broken {
			return nil, ErrBrokenBarrier
		}
		c.touch(r.obj, b)
		i := b.count
		b.count++
		if b.count == b.parties {
			b.count = 0
			b.gen++
			b.changed()
			return [][]byte{putU64(uint64(i))}, nil
		}
		gen := b.gen
		b.waiting[c]++
		defer func() {
			if b.waiting[c]--; b.waiting[c] == 0 {
				delete(b.waiting, c)
			}
		}()
		for b.gen == gen {
			if b.broken {
				return nil, ErrBrokenBarrier
			}
			if err := b.wait(ctx); err != nil {
				if b.gen != gen {
					break
				}
				b.breakLocked()
				return nil, fmt.Errorf("%w: %w", ErrBrokenBarrier, err)
			}
		}
		return [][]byte{putU64(uint64(i))}, nil
	case opBarrierAbort:
		b.breakLocked()
		return nil, nil
	case opBarrierReset:
		if b.count > 0 {
			b.breakLocked() // the waiters see it broken
		}
		b.gen++
		b.broken, b.count = false, 0
		b.changed()
		return nil, nil
	case opBarrierInfo:
		br := byte(0)
		if b.broken {
			br = 1
		}
		return [][]byte{putU64(uint64(b.parties)), putU64(uint64(b.count)), {br}}, nil
	}
	return nil, unknownOp(kindBarrier, r)
}

func (b *barrierObj) connGone(c *sconn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waiting[c] > 0 {
		b.breakLocked() // a party died while waiting
	}
}

// ---- custom types ----

type customObj struct {
	base
	typ  string
	sigs []methodSig
	call func(ctx context.Context, method string, args [][]byte) ([]byte, error)
	cmu  sync.Mutex // one call at a time
}

func (o *customObj) blocks(*request) bool { return true }

func (o *customObj) handle(ctx context.Context, c *sconn, r *request) ([][]byte, error) {
	if r.op != opCall || len(r.args) < 1 {
		return nil, unknownOp(kindCustom, r)
	}
	o.cmu.Lock()
	defer o.cmu.Unlock()
	// dead is base.mu's (kill sets it under it, not under cmu).
	if err := o.lock(); err != nil {
		return nil, err
	}
	o.mu.Unlock()
	out, err := o.call(ctx, string(r.args[0]), r.args[1:])
	if err != nil {
		return nil, err
	}
	return [][]byte{out}, nil
}
