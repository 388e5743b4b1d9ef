package manager

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// Locker is what a Lock, an RLock and a Condition proxy have in common
// with psync's Lock and RLock: code that takes a Locker works with a lock
// in shared memory and with one on a manager alike.
type Locker interface {
	Lock(ctx context.Context) error
	Unlock() error
}

var tryArg = [][]byte{{1}}
var waitArg = [][]byte{{0}}

// Lock is a proxy of a lock on the server, owned by the holding
// connection (one per process): it behaves as psync.Lock does. If the
// holding process dies (its connection ends) the next acquirer gets the
// lock with ErrOwnerDead, must repair what the lock guards and call
// MarkConsistent before Unlock, or every later acquisition returns
// ErrNotRecoverable. Unlock by a process that does not hold it returns
// ErrNotHeld.
type Lock struct{ lockCore }

// lockCore is what Lock and RLock share.
type lockCore struct{ ref }

// NewLock creates a lock on the manager's server.
func NewLock(ctx context.Context, m *Manager, opts ...ObjectOption) (*Lock, error) {
	l := &Lock{}
	if err := l.create(ctx, m, kindLock, "", opts); err != nil {
		return nil, err
	}
	return l, nil
}

// ImportResource makes l the receiving process's proxy of a Lock sent to it.
func (l *Lock) ImportResource(state []byte, files []*os.File) error {
	return l.importFrom(state, files, kindLock, "")
}

func acquire(ctx context.Context, r *ref, try bool) (bool, error) {
	args := waitArg
	if try {
		args = tryArg
	}
	got, err := oneBool(r.call(ctx, opAcquire, args...))
	if errors.Is(err, ErrOwnerDead) {
		return true, err
	}
	return got, err
}

// Lock acquires the lock, waiting until ctx ends. An error matching
// ErrOwnerDead means the lock is held (from a dead holder).
func (l *lockCore) Lock(ctx context.Context) error { _, err := acquire(ctx, &l.ref, false); return err }

// TryLock acquires the lock if it is free.
func (l *lockCore) TryLock() (bool, error) { return acquire(context.Background(), &l.ref, true) }

// Unlock releases the lock.
func (l *lockCore) Unlock() error {
	_, err := l.call(context.Background(), opRelease1)
	return err
}

// MarkConsistent declares the state repaired after ErrOwnerDead.
func (l *lockCore) MarkConsistent() error {
	_, err := l.call(context.Background(), opMarkConsistent)
	return err
}

// Do runs f holding the lock. A dead previous holder is reported, after
// f ran, as ErrOwnerDead, and the lock is marked consistent.
func (l *lockCore) Do(ctx context.Context, f func()) error {
	err := l.Lock(ctx)
	dead := errors.Is(err, ErrOwnerDead)
	if err != nil && !dead {
		return err
	}
	f()
	if dead {
		l.MarkConsistent()
	}
	if uerr := l.Unlock(); uerr != nil {
		return uerr
	}
	return err
}

// RLock is a re-entrant Lock: the holding process may acquire it again
// (every goroutine of it, as psync.RLock), and it is released when
// Unlock was called as many times.
type RLock struct{ lockCore }

// NewRLock creates a re-entrant lock on the manager's server.
func NewRLock(ctx context.Context, m *Manager, opts ...ObjectOption) (*RLock, error) {
	l := &RLock{}
	if err := l.create(ctx, m, kindRLock, "", opts); err != nil {
		return nil, err
	}
	return l, nil
}

// ImportResource makes l the receiving process's proxy of an RLock sent to it.
func (l *RLock) ImportResource(state []byte, files []*os.File) error {
	return l.importFrom(state, files, kindRLock, "")
}

// Semaphore is a proxy of a counting semaphore on the server: any
// process may release it, and a dead holder's units are not returned
// (psync.Semaphore's contract).
type Semaphore struct{ ref }

// NewSemaphore creates a semaphore with value units on the manager's server.
func NewSemaphore(ctx context.Context, m *Manager, value int, opts ...ObjectOption) (*Semaphore, error) {
	if value < 0 {
		return nil, fmt.Errorf("manager: semaphore of value %d", value)
	}
	s := &Semaphore{}
	if err := s.create(ctx, m, kindSemaphore, "", opts, putU64(uint64(value))); err != nil {
		return nil, err
	}
	return s, nil
}

// ImportResource makes s the receiving process's proxy of a Semaphore sent to it.
func (s *Semaphore) ImportResource(state []byte, files []*os.File) error {
	return s.importFrom(state, files, kindSemaphore, "")
}

