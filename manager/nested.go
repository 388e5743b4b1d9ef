package manager

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Nested proxies (Python ≥ 3.6's managers): a proxy stored in a Dict, a
// List, an Array, a Value, a Queue or a Namespace attribute is stored as
// a reference to its object, so that a proxy taken back out of it is a
// proxy of the same object and mutating through it changes the object
// the first proxy sees.
//
// What travels and what is stored is a server-side reference, the object's
// id with the server's instance id ("stored form", refLen bytes; a nil
// proxy is the empty string), never the authkey nor an address. The
// containing object takes one reference for every element it holds
// (counted in its entry like a connection's), and gives it back when the
// element is overwritten, deleted, popped, cleared, or when the container
// itself dies. A reference handed out by a read (Get, Pop, Values, a
// queue's Get...) is the reading connection's own, counted per
// connection like one that Create returned: the proxy decoded from it
// joins the connection of the proxy it was read through, and Close
// releases it (so does the connection's end).
//
// The server knows which values are references from the object's element
// kind, given at its creation (the create request's first argument is the
// object's kind, then the element's kind and description when elements
// are proxies); it checks every reference it stores (this instance, a
// live object, the element's kind and description), so Get always
// returns a proxy of the type the container's element type says.

// ErrForeignProxy is returned when a proxy is stored in an object of
// another manager (another server, or another instance of a restarted
// one): a manager stores references to its own objects only.
var ErrForeignProxy = errs.RegisterSentinel(errors.New("manager: proxy of another manager"))

// refLen is the length of a stored reference: instance, then object id.
const refLen = 16

// elemSpec says that an object's elements are references to objects of
// one kind (and element description, unless the kind is custom).
type elemSpec struct {
	kind byte
	desc string
}

// nestable is implemented by the proxy types a manager object can hold.
// nestKind depends only on the type (it is called on nil pointers).
type nestable interface {
	nestKind() (kind byte, desc string)
	nestRef() *ref
	// adopt makes the zero proxy it is called on a proxy of object id
	// over c, owning one of c's references to it.
	adopt(c *client, id uint64, desc string)
}

// elemOf returns T's element spec when T is a proxy type that a manager
// object can hold (a pointer to a proxy type other than Condition), and
// nil otherwise.
func elemOf[T any]() *elemSpec {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Pointer {
		return nil
	}
	n, ok := reflect.Zero(t).Interface().(nestable)
	if !ok {
		return nil
	}
	k, d := n.nestKind()
	return &elemSpec{kind: k, desc: d}
}

// checkValue is checkElem for the types of stored values (not keys, not
// update functions' values): proxies are allowed, and stored as
// references (their spec is returned).
func checkValue[T any](what string) (*elemSpec, error) {
	if sp := elemOf[T](); sp != nil {
		return sp, nil
	}
	return nil, checkElem[T](what)
}

// elemCodec is codecFor on a connection: a proxy type's values are
// references to objects of c's server.
func elemCodec[T any](c *client) wire.Value[T] {
	if elemOf[T]() != nil {
		return refCodec[T]{c: c}
	}
	return codecFor[T](c.raw)
}

// specArg is the create request's first argument: the kind, then the
// element's kind and description when elements are references.
func specArg(kind byte, sp *elemSpec) []byte {
	if sp == nil {
		return []byte{kind}
	}
	return append([]byte{kind, sp.kind}, sp.desc...)
}

// parseSpec reads the element spec of a create request or a Namespace
// attribute (nil when b is empty).
func parseSpec(b []byte) (*elemSpec, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] == 0 || b[0] >= numKinds || b[0] == kindCondition {
		return nil, fmt.Errorf("%w: a %s cannot be stored as a reference", ErrTypeMismatch, kindName(b[0]))
	}
	return &elemSpec{kind: b[0], desc: string(b[1:])}, nil
}

// refCodec encodes a proxy as the reference to its object that a
// container on c's server stores, and decodes a reference the server
// handed out (with a reference of c's own) as a new proxy over c. The
// same in raw and gob modes: a reference means the same to every build.
type refCodec[T any] struct{ c *client }

func (refCodec[T]) Name() string { return "ref" }

func (rc refCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	r := any(v).(nestable).nestRef()
	if r == nil {
		return dst, nil // a nil proxy: Python's None
	}
	k, _ := any(v).(nestable).nestKind()
	if r.c == nil || r.closed.Load() {
		return dst, fmt.Errorf("manager: storing a closed or zero %s proxy: %w", kindName(k), ErrClosed)
	}
	if r.c.inst != rc.c.inst {
		return dst, fmt.Errorf("manager: storing a %s proxy of the manager at %s in an object of the manager at %s: %w", kindName(k), r.c.addr.addr, rc.c.addr.addr, ErrForeignProxy)
	}
	dst = binary.LittleEndian.AppendUint64(dst, r.c.inst)
	return binary.LittleEndian.AppendUint64(dst, r.id), nil
}

