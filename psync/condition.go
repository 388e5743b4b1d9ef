package psync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/wire"
)

const (
	condTicket = 4 // next waiter's ticket (FIFO order of Notify)
	condSlots  = line
	slotSize   = 16 // state u32 (the waiter's futex word), ticket u32, ident u64

	slotFree     = 0
	slotWaiting  = 1
	slotNotified = 2

	// MaxConditionWaiters is how many goroutines (of all processes) may
	// wait on one Condition at the same time.
	MaxConditionWaiters = 255
	condSize            = condSlots + MaxConditionWaiters*slotSize
)

// Condition is a condition variable shared by processes: Python's
// multiprocessing.Condition, over an [RLock] by default (as in Python) or
// over a [Lock] or RLock of the caller's. Wait and Notify need the lock
// held by the calling process ([ErrNotHeld] otherwise). The owner is the
// process: a hold by another goroutine of it counts, so a Wait from a
// goroutine that did not take the lock releases that goroutine's hold
// (as Python's _is_owned does for a Lock). Wait over an RLock
// entered several times releases every level and restores the same depth
// before it returns (Python's _release_save and _acquire_restore).
//
// Each waiter has a slot of its own in shared memory, recording its
// process; Notify wakes the oldest waiters first and skips (and frees) the
// slots of waiters whose process died, so a dead waiter never consumes a
// notification. A waiter that was notified and then died did consume it.
// Each waiting goroutine sleeps in the kernel on its own word, so it holds
// an OS thread while it waits: 1000 waiters are 1000 threads (a pids limit
// counts them); at most [MaxConditionWaiters] may wait at once.
//
// Make one with [NewCondition]; it travels to other processes as a
// resource (with its lock) and is safe for concurrent use.
type Condition struct {
	obj
	p    unsafe.Pointer
	l    CondLock
	lc   lockCore
	owns bool // l was made by NewCondition, or imported with c: Close closes it
}

// NewCondition returns a condition variable over l (a *Lock or an *RLock),
// or over a new RLock when l is nil, as Python's Condition() is
// (errors.ErrUnsupported off Linux).
func NewCondition(l CondLock) (*Condition, error) {
	c := &Condition{}
	if isNil(l) {
		nl, err := NewRLock()
		if err != nil {
			return nil, err
		}
		l, c.owns = nl, true
	}
	lc := l.core()
	p, err := c.create(kindCondition, condSize)
	if err != nil {
		if c.owns {
			l.Close()
		}
		return nil, err
	}
	c.p, c.l, c.lc = p, l, lc
	c.init(c.a, c.off, kindCondition, uint32(lc.o.off))
	if lc.o.a != c.a {
		c.files = []*os.File{c.a.files[0], lc.o.a.files[0]}
	}
	return c, nil
}

// isNil reports whether l is nil or a nil *Lock or *RLock.
func isNil(l CondLock) bool {
	switch x := l.(type) {
	case nil:
		return true
	case *Lock:
		return x == nil
	case *RLock:
		return x == nil
	}
	return false
}

// Locker returns the condition's lock: the *Lock or *RLock it was made
// over, or the RLock NewCondition made.
func (c *Condition) Locker() CondLock { return c.l }

// Lock acquires the condition's lock ([Lock.Lock], [RLock.Lock]).
func (c *Condition) Lock(ctx context.Context) error { return c.l.Lock(ctx) }

// Unlock releases (one level of) the condition's lock.
func (c *Condition) Unlock() error { return c.l.Unlock() }

// TryLock acquires the condition's lock without waiting: Python's
// acquire(block=False) ([Lock.TryLock]).
func (c *Condition) TryLock() (bool, error) { return c.l.TryLock() }

// Do runs f holding the condition's lock: Python's `with cond:`. f may
// call Wait, WaitFor and Notify. It returns the lock's error without
// running f when the lock is not held; after [ErrOwnerDead] it runs f and
// returns ErrOwnerDead, with [Lock.Do]'s contract: the lock is released
// when Do returns, so f must repair the state and call the lock's
// MarkConsistent. Do returns Unlock's error too.
func (c *Condition) Do(ctx context.Context, f func()) error {
	err := c.l.Lock(ctx)
	if err != nil && err != ErrOwnerDead {
		return err
	}
	return runLocked(err, f, c.l.Unlock)
}

func (c *Condition) slot(i int) (state, ticket *uint32, ident *uint64) {
	s := unsafe.Add(c.p, condSlots+i*slotSize)
	return (*uint32)(s), u32(s, 4), (*uint64)(unsafe.Add(s, 8))
}

