package shm

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/futex"
)

// Every Value and Array carries a lock in its segment's header (Python's
// Value and Array are made with a lock by default, reached with
// get_lock()): a robust, process-shared mutex of internal/futex, the one
// package psync's locks are built on, which this package does not import.
// The lock lives in the shared memory itself, so it travels with the
// Value or Array to every process or pool task it is passed to.

// Errors of a Value's or an Array's lock. They are the same values as
// package psync's ErrOwnerDead, ErrNotRecoverable and ErrNotHeld (and the
// root package's multiproc.ErrOwnerDead), and they cross process
// boundaries: a pool task's error matches them with errors.Is in the
// parent.
var (
	// ErrOwnerDead is returned by a lock acquisition that took the lock from
	// a process that died holding it: the caller holds the lock, and the
	// value may be half-updated. Repair it and call MarkConsistent before
	// Unlock, or every later acquisition returns ErrNotRecoverable.
	ErrOwnerDead = futex.ErrOwnerDead
	// ErrNotRecoverable is returned by every acquisition of a lock whose
	// holder died and whose next holder unlocked it without MarkConsistent.
	ErrNotRecoverable = futex.ErrNotRecoverable
	// ErrNotHeld is returned by Unlock and MarkConsistent when this process
	// does not hold the lock.
	ErrNotHeld = futex.ErrNotHeld
)

var errLockUnsupported = fmt.Errorf("shm: a Value's or Array's lock needs Linux futexes: %w", errors.ErrUnsupported)

// Lock is the lock of a Value or an Array, as [Value.GetLock] and
// [Array.GetLock] return it: Python's get_lock(). Its methods are those of
// the Value's or Array's own Lock, Unlock, TryLock, MarkConsistent and Do,
// so it can be handed to code that takes a lock (it has package psync's
// Locker interface: Lock(ctx) error and Unlock() error).
//
// The lock is owned by a process, like psync.Lock: it excludes every
// goroutine of every process that maps the object, including the other
// goroutines of the holding process; any goroutine of the holding process
// may unlock it; Unlock by a process that does not hold it returns
// [ErrNotHeld] (Python lets anyone release; an owner is what makes a dead
// holder detectable). When the holder dies, the next acquirer takes the
// lock and gets [ErrOwnerDead]: a sleeping waiter hears of it from the
// kernel, measured at about 0.4 ms after the death on a quiet machine and
// 0.75-2.6 ms on a loaded one (2 CPUs, load 7-24), where the dying process
// waits for a CPU; at most within 100 ms on every path. Acquisition is not
// fair.
//
// Off Linux, Lock and TryLock return an error matching
// errors.ErrUnsupported. The lock must not be used after the object's
// Close (it panics).
type Lock struct{ seg *segment }

