package psync

import (
	"context"
	"errors"
	"os"
	"sync"

	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Block layouts (offsets from the block's start; the kind tag is at 0).
const (
	lockWord   = 8  // Lock, RLock: the futex.Mutex word
	rlockCount = 16 // RLock: unused (the depth is the holder's, in depths); its address keys it
	lockSize   = line
)

// Locker is the small interface of a lock held by a process: [Lock],
// [RLock] and [Condition] have it, and so do package shm's Value and Array
// (their get_lock), which do not import this package. Lock blocks until the
// lock is held or ctx ends; it returns nil, [ErrOwnerDead] (held: the
// previous holder died holding it), or, not held, [ErrNotRecoverable] or an
// error wrapping ctx.Err(). Unlock returns [ErrNotHeld] when the calling
// process does not hold the lock.
type Locker interface {
	Lock(ctx context.Context) error
	Unlock() error
}

// CondLock is a lock a [Condition] can be made over: a *[Lock] or an
// *[RLock] (the unexported method keeps other implementations out: a
// Condition needs to know how to release every level of its lock).
type CondLock interface {
	Locker
	TryLock() (bool, error)
	MarkConsistent() error
	Holder() int
	Close() error
	core() lockCore
}

// lockCore is what a Condition needs of its lock.
type lockCore struct {
	m  *futex.Mutex
	rl *RLock // the RLock, whose depth Wait saves; nil for a Lock
	o  *obj
}

func (l *Lock) core() lockCore  { return lockCore{m: l.m, o: &l.obj} }
func (r *RLock) core() lockCore { return lockCore{m: r.m, rl: r, o: &r.obj} }

// Lock is a mutual-exclusion lock shared by processes: Python's
// multiprocessing.Lock, with an owner. It excludes every goroutine of every
// process that has it, including other goroutines of the holding process
// (a sync.Mutex across processes), and it is robust: when its holder dies,
// the next acquirer takes it and gets [ErrOwnerDead].
//
// Make one with [NewLock]; the zero Lock is not usable. Pass it to other
// processes as a Process argument or a pool task argument (at any depth
// in a struct): it travels as a resource, and the receiver's copy names
// the same lock. A Lock is safe for concurrent use.
//
// Unlike Python's Lock, which any process may release, Unlock by a process
// that does not hold the lock returns [ErrNotHeld]: an owner is what makes
// a dead holder detectable, and releasing someone else's lock is almost
// always a bug. Any goroutine of the holding process may unlock it, as
// with sync.Mutex.
type Lock struct {
	obj
	m *futex.Mutex
}

// NewLock returns a new, unlocked Lock in shared memory (many primitives
// share one memfd). Off Linux it returns an error matching
// errors.ErrUnsupported.
func NewLock() (*Lock, error) {
	l := &Lock{}
	p, err := l.create(kindLock, lockSize)
	if err != nil {
		return nil, err
	}
	l.m = l.mutex(p, lockWord)
	return l, nil
}

// Lock acquires the lock, blocking until it is free, its holder is found
// dead, or ctx ends. It returns nil (held); [ErrOwnerDead] (held: the
// previous holder died holding it, so what it guards may be inconsistent;
// repair it and call [Lock.MarkConsistent] before Unlock); or, not held,
// [ErrNotRecoverable] or an error wrapping ctx.Err().
//
// A sleeping waiter learns that a holder in another process died from the
// kernel's robust-list walk as the holder exits (a few hundred
// microseconds on a quiet machine), else from a pidfd watch, and at most
// within 100 ms (a timed check of /proc; see the package doc). Acquisition is not fair: a process that releases and re-acquires
// at once may win again.
func (l *Lock) Lock(ctx context.Context) error { return l.m.Lock(ctx) }

// TryLock acquires the lock if that needs no waiting: Python's
// acquire(block=False). ok reports whether the lock is now held; err is
// [ErrOwnerDead] (held, see Lock) or [ErrNotRecoverable] (not held).
func (l *Lock) TryLock() (ok bool, err error) { return l.m.TryLock() }

// Unlock releases the lock, which this process must hold ([ErrNotHeld]
// otherwise). After [ErrOwnerDead] without [Lock.MarkConsistent], Unlock
// makes the lock not recoverable: every later acquisition returns
// [ErrNotRecoverable].
func (l *Lock) Unlock() error { return l.m.Unlock() }

// MarkConsistent declares the state the lock guards repaired after
// [ErrOwnerDead]; this process must hold the lock ([ErrNotHeld]
// otherwise). It is pthread_mutex_consistent.
func (l *Lock) MarkConsistent() error { return l.m.MarkConsistent() }

// Holder returns the pid of the process that holds the lock, or 0 when it
// is free (or not recoverable). It is for diagnostics and tests: the answer
// may be stale as soon as it returns. A holder that died shows until
// someone takes the lock or the kernel marks the lock's holder dead (then
// 0; see [Lock.HolderDied]): under a millisecond on a quiet machine, a few
// on a loaded one (see the package doc's measurements).
func (l *Lock) Holder() int { return l.m.Holder() }

// HolderDied reports whether the lock is held by a process that died, so
// that the next acquirer will get [ErrOwnerDead]. It is for diagnostics
// and tests, like Holder (which no longer names a holder that the kernel
// has reported dead).
func (l *Lock) HolderDied() bool { return l.m.HolderDied() }

// Do runs f holding the lock: Python's `with lock:`. It returns Lock's
// error without running f when the lock is not held.
//
// After [ErrOwnerDead] Do still runs f, then unlocks and returns
// ErrOwnerDead; by the time Do returns, the lock is released. So the
// repair must happen inside f: f must restore what the lock guards and
// call [Lock.MarkConsistent] itself. Otherwise Do's Unlock makes the lock
// not recoverable and every later Lock and Do returns [ErrNotRecoverable];
// nothing can repair it after Do has returned. f is not told that the
// holder died (it is a func()); when the repair depends on knowing, use
// [Lock.DoRecover], whose f is told and whose nil result marks the lock
// consistent.
//
// Do also returns Unlock's error (joined with ErrOwnerDead when both
// happen; errors.Is sees each), for example [ErrNotHeld] when f unlocked
// the lock itself. If f panics, the lock is unlocked and the panic goes on.
func (l *Lock) Do(ctx context.Context, f func()) error {
	err := l.Lock(ctx)
	if err != nil && err != ErrOwnerDead {
		return err
	}
	return runLocked(err, f, l.Unlock)
}

// DoRecover runs f holding the lock, telling f whether the previous holder
// died holding it: ownerDead is true when Lock returned [ErrOwnerDead], so
// what the lock guards may be inconsistent and f should repair it. When f
// returns nil after ownerDead, DoRecover calls [Lock.MarkConsistent] before
// it unlocks, and the lock stays usable. When f returns an error (or
// panics) after ownerDead, the state is taken as not repaired: DoRecover
// unlocks without MarkConsistent, so the lock becomes not recoverable and
// every later acquisition returns [ErrNotRecoverable] (POSIX's rule for an
// unrepaired robust mutex); f must not call MarkConsistent or Unlock
// itself.
//
// DoRecover returns nil when f returned nil (a death f repaired is not an
// error); else f's error, joined with [ErrOwnerDead] when f was told of a
// death it did not repair; joined with MarkConsistent's and Unlock's errors
// when they fail (errors.Is sees each). When the lock cannot be taken
// (ctx ended, [ErrNotRecoverable]) f does not run and that error is
// returned. If f panics, the lock is unlocked and the panic goes on.
func (l *Lock) DoRecover(ctx context.Context, f func(ownerDead bool) error) error {
	return doRecover(ctx, l.Lock, l.MarkConsistent, l.Unlock, f)
}

// doRecover is DoRecover over any robust lock's Lock, MarkConsistent and
// Unlock.
func doRecover(ctx context.Context, lock func(context.Context) error, mark, unlock func() error, f func(ownerDead bool) error) (rerr error) {
	err := lock(ctx)
	if err != nil && err != ErrOwnerDead {
		return err
	}
	dead := err == ErrOwnerDead
	repaired := false
	defer func() {
		var merr error
		if dead && repaired {
			merr = mark()
		}
		if uerr := unlock(); merr != nil || uerr != nil {
			rerr = errors.Join(rerr, merr, uerr)
		}
	}()
	ferr := f(dead)
	if ferr == nil {
		repaired = true
		return nil
	}
	if dead {
		return errors.Join(ferr, ErrOwnerDead)
	}
	return ferr
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

// Close releases this process's copy of the lock: its robust-list
// registration, and, with the last primitive of this process in its
// memfd, the mapping and the descriptor; using the Lock afterwards is a
// fatal fault (SIGSEGV). In the process that made the lock it also tells
// pool workers that keep a copy to drop it. Close on a received Lock (a
// Process argument, a task's result) releases that process's copy only;
// in a pool task, where the worker keeps the copy for later tasks, it does
// nothing (see the package doc's "Lifetime"). Close does not unlock: the
// copy of a Lock this process holds is released once it is unlocked.
func (l *Lock) Close() error { _, err := l.close(l.m); return err }

// DropKept releases a pool worker's kept copy of the Lock: the worker's
// resource cache calls it when it stops keeping the Lock (its creator
// closed it, or the cache is full); it is Close for a copy no task
// may use any more. Users do not call it.
func (l *Lock) DropKept() { l.dropKept(l.m) }

// MarkKept is called by a pool worker that keeps this copy of the Lock for
// its later tasks: a task's Close then leaves it open, and DropKept
// releases it. Users do not call it.
func (l *Lock) MarkKept() { l.markKept() }

// NeedsDescriptors reports whether the Lock is open (wire.Resource).
func (l *Lock) NeedsDescriptors() bool { return l.needsDescriptors() }

// ExportResource describes the Lock to another process (wire.Exporter).
func (l *Lock) ExportResource(x *wire.Exported) error { return l.export(x) }

// ImportResource makes l the receiving process's copy (wire.Importer).
func (l *Lock) ImportResource(state []byte, files []*os.File) error {
	p, _, err := l.attach(state, files, kindLock, lockSize)
	if err != nil {
		return err
	}
	l.m = l.mutex(p, lockWord)
	return nil
}

// RLock is a re-entrant lock shared by processes: Python's
// multiprocessing.RLock, robust like [Lock]. Its owner is a process, not a
// goroutine (Go has no goroutine identity to record): once a process holds
// it, every goroutine of that process re-enters it, so an RLock excludes
// other processes but not the goroutines of the holding one from each
// other. Guard goroutines of one process with a sync.Mutex beside it, or
// use a Lock. Each Lock must be matched by an Unlock; the lock is released
// by the Unlock that matches the first Lock.
//
// Make one with [NewRLock]; the zero RLock is not usable. It travels to
// other processes like a Lock and is safe for concurrent use.
type RLock struct {
	obj
	m     *futex.Mutex
	count *uint32
}

// NewRLock returns a new, unlocked RLock (errors.ErrUnsupported off Linux).
func NewRLock() (*RLock, error) {
	r := &RLock{}
	p, err := r.create(kindRLock, lockSize)
	if err != nil {
		return nil, err
	}
	r.m, r.count = r.mutex(p, lockWord), u32(p, rlockCount)
	return r, nil
}

// depths holds the recursion depth of every RLock this process holds,
// keyed by the address of the lock's depth word (a memfd is mapped once per
// process, so the address names the lock). The depth lives here, not in
// the shared word: a depth change and the release it may lead to must be
// one step with respect to another goroutine re-entering, and a dead
// holder's depth in shared memory would be stale for the next one. An
// entry exists only between recording the acquisition and the release, so
// a goroutine that finds none takes the futex (and waits for a release if
// another goroutine of this process has just acquired it).
var depths struct {
	mu sync.Mutex
	m  map[*uint32]uint32
}

// reenter adds a level if this process holds the lock and has recorded it.
func (r *RLock) reenter() bool {
	depths.mu.Lock()
	defer depths.mu.Unlock()
	if d := depths.m[r.count]; d > 0 && r.m.Held() {
		depths.m[r.count] = d + 1
		return true
	}
	return false
}

// setDepth records the depth once the futex is held (d > 0).
func (r *RLock) setDepth(d uint32) {
	depths.mu.Lock()
	if depths.m == nil {
		depths.m = make(map[*uint32]uint32)
	}
	depths.m[r.count] = d
	depths.mu.Unlock()
}

// releaseAll takes every level and releases the futex in one step, for
// Condition.Wait. It returns the depth, or ErrNotHeld.
func (r *RLock) releaseAll() (uint32, error) {
	depths.mu.Lock()
	defer depths.mu.Unlock()
	d := depths.m[r.count]
	if d == 0 || !r.m.Held() {
		return 0, ErrNotHeld
	}
	delete(depths.m, r.count)
	if err := r.m.Unlock(); err != nil {
		depths.m[r.count] = d
		return 0, err
	}
	return d, nil
}

// Lock acquires the lock or re-enters it if this process holds it. Its
// results are those of [Lock.Lock]; after [ErrOwnerDead] the depth is 1.
// A goroutine whose Lock overlaps another goroutine's first acquisition
// may wait for that goroutine's release instead of re-entering.
func (r *RLock) Lock(ctx context.Context) error {
	if r.reenter() {
		return nil
	}
	err := r.m.Lock(ctx)
	if err == nil || err == ErrOwnerDead {
		r.setDepth(1)
	}
	return err
}

// TryLock is Lock without waiting, with [Lock.TryLock]'s results.
func (r *RLock) TryLock() (bool, error) {
	if r.reenter() {
		return true, nil
	}
	ok, err := r.m.TryLock()
	if ok {
		r.setDepth(1)
	}
	return ok, err
}

// Unlock undoes one Lock, releasing the lock when the depth reaches zero
// ([ErrNotHeld] if this process does not hold it).
func (r *RLock) Unlock() error {
	depths.mu.Lock()
	defer depths.mu.Unlock()
	d := depths.m[r.count]
	if d == 0 || !r.m.Held() {
		return ErrNotHeld
	}
	if d > 1 {
		depths.m[r.count] = d - 1
		return nil
	}
	// The release is under depths.mu: no goroutine can re-enter between
	// the depth reaching zero and the futex being free.
	delete(depths.m, r.count)
	return r.m.Unlock()
}

// MarkConsistent is [Lock.MarkConsistent].
func (r *RLock) MarkConsistent() error { return r.m.MarkConsistent() }

// DoRecover is [Lock.DoRecover] for the RLock: f runs holding it (one
// level), is told whether the previous holder died, and a nil from f after
// a death marks the lock consistent before it is released.
func (r *RLock) DoRecover(ctx context.Context, f func(ownerDead bool) error) error {
	return doRecover(ctx, r.Lock, r.MarkConsistent, r.Unlock, f)
}

// Holder is [Lock.Holder].
func (r *RLock) Holder() int { return r.m.Holder() }

// Do runs f holding the lock, as [Lock.Do] (read its ErrOwnerDead
// contract: the repair and [RLock.MarkConsistent] belong inside f), and
// returns Unlock's error too.
func (r *RLock) Do(ctx context.Context, f func()) error {
	err := r.Lock(ctx)
	if err != nil && err != ErrOwnerDead {
		return err
	}
	return runLocked(err, f, r.Unlock)
}

// Close is [Lock.Close].
// A depth left by closing a held RLock is harmless: every use checks the
// futex is held too, and the next acquisition overwrites it.
func (r *RLock) Close() error { _, err := r.close(r.m); return err }

// DropKept releases a pool worker's kept copy of the RLock: the worker's
// resource cache calls it when it stops keeping the RLock (its creator
// closed it, or the cache is full); it is Close for a copy no task
// may use any more. Users do not call it.
func (r *RLock) DropKept() { r.dropKept(r.m) }

// MarkKept is called by a pool worker that keeps this copy of the RLock for
// its later tasks: a task's Close then leaves it open, and DropKept
// releases it. Users do not call it.
func (r *RLock) MarkKept() { r.markKept() }

// NeedsDescriptors reports whether the RLock is open (wire.Resource).
func (r *RLock) NeedsDescriptors() bool { return r.needsDescriptors() }

// ExportResource describes the RLock to another process (wire.Exporter).
func (r *RLock) ExportResource(x *wire.Exported) error { return r.export(x) }

// ImportResource makes r the receiving process's copy (wire.Importer).
func (r *RLock) ImportResource(state []byte, files []*os.File) error {
	p, _, err := r.attach(state, files, kindRLock, lockSize)
	if err != nil {
		return err
	}
	r.m, r.count = r.mutex(p, lockWord), u32(p, rlockCount)
	return nil
}