// Acquire takes a unit, waiting until ctx ends.
func (s *Semaphore) Acquire(ctx context.Context) error {
	_, err := acquire(ctx, &s.ref, false)
	return err
}

// TryAcquire takes a unit if one is free.
func (s *Semaphore) TryAcquire() (bool, error) { return acquire(context.Background(), &s.ref, true) }

// Release returns a unit (BoundedSemaphore: ErrOverReleased from a process
// that holds none).
func (s *Semaphore) Release() error {
	_, err := s.call(context.Background(), opRelease1)
	return err
}

// Value returns the free units.
func (s *Semaphore) Value(ctx context.Context) (int, error) { return oneInt(s.call(ctx, opSemValue)) }

// BoundedSemaphore is a Semaphore that tracks its units per holding
// process (psync.BoundedSemaphore): Release from a process holding none
// returns ErrOverReleased, and a dead holder's units come back, the
// Acquire that receives one returning ErrOwnerDead (holding the unit).
type BoundedSemaphore struct{ Semaphore }

// NewBoundedSemaphore creates a bounded semaphore on the manager's server.
func NewBoundedSemaphore(ctx context.Context, m *Manager, value int, opts ...ObjectOption) (*BoundedSemaphore, error) {
	if value < 0 {
		return nil, fmt.Errorf("manager: semaphore of value %d", value)
	}
	s := &BoundedSemaphore{}
	if err := s.create(ctx, m, kindBoundedSemaphore, "", opts, putU64(uint64(value))); err != nil {
		return nil, err
	}
	return s, nil
}

// ImportResource makes s the receiving process's proxy of a BoundedSemaphore sent to it.
func (s *BoundedSemaphore) ImportResource(state []byte, files []*os.File) error {
	return s.importFrom(state, files, kindBoundedSemaphore, "")
}

// Event is a proxy of an event on the server (psync.Event's contract).
type Event struct{ ref }

// NewEvent creates an event, initially clear, on the manager's server.
func NewEvent(ctx context.Context, m *Manager, opts ...ObjectOption) (*Event, error) {
	e := &Event{}
	if err := e.create(ctx, m, kindEvent, "", opts); err != nil {
		return nil, err
	}
	return e, nil
}

// ImportResource makes e the receiving process's proxy of an Event sent to it.
func (e *Event) ImportResource(state []byte, files []*os.File) error {
	return e.importFrom(state, files, kindEvent, "")
}

// Set sets the event, waking every waiter.
func (e *Event) Set(ctx context.Context) error { _, err := e.call(ctx, opEventSet); return err }

// Clear clears the event.
func (e *Event) Clear(ctx context.Context) error { _, err := e.call(ctx, opEventClear); return err }

// IsSet reports whether the event is set.
func (e *Event) IsSet(ctx context.Context) (bool, error) { return oneBool(e.call(ctx, opEventIsSet)) }

// Wait waits until the event is set or ctx ends.
func (e *Event) Wait(ctx context.Context) error { _, err := e.call(ctx, opEventWait); return err }

// Condition is a proxy of a condition variable on the server over a Lock
// or RLock proxy (a new RLock when none is given, as in Python).
//
// A Condition passes to other processes (a Process or pool task argument
// or result) as the other proxies do; the receiver's Condition comes with
// its own proxy of the lock (a *Lock or *RLock, as the sender's), which
// its Close closes too.
type Condition struct {
	ref
	l        *lockCore
	pub      Locker
	ownsLock bool // the lock proxy was imported with the condition: Close closes it
}

// NewCondition creates a condition over l (an RLock of its own if nil).
// The condition holds its own reference to the lock.
func NewCondition(ctx context.Context, m *Manager, l Locker, opts ...ObjectOption) (*Condition, error) {
	var lk *lockCore
	var pub Locker
	switch v := l.(type) {
	case nil:
		rl, err := NewRLock(ctx, m)
		if err != nil {
			return nil, err
		}
		lk, pub = &rl.lockCore, rl
	case *Lock:
		lk, pub = &v.lockCore, v
	case *RLock:
		lk, pub = &v.lockCore, v
	default:
		return nil, fmt.Errorf("%w: a Condition's lock must be a manager Lock or RLock, not %T", ErrTypeMismatch, l)
	}
	if lk.ref.c == nil || (m != nil && lk.ref.c != m.c) {
		return nil, fmt.Errorf("%w: the condition's lock belongs to another manager connection", ErrTypeMismatch)
	}
	c := &Condition{l: lk, pub: pub}
	if err := c.create(ctx, m, kindCondition, "", opts, putU64(lk.id)); err != nil {
		return nil, err
	}
	return c, nil
}