func (rc refCodec[T]) AppendSlice(dst []byte, vs []T) ([]byte, error) {
	dst = binary.AppendUvarint(dst, uint64(len(vs)))
	for _, v := range vs {
		b, err := rc.Append(nil, v)
		if err != nil {
			return dst, err
		}
		dst = wire.AppendBytes(dst, b)
	}
	return dst, nil
}

// Decode reads a handed-out reference: the stored form, then the
// object's element description (a custom object's type name).
func (rc refCodec[T]) Decode(src []byte) (T, error) {
	var zero T
	if len(src) == 0 {
		return zero, nil
	}
	if len(src) < refLen {
		return zero, &wire.DecodeError{Type: typeName[T](), Err: fmt.Errorf("%w: a reference of %d bytes", wire.ErrCorrupt, len(src))}
	}
	inst, id := binary.LittleEndian.Uint64(src), binary.LittleEndian.Uint64(src[8:])
	desc := string(src[refLen:])
	p := reflect.New(reflect.TypeFor[T]().Elem()).Interface().(T)
	n := any(p).(nestable)
	k, want := n.nestKind()
	if inst != rc.c.inst || id == 0 || (k != kindCustom && desc != want) {
		return zero, &wire.DecodeError{Type: typeName[T](), Err: fmt.Errorf("%w: a reference to object %d (%q) of instance %x", wire.ErrCorrupt, id, desc, inst)}
	}
	n.adopt(rc.c, id, desc)
	return p, nil
}

func (rc refCodec[T]) DecodeSlice(dst []T, src []byte) ([]T, error) {
	d := wire.NewBuf(src)
	n := d.Uvarint()
	if d.Err() == nil && n > uint64(len(d.Rest())) {
		return dst, fmt.Errorf("%w: %d references in %d bytes", wire.ErrCorrupt, n, len(src))
	}
	for range n {
		b := d.Bytes()
		if d.Err() != nil {
			return dst, d.Err()
		}
		v, err := rc.Decode(b)
		if err != nil {
			return dst, err
		}
		dst = append(dst, v)
	}
	return dst, d.Err()
}

// adopt makes r a proxy of object id over c (c counts the reference).
func (r *ref) adopt(c *client, id uint64, kind byte, desc string) {
	r.c, r.id, r.kind, r.desc, r.resID = c, id, kind, desc, wire.NewID()
}

// The proxy types that nest. Condition does not: its proxy is made of
// its lock's too.

func (*List[T]) nestKind() (byte, string) { return kindList, typeName[T]() }
func (l *List[T]) nestRef() *ref {
	if l == nil {
		return nil
	}
	return &l.ref
}
func (l *List[T]) adopt(c *client, id uint64, desc string) {
	l.ref.adopt(c, id, kindList, desc)
	l.c = elemCodec[T](c)
}

func (*Array[T]) nestKind() (byte, string) { return kindArray, typeName[T]() }
func (a *Array[T]) nestRef() *ref {
	if a == nil {
		return nil
	}
	return &a.ref
}
func (a *Array[T]) adopt(c *client, id uint64, desc string) {
	a.ref.adopt(c, id, kindArray, desc)
	a.c = elemCodec[T](c)
}

func (*Dict[K, V]) nestKind() (byte, string) { return kindDict, dictDesc[K, V]() }
func (d *Dict[K, V]) nestRef() *ref {
	if d == nil {
		return nil
	}
	return &d.ref
}
func (d *Dict[K, V]) adopt(c *client, id uint64, desc string) {
	d.ref.adopt(c, id, kindDict, desc)
	d.init()
}

func (*Value[T]) nestKind() (byte, string) { return kindValue, typeName[T]() }
func (v *Value[T]) nestRef() *ref {
	if v == nil {
		return nil
	}
	return &v.ref
}
func (v *Value[T]) adopt(c *client, id uint64, desc string) {
	v.ref.adopt(c, id, kindValue, desc)
	v.c = elemCodec[T](c)
}

func (*Queue[T]) nestKind() (byte, string) { return kindQueue, typeName[T]() }
func (q *Queue[T]) nestRef() *ref {
	if q == nil {
		return nil
	}
	return &q.ref
}
func (q *Queue[T]) adopt(c *client, id uint64, desc string) {
	q.ref.adopt(c, id, kindQueue, desc)
	q.c = elemCodec[T](c)
}