// Wait releases the lock, sleeps until notified or until ctx ends, and
// takes the lock again before it returns, in every case but ErrNotHeld and
// ErrTooManyWaiters (where it never released it). Re-taking the lock
// ignores ctx (as in Python): if another process holds it long, Wait
// returns that much after ctx ended. It returns nil
// (notified), an error wrapping ctx.Err() (not notified; the lock is held
// again), or the error of re-taking the lock ([ErrOwnerDead]: held;
// [ErrNotRecoverable]: not held). As in Python, a waiter may also return
// for a notification meant for a condition that has changed again since:
// re-check the predicate ([Condition.WaitFor] does).
func (c *Condition) Wait(ctx context.Context) error {
	m := c.lc.m
	if !m.Held() {
		return fmt.Errorf("psync: Condition.Wait: %w", ErrNotHeld)
	}
	me := self64()
	i := c.freeSlot()
	if i < 0 {
		// Full: some slots may belong to waiters that died, waiting or
		// notified before they could free their slot.
		if c.reclaim(true) {
			i = c.freeSlot()
		}
	}
	if i < 0 {
		return fmt.Errorf("psync: Condition.Wait: %d waiters already: %w", MaxConditionWaiters, ErrTooManyWaiters)
	}
	// The lock is held, and Notify needs it too: nobody else touches a
	// free slot until it is marked waiting.
	st, tk, id := c.slot(i)
	atomic.StoreUint64(id, me)
	atomic.StoreUint32(tk, atomic.AddUint32(u32(c.p, condTicket), 1))
	atomic.StoreUint32(st, slotWaiting)
	// Release every level of an RLock, in one step with respect to
	// re-entry, and restore the depth once the lock is held again.
	depth := uint32(1)
	var err error
	if c.lc.rl != nil {
		depth, err = c.lc.rl.releaseAll()
	} else {
		err = m.Unlock()
	}
	if err != nil {
		atomic.StoreUint32(st, slotFree)
		if err == ErrNotHeld {
			err = fmt.Errorf("psync: Condition.Wait: %w", ErrNotHeld)
		}
		return err
	}
	notified := c.sleep(ctx, st)
	var werr error
	if !notified {
		werr = fmt.Errorf("psync: Condition.Wait: %w", ctx.Err())
	}
	err = m.Lock(context.WithoutCancel(ctx))
	if c.lc.rl != nil && (err == nil || err == ErrOwnerDead) {
		c.lc.rl.setDepth(depth)
	}
	if err != nil {
		return err
	}
	return werr
}

// freeSlot returns the index of a free slot, or -1.
func (c *Condition) freeSlot() int {
	for j := range MaxConditionWaiters {
		st, _, _ := c.slot(j)
		if atomic.LoadUint32(st) == slotFree {
			return j
		}
	}
	return -1
}

// reclaim frees the slots of waiters whose process died: notified ones
// (a live waiter frees its notified slot itself, a dead one never does)
// and, when waiting is true, waiting ones too. The caller holds the lock,
// so no slot becomes waiting meanwhile. It reports whether it freed one.
func (c *Condition) reclaim(waiting bool) bool {
	spid, _ := futex.Self()
	freed := false
	for j := range MaxConditionWaiters {
		st, _, id := c.slot(j)
		s := atomic.LoadUint32(st)
		if s != slotNotified && !(waiting && s == slotWaiting) {
			continue
		}
		v := atomic.LoadUint64(id)
		if uint32(v) == spid || futex.Alive(uint32(v), uint32(v>>32)) {
			continue
		}
		if atomic.CompareAndSwapUint32(st, s, slotFree) {
			freed = true
		}
	}
	return freed
}

// sleep waits on the slot until it is notified (true) or ctx ends; either
// way the slot is free when it returns.
func (c *Condition) sleep(ctx context.Context, st *uint32) bool {
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { futex.Wake(st, 0) })
		defer stop()
	}
	for {
		if atomic.LoadUint32(st) == slotNotified {
			atomic.StoreUint32(st, slotFree)
			return true
		}
		if ctx.Err() != nil {
			if atomic.CompareAndSwapUint32(st, slotWaiting, slotFree) {
				return false
			}
			continue // notified meanwhile: take it
		}
		futex.Wait(st, slotWaiting, futex.Chunk)
	}
}