// mutex returns this process's handle on the segment's lock word, made on
// first use: registering the word with the kernel's robust list costs two
// page mappings, which a Value that is never locked should not pay.
func (s *segment) mutex() *futex.Mutex {
	if s == nil {
		panic("shm: lock of a zero Value or Array")
	}
	if m := s.lk.Load(); m != nil {
		return m
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.lk.Load(); m != nil {
		return m
	}
	if s.mem == nil {
		panic("shm: lock used after Close")
	}
	m := futex.NewMutex(unsafe.Pointer(&s.mem[lockAreaOff]), s.f, lockAreaOff)
	s.lk.Store(m)
	return m
}

// releaseLock drops the lock handle before the segment is unmapped (its
// word is unregistered from the robust list). s.mu is held.
func (s *segment) releaseLock() {
	if m := s.lk.Swap(nil); m != nil {
		m.Release()
	}
}

func (s *segment) lock(ctx context.Context) error {
	if !futex.Supported {
		return errLockUnsupported
	}
	return s.mutex().Lock(ctx)
}

func (s *segment) tryLock() (bool, error) {
	if !futex.Supported {
		return false, errLockUnsupported
	}
	return s.mutex().TryLock()
}

func (s *segment) do(ctx context.Context, f func()) error {
	err := s.lock(ctx)
	if err != nil && err != ErrOwnerDead {
		return err
	}
	return runLocked(err, f, s.mutex().Unlock)
}

// runLocked runs f and then unlock (also when f panics), returning err
// joined with unlock's error.
func runLocked(err error, f func(), unlock func() error) (rerr error) {
	defer func() {
		if uerr := unlock(); uerr != nil {
			if rerr == nil {
				rerr = uerr
			} else {
				rerr = errors.Join(rerr, uerr)
			}
		}
	}()
	f()
	return err
}

// Lock acquires the lock, blocking until it is free, its holder is found
// dead, or ctx ends. It returns nil (held); [ErrOwnerDead] (held: the
// previous holder died holding it; repair the value and call
// MarkConsistent before Unlock); or, not held, [ErrNotRecoverable] or an
// error wrapping ctx.Err(). Uncontended, Lock and Unlock are one atomic
// compare-and-swap each.
func (l *Lock) Lock(ctx context.Context) error { return l.seg.lock(ctx) }

// TryLock acquires the lock if that needs no waiting: Python's
// acquire(block=False). ok reports whether it is now held; err is
// [ErrOwnerDead] (held, see Lock) or [ErrNotRecoverable] (not held).
func (l *Lock) TryLock() (ok bool, err error) { return l.seg.tryLock() }

// Unlock releases the lock, which this process must hold ([ErrNotHeld]
// otherwise). After [ErrOwnerDead] without MarkConsistent, Unlock makes the
// lock not recoverable: every later acquisition returns
// [ErrNotRecoverable].
func (l *Lock) Unlock() error { return l.seg.mutex().Unlock() }

// MarkConsistent declares the value repaired after [ErrOwnerDead]; this
// process must hold the lock ([ErrNotHeld] otherwise).
func (l *Lock) MarkConsistent() error { return l.seg.mutex().MarkConsistent() }

// Do runs f holding the lock: Python's `with v.get_lock():`. It returns
// Lock's error without running f when the lock is not held.
//
// After [ErrOwnerDead] Do still runs f, then unlocks and returns
// ErrOwnerDead; by the time Do returns, the lock is released. So the
// repair must happen inside f: f must restore the value and call
// MarkConsistent itself. Otherwise Do's Unlock makes the lock not
// recoverable and every later Lock and Do returns [ErrNotRecoverable];
// nothing can repair it after Do has returned (MarkConsistent then returns
// [ErrNotHeld]). f is not told that the holder died (it is a func()), so
// either make f repair unconditionally and call MarkConsistent (nil when
// there was nothing to mark), or, when the repair depends on knowing, call
// Lock, check for ErrOwnerDead, repair, MarkConsistent and Unlock
// yourself (see the Value.Do example).
//
// Do also returns Unlock's error (joined with ErrOwnerDead when both
// happen; errors.Is sees each), for example [ErrNotHeld] when f unlocked
// the lock itself. If f panics, the lock is unlocked and the panic goes on.
func (l *Lock) Do(ctx context.Context, f func()) error { return l.seg.do(ctx, f) }

// HolderDied reports whether the lock is held by a process that died (the
// next acquirer gets [ErrOwnerDead]). It is for diagnostics and tests.
func (l *Lock) HolderDied() bool { return l.seg.mutex().HolderDied() }

// GetLock returns the value's lock: Python's get_lock(). v.Lock(ctx) and
// the other lock methods of v are the same calls.
func (v *Value[T]) GetLock() *Lock { return &Lock{seg: v.seg} }

// Lock acquires the value's lock ([Lock.Lock]). Load and Store do not take
// it: it guards what the caller does between them, as in
//
//	if err := v.Lock(ctx); err != nil { ... }
//	v.Store(v.Load() + 1)
//	v.Unlock()
func (v *Value[T]) Lock(ctx context.Context) error { return v.seg.lock(ctx) }

// TryLock is [Lock.TryLock] on the value's lock.
func (v *Value[T]) TryLock() (bool, error) { return v.seg.tryLock() }

// Unlock releases the value's lock ([Lock.Unlock]).
func (v *Value[T]) Unlock() error { return v.seg.mutex().Unlock() }

// MarkConsistent is [Lock.MarkConsistent] on the value's lock.
func (v *Value[T]) MarkConsistent() error { return v.seg.mutex().MarkConsistent() }

// Do runs f holding the value's lock, with [Lock.Do]'s contract (after
// [ErrOwnerDead] the repair and MarkConsistent belong inside f): Python's
// `with v.get_lock(): v.value += 1` is
//
//	v.Do(ctx, func() { v.Store(v.Load() + 1) })
func (v *Value[T]) Do(ctx context.Context, f func()) error { return v.seg.do(ctx, f) }

// GetLock returns the array's lock: Python's get_lock(). a.Lock(ctx) and
// the other lock methods of a are the same calls.
func (a *Array[T]) GetLock() *Lock { return &Lock{seg: a.seg} }

// Lock acquires the array's lock ([Lock.Lock]). Slice's accesses do not
// take it: it guards what the caller does while holding it.
func (a *Array[T]) Lock(ctx context.Context) error { return a.seg.lock(ctx) }

// TryLock is [Lock.TryLock] on the array's lock.
func (a *Array[T]) TryLock() (bool, error) { return a.seg.tryLock() }

// Unlock releases the array's lock ([Lock.Unlock]).
func (a *Array[T]) Unlock() error { return a.seg.mutex().Unlock() }

// MarkConsistent is [Lock.MarkConsistent] on the array's lock.
func (a *Array[T]) MarkConsistent() error { return a.seg.mutex().MarkConsistent() }

// Do runs f holding the array's lock ([Lock.Do]).
func (a *Array[T]) Do(ctx context.Context, f func()) error { return a.seg.do(ctx, f) }