// ExportResource describes the condition and its lock to another process
// (two hand-off references, one per object).
func (c *Condition) ExportResource(x *wire.Exported) error {
	if c.l == nil {
		return fmt.Errorf("manager: sending a closed or zero condition proxy: %w", ErrClosed)
	}
	if err := c.ref.ExportResource(x); err != nil {
		return err
	}
	var lx wire.Exported
	if err := c.l.ref.ExportResource(&lx); err != nil {
		for _, f := range x.Files {
			f.Close()
		}
		x.Done(false)
		return err
	}
	st := wire.AppendBytes(nil, x.State)
	st = wire.AppendBytes(st, lx.State)
	x.State = st
	x.Files = append(x.Files, lx.Files...)
	cdone, ldone := x.Done, lx.Done
	x.Done = func(delivered bool) { cdone(delivered); ldone(delivered) }
	return nil
}

// ImportResource makes c the receiving process's proxy of a Condition
// sent to it, with a proxy of its lock of its own.
func (c *Condition) ImportResource(state []byte, files []*os.File) error {
	d := wire.NewBuf(state)
	cst, lst := d.Bytes(), d.Bytes()
	if d.Err() != nil || len(d.Rest()) != 0 || len(files) != 2 {
		for _, f := range files {
			f.Close()
		}
		return fmt.Errorf("%w: condition proxy state (%d descriptors)", wire.ErrCorrupt, len(files))
	}
	le, err := parseState(lst)
	if err != nil {
		files[0].Close()
		files[1].Close()
		return err
	}
	var lk *lockCore
	var pub Locker
	switch le.kind {
	case kindLock:
		l := &Lock{}
		lk, pub = &l.lockCore, l
	case kindRLock:
		l := &RLock{}
		lk, pub = &l.lockCore, l
	default:
		files[0].Close()
		files[1].Close()
		return fmt.Errorf("%w: a condition over a %s", ErrTypeMismatch, kindName(le.kind))
	}
	if err := lk.importFrom(lst, files[1:], le.kind, ""); err != nil {
		files[0].Close()
		return err
	}
	if err := c.importFrom(cst, files[:1], kindCondition, ""); err != nil {
		lk.Close()
		return err
	}
	c.l, c.pub, c.ownsLock = lk, pub, true
	return nil
}

// Close releases the proxy (and, in a process that received the
// condition, its proxy of the lock). Further calls fail with ErrClosed.
func (c *Condition) Close() error {
	err := c.ref.Close()
	if c.ownsLock && c.l != nil {
		if lerr := c.l.Close(); err == nil {
			err = lerr
		}
	}
	return err
}

// Locker returns the condition's lock (a *Lock or *RLock).
func (c *Condition) Locker() Locker { return c.pub }

// Lock acquires the condition's lock.
func (c *Condition) Lock(ctx context.Context) error {
	if c.l == nil {
		return errZeroProxy
	}
	return c.l.Lock(ctx)
}

// Unlock releases the condition's lock.
func (c *Condition) Unlock() error {
	if c.l == nil {
		return errZeroProxy
	}
	return c.l.Unlock()
}

// Wait releases the lock, waits for a Notify or ctx's end, and takes the
// lock back before returning, whatever ended the wait: a Wait whose ctx
// ended returns its error only once the lock is free to take back, which
// may be after the ctx's deadline (the one-second cancel grace of other
// calls does not apply), or with ErrConnLost if the connection ends.
// ErrNotHeld if this process does not hold the lock.
func (c *Condition) Wait(ctx context.Context) error { _, err := c.call(ctx, opCondWait); return err }