// WaitFor waits until pred returns true, calling Wait as often as needed:
// Python's wait_for. pred runs with the lock held. It returns nil once
// pred is true, or Wait's first error.
func (c *Condition) WaitFor(ctx context.Context, pred func() bool) error {
	for !pred() {
		if err := c.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Notify wakes up to n waiters, oldest first, skipping waiters whose
// process died. The lock must be held by this process ([ErrNotHeld]).
func (c *Condition) Notify(n int) error {
	if !c.lc.m.Held() {
		return fmt.Errorf("psync: Condition.Notify: %w", ErrNotHeld)
	}
	// Dead waiters' notified slots are freed here; dead waiting ones are
	// skipped (and freed) below as they come up.
	c.reclaim(false)
	spid, _ := futex.Self()
	for woken := 0; woken < n; {
		// The oldest waiting slot (tickets wrap; compare by difference).
		best, bestTk := -1, uint32(0)
		for j := range MaxConditionWaiters {
			st, tk, _ := c.slot(j)
			if atomic.LoadUint32(st) != slotWaiting {
				continue
			}
			if t := atomic.LoadUint32(tk); best < 0 || int32(t-bestTk) < 0 {
				best, bestTk = j, t
			}
		}
		if best < 0 {
			return nil
		}
		st, _, id := c.slot(best)
		v := atomic.LoadUint64(id)
		if uint32(v) != spid && !futex.Alive(uint32(v), uint32(v>>32)) {
			atomic.CompareAndSwapUint32(st, slotWaiting, slotFree) // a dead waiter's slot
			continue
		}
		if atomic.CompareAndSwapUint32(st, slotWaiting, slotNotified) {
			futex.Wake(st, 1)
			woken++
		}
	}
	return nil
}

// NotifyAll wakes every waiter ([ErrNotHeld] without the lock).
func (c *Condition) NotifyAll() error { return c.Notify(MaxConditionWaiters) }

// Close closes the condition (as [Lock.Close]) and its lock if
// NewCondition made it. A received Condition's copy of its lock is its
// own, and is closed with it.
func (c *Condition) Close() error {
	if c.kept.Load() {
		return nil // a pool task's Close of its worker's kept copy
	}
	return c.releaseAll()
}

// releaseAll releases the condition and the lock it owns (made by
// NewCondition, or imported with it).
func (c *Condition) releaseAll() error {
	released, err := c.release()
	if released && c.owns {
		_, lerr := c.lc.o.release(c.lc.m)
		err = errors.Join(err, lerr)
	}
	return err
}

// DropKept releases a pool worker's kept copy of the Condition, with its
// lock (see [Lock.DropKept]). Users do not call it.
func (c *Condition) DropKept() { c.releaseAll() }

// MarkKept is called by a pool worker that keeps this copy of the
// Condition for its later tasks: a task's Close of it, or of its Locker,
// then leaves it open, and DropKept releases it. Users do not call it.
func (c *Condition) MarkKept() {
	c.markKept()
	if c.owns && c.imported {
		c.lc.o.markKept()
	}
}

// NeedsDescriptors reports whether the Condition is open (wire.Resource).
func (c *Condition) NeedsDescriptors() bool { return c.needsDescriptors() }

// ExportResource describes the Condition and its lock to another process
// (wire.Exporter).
func (c *Condition) ExportResource(x *wire.Exported) error { return c.export(x) }

// ImportResource makes c the receiving process's copy, with its lock
// (wire.Importer).
func (c *Condition) ImportResource(state []byte, files []*os.File) error {
	if len(files) != 1 && len(files) != 2 {
		closeFiles(files)
		return fmt.Errorf("psync: importing Condition: %d descriptors", len(files))
	}
	p, lockOff, err := c.attachFile(state, files[0], kindCondition, condSize)
	if err != nil {
		closeFiles(files[1:])
		return err
	}
	la := c.a
	if len(files) == 2 {
		if la, err = attach(files[1]); err != nil {
			c.release()
			return err
		}
	} else {
		la.ref()
	}
	k := kindLock
	if la.kindAt(int(lockOff)) == kindRLock {
		k = kindRLock
	}
	lp, err := la.block(int(lockOff), lockSize, k)
	if err != nil {
		la.release()
		c.release()
		return err
	}
	var l CondLock
	switch k {
	case kindLock:
		x := &Lock{}
		x.init(la, int(lockOff), k, 0)
		x.imported = true
		x.m = x.mutex(lp, lockWord)
		l = x
	default:
		x := &RLock{}
		x.init(la, int(lockOff), k, 0)
		x.imported = true
		x.m, x.count = x.mutex(lp, lockWord), u32(lp, rlockCount)
		l = x
	}
	// The lock object is this copy's own (no other object of this
	// process is handed it), so the Condition releases it.
	c.p, c.l, c.lc, c.owns = p, l, l.core(), true
	return nil
}