func (*JoinableQueue[T]) nestKind() (byte, string) { return kindJoinableQueue, typeName[T]() }
func (q *JoinableQueue[T]) nestRef() *ref {
	if q == nil {
		return nil
	}
	return &q.ref
}
func (q *JoinableQueue[T]) adopt(c *client, id uint64, desc string) {
	q.ref.adopt(c, id, kindJoinableQueue, desc)
	q.c = elemCodec[T](c)
}

// plainNest is the nesting of the proxy types without type parameters.
func plainNest(r *ref, kind byte, c *client, id uint64, desc string) { r.adopt(c, id, kind, desc) }

func (*Namespace) nestKind() (byte, string) { return kindNamespace, "" }
func (n *Namespace) nestRef() *ref {
	if n == nil {
		return nil
	}
	return &n.ref
}
func (n *Namespace) adopt(c *client, id uint64, desc string) {
	plainNest(&n.ref, kindNamespace, c, id, desc)
}

func (*Lock) nestKind() (byte, string) { return kindLock, "" }
func (l *Lock) nestRef() *ref {
	if l == nil {
		return nil
	}
	return &l.ref
}
func (l *Lock) adopt(c *client, id uint64, desc string) { plainNest(&l.ref, kindLock, c, id, desc) }

func (*RLock) nestKind() (byte, string) { return kindRLock, "" }
func (l *RLock) nestRef() *ref {
	if l == nil {
		return nil
	}
	return &l.ref
}
func (l *RLock) adopt(c *client, id uint64, desc string) { plainNest(&l.ref, kindRLock, c, id, desc) }

func (*Semaphore) nestKind() (byte, string) { return kindSemaphore, "" }
func (s *Semaphore) nestRef() *ref {
	if s == nil {
		return nil
	}
	return &s.ref
}
func (s *Semaphore) adopt(c *client, id uint64, desc string) {
	plainNest(&s.ref, kindSemaphore, c, id, desc)
}

func (*BoundedSemaphore) nestKind() (byte, string) { return kindBoundedSemaphore, "" }
func (s *BoundedSemaphore) nestRef() *ref {
	if s == nil {
		return nil
	}
	return &s.ref
}
func (s *BoundedSemaphore) adopt(c *client, id uint64, desc string) {
	plainNest(&s.ref, kindBoundedSemaphore, c, id, desc)
}

func (*Event) nestKind() (byte, string) { return kindEvent, "" }
func (e *Event) nestRef() *ref {
	if e == nil {
		return nil
	}
	return &e.ref
}
func (e *Event) adopt(c *client, id uint64, desc string) { plainNest(&e.ref, kindEvent, c, id, desc) }

func (*Barrier) nestKind() (byte, string) { return kindBarrier, "" }
func (b *Barrier) nestRef() *ref {
	if b == nil {
		return nil
	}
	return &b.ref
}
func (b *Barrier) adopt(c *client, id uint64, desc string) {
	plainNest(&b.ref, kindBarrier, c, id, desc)
}

// An Object element holds objects of any registered type; the reference
// handed out carries the type's name (TypeName).
func (*Object) nestKind() (byte, string) { return kindCustom, "" }
func (o *Object) nestRef() *ref {
	if o == nil {
		return nil
	}
	return &o.ref
}
func (o *Object) adopt(c *client, id uint64, desc string) { plainNest(&o.ref, kindCustom, c, id, desc) }

// ---- the server's side ----

// parseRef reads a stored reference; the empty string is nil (id 0).
func parseRef(b []byte) (inst, id uint64, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	if len(b) != refLen {
		return 0, 0, fmt.Errorf("%w: a reference of %d bytes", wire.ErrCorrupt, len(b))
	}
	inst, id = binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	if id == 0 {
		return 0, 0, fmt.Errorf("%w: a reference to object 0", wire.ErrCorrupt)
	}
	return inst, id, nil
}

// entryForLocked returns the live entry a stored reference names, checked
// against sp (s.mu held).
func (s *server) entryForLocked(sp *elemSpec, inst, id uint64) (*entry, error) {
	if inst != s.inst {
		return nil, fmt.Errorf("%w: object %d of another server instance", ErrForeignProxy, id)
	}
	e := s.objs[id]
	if e == nil {
		return nil, fmt.Errorf("%w: object %d", ErrNoSuchObject, id)
	}
	if e.kind != sp.kind || (sp.kind != kindCustom && e.desc != sp.desc) {
		return nil, fmt.Errorf("%w: storing a %s of %s where a %s of %s belongs", ErrTypeMismatch, kindName(e.kind), e.desc, kindName(sp.kind), sp.desc)
	}
	return e, nil
}