// WaitFor waits until pred() is true, holding the lock when it checks.
func (c *Condition) WaitFor(ctx context.Context, pred func() bool) error {
	for !pred() {
		if err := c.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Notify wakes up to n waiters; the caller must hold the lock.
func (c *Condition) Notify(ctx context.Context, n int) error {
	_, err := c.call(ctx, opCondNotify, putU64(uint64(max(n, 0))))
	return err
}

// NotifyAll wakes every waiter.
func (c *Condition) NotifyAll(ctx context.Context) error {
	// The server counts in uint64 on every platform: the largest means all.
	_, err := c.call(ctx, opCondNotify, putU64(math.MaxUint64))
	return err
}

// Barrier is a proxy of a barrier for a number of parties on the server
// (psync.Barrier's contract: Abort, Reset while parties wait, a waiting
// party's death or a waiter's context ending break it).
type Barrier struct{ ref }

// NewBarrier creates a barrier for parties parties on the manager's server.
func NewBarrier(ctx context.Context, m *Manager, parties int, opts ...ObjectOption) (*Barrier, error) {
	if parties <= 0 {
		return nil, fmt.Errorf("manager: barrier of %d parties", parties)
	}
	b := &Barrier{}
	if err := b.create(ctx, m, kindBarrier, "", opts, putU64(uint64(parties))); err != nil {
		return nil, err
	}
	return b, nil
}

// ImportResource makes b the receiving process's proxy of a Barrier sent to it.
func (b *Barrier) ImportResource(state []byte, files []*os.File) error {
	return b.importFrom(state, files, kindBarrier, "")
}

// Wait waits until all parties called Wait, and returns this party's
// arrival index (0 to parties-1), or ErrBrokenBarrier.
func (b *Barrier) Wait(ctx context.Context) (int, error) { return oneInt(b.call(ctx, opBarrierWait)) }

// Abort breaks the barrier.
func (b *Barrier) Abort(ctx context.Context) error { _, err := b.call(ctx, opBarrierAbort); return err }

// Reset returns the barrier to its initial state; parties waiting get
// ErrBrokenBarrier.
func (b *Barrier) Reset(ctx context.Context) error { _, err := b.call(ctx, opBarrierReset); return err }

// State returns the number of parties, how many wait now and whether the
// barrier is broken.
func (b *Barrier) State(ctx context.Context) (parties, waiting int, broken bool, err error) {
	res, err := b.call(ctx, opBarrierInfo)
	if err != nil {
		return 0, 0, false, err
	}
	if len(res) != 3 {
		return 0, 0, false, fmt.Errorf("manager: barrier state of %d fields", len(res))
	}
	p, _ := u64(res[0])
	w, _ := u64(res[1])
	return int(p), int(w), flag(res[2]), nil
}

// ---- custom types ----

// Object is a proxy of an object of a registered type (see RegisterType),
// whose listed methods Call runs on the server. Wrap it in a typed proxy
// of your own (the package example shows one).
type Object struct {
	ref
}

// Create makes an object of the type registered under typeName in the
// server's program. The client need not have registered it.
func Create(ctx context.Context, m *Manager, typeName string, opts ...ObjectOption) (*Object, error) {
	o := &Object{}
	if err := o.create(ctx, m, kindCustom, typeName, opts); err != nil {
		return nil, err
	}
	return o, nil
}

// ImportResource makes o the receiving process's proxy of an Object sent to it.
func (o *Object) ImportResource(state []byte, files []*os.File) error {
	return o.importFrom(state, files, kindCustom, "")
}

// TypeName returns the registered name of the object's type.
func (o *Object) TypeName() string { return o.desc }

// Call runs method on the server's object with args and returns its
// result as Out: ErrNoSuchMethod for a method the type does not list,
// ErrArgType for arguments that do not decode as its argument type,
// ErrResultType when its result does not decode as Out, and the method's
// own error otherwise (typed as in the root: registered sentinels and
// error types match with errors.Is and errors.As).
func Call[Out any](ctx context.Context, o *Object, method string, args ...any) (Out, error) {
	var out Out
	if o == nil {
		return out, ErrClosed
	}
	enc := make([][]byte, 0, 1+len(args))
	enc = append(enc, []byte(method))
	for i, a := range args {
		b, err := gobEncode(a)
		if err != nil {
			return out, fmt.Errorf("manager: %s.%s: argument %d (%T): %w", o.desc, method, i, a, err)
		}
		enc = append(enc, b)
	}
	b, err := one(o.call(ctx, opCall, enc...))
	if err != nil {
		var ce *CallError
		if errors.As(err, &ce) {
			ce.Op = o.desc + "." + method // the server names every custom call "Call"
		}
		return out, err
	}
	if err := gobDecode(b, &out); err != nil {
		return out, fmt.Errorf("%w: %s.%s returned what does not decode as %s: %v", ErrResultType, o.desc, method, typeName[Out](), err)
	}
	return out, nil
}

// MethodInfo describes a method a registered type lists.
type MethodInfo struct {
	Name    string
	In, Out string // Go type names, as the server's program spells them
}

// Methods lists the methods Call may run on o.
func Methods(ctx context.Context, o *Object) ([]MethodInfo, error) {
	if o == nil || o.ref.c == nil {
		return nil, ErrClosed
	}
	res, err := o.c.call(ctx, opMethods, 0, [][]byte{putU64(o.id)})
	if err != nil {
		return nil, err
	}
	if len(res)%3 != 0 {
		return nil, fmt.Errorf("manager: a method list of %d fields", len(res))
	}
	var ms []MethodInfo
	for i := 0; i < len(res); i += 3 {
		ms = append(ms, MethodInfo{string(res[i]), string(res[i+1]), string(res[i+2])})
	}
	return ms, nil
}