// hold checks the references bs (stored forms, sp's kind) and takes one
// for each: all of them, or none and an error. It is called with the
// holding object's lock held: the order is object, then s.mu, never the
// reverse.
func (s *server) hold(sp *elemSpec, bs ...[]byte) error {
	if sp == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var taken []*entry
	for _, b := range bs {
		inst, id, err := parseRef(b)
		if err == nil && id != 0 {
			var e *entry
			if e, err = s.entryForLocked(sp, inst, id); err == nil {
				e.refs++
				taken = append(taken, e)
			}
		}
		if err != nil {
			for _, e := range taken {
				e.refs-- // alive still: the caller's proxies hold theirs
			}
			return err
		}
	}
	return nil
}

// release gives back the references bs (stored forms that hold took)
// and returns the objects that lost their last one, for the caller to
// kill once it released its own lock.
func (s *server) release(bs ...[]byte) []object {
	refs := map[uint64]int{}
	for _, b := range bs {
		if _, id, err := parseRef(b); err == nil && id != 0 {
			refs[id]++
		}
	}
	if len(refs) == 0 {
		return nil
	}
	s.mu.Lock()
	dead := s.dropRefsLocked(refs)
	s.mu.Unlock()
	return dead
}

// lend gives c a reference of its own to the object the stored reference
// b names and returns its handed-out form (the stored form and the
// object's description; a nil reference stays empty). It checks b as hold
// does: b may be a client's (GetOr's default).
func (s *server) lend(c *sconn, sp *elemSpec, b []byte) ([]byte, error) {
	inst, id, err := parseRef(b)
	if err != nil || id == 0 {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entryForLocked(sp, inst, id)
	if err != nil {
		return nil, err
	}
	e.refs++
	c.mu.Lock()
	c.refs[id]++ // never nil: gone swaps in an empty map
	c.mu.Unlock()
	out := make([]byte, 0, refLen+len(e.desc))
	return append(append(out, b...), e.desc...), nil
}

// holder is what an object that may hold references has: its server, its
// elements' spec (nil: plain values) and the objects whose last reference
// it gave back under its lock, killed by done once the lock is released
// (a dying object takes its own lock, and may be this one).
type holder struct {
	s    *server
	spec *elemSpec
	drop []object
}

func (h *holder) hold(bs ...[]byte) error { return h.s.hold(h.spec, bs...) }

func (h *holder) release(bs ...[]byte) {
	if h.spec != nil {
		h.drop = append(h.drop, h.s.release(bs...)...)
	}
}

// out returns stored values as a reply: plain values as they are,
// references lent to c.
func (h *holder) out(c *sconn, bs ...[]byte) ([][]byte, error) {
	if h.spec == nil {
		return bs, nil
	}
	res := make([][]byte, len(bs))
	for i, b := range bs {
		o, err := h.s.lend(c, h.spec, b)
		if err != nil {
			// Give back what was lent: the reply will not carry it.
			for _, l := range res[:i] {
				h.unlend(c, l)
			}
			return nil, err
		}
		res[i] = o
	}
	return res, nil
}

func (h *holder) out1(c *sconn, b []byte) ([][]byte, error) { return h.out(c, b) }

// unlend gives back a reference lend gave c.
func (h *holder) unlend(c *sconn, lent []byte) {
	if len(lent) < refLen {
		return
	}
	id := binary.LittleEndian.Uint64(lent[8:])
	c.mu.Lock()
	if c.refs[id] > 0 {
		if c.refs[id]--; c.refs[id] == 0 {
			delete(c.refs, id)
		}
	}
	c.mu.Unlock()
	h.drop = append(h.drop, h.s.release(lent[:refLen])...)
}

// refuse fails the operations that read stored values as data (Incr,
// Update) on an object of references.
func (h *holder) refuse(r *request) error {
	if h.spec != nil {
		return fmt.Errorf("%w: %s on an object that holds proxies", ErrTypeMismatch, opName(r.op))
	}
	return nil
}

// unlock releases mu, then kills the objects h gave the last reference of.
func (h *holder) unlock(mu interface{ Unlock() }) {
	drop := h.drop
	h.drop = nil
	mu.Unlock()
	for _, o := range drop {
		o.kill()
	}
}

// killHeld gives back every reference in held (the elements of an object
// that died) and kills what dies of it.
func (h *holder) killHeld(held [][]byte) {
	if h.spec == nil || len(held) == 0 {
		return
	}
	for _, o := range h.s.release(held...) {
		o.kill()
	}
}
