package psync

import (
	"context"
	"fmt"
	"math"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/wire"
)

const (
	semValue = 4 // Semaphore, BoundedSemaphore: units available (the futex word)
	semWait  = 8 // processes sleeping on the value
	semSize  = line

	bsemBound     = 12 // BoundedSemaphore: the initial value
	bsemMutex     = 16 // guards the holder table and the value's updates
	bsemReclaimed = 24 // units returned by dead holders, not yet handed out
	bsemTable     = line
	holderSize    = 16 // ident (pid | tag<<32) u64, units u32

	// MaxHolders is how many processes may hold units of one
	// BoundedSemaphore at the same time.
	MaxHolders = 127
	bsemSize   = bsemTable + MaxHolders*holderSize
)

// Semaphore is a counting semaphore shared by processes: Python's
// multiprocessing.Semaphore. Any process may release it, so it does not
// track who holds units: units held by a process that dies are lost (use
// a [BoundedSemaphore] to get them back).
//
// Make one with [NewSemaphore]; it travels to other processes as a
// resource and is safe for concurrent use.
type Semaphore struct {
	obj
	value, nwait *uint32
	gate         *futex.Gate
	hb           futex.HB
}

// NewSemaphore returns a semaphore with value units. A value outside 0 to
// math.MaxInt32 returns an error matching [ErrInvalidArgument]. Off Linux
// it returns an error matching errors.ErrUnsupported.
func NewSemaphore(value int) (*Semaphore, error) {
	if value < 0 || value > math.MaxInt32 {
		return nil, fmt.Errorf("psync: NewSemaphore(%d): value out of range: %w", value, ErrInvalidArgument)
	}
	s := &Semaphore{}
	p, err := s.create(kindSemaphore, semSize)
	if err != nil {
		return nil, err
	}
	s.bind(p)
	atomic.StoreUint32(s.value, uint32(value))
	return s, nil
}

func (s *Semaphore) bind(p unsafe.Pointer) {
	s.value, s.nwait, s.gate = u32(p, semValue), u32(p, semWait), futex.NewGate()
}

// Acquire takes one unit, blocking until one is available or ctx ends (an
// error wrapping ctx.Err(); nothing taken).
func (s *Semaphore) Acquire(ctx context.Context) error {
	if s.TryAcquire() {
		return nil
	}
	defer s.hb.Acquire()
	return s.gate.Wait(ctx, s.value, s.nwait, func() (uint32, bool, error) {
		if s.TryAcquire() {
			return 0, true, nil
		}
		return 0, false, nil
	})
}

// TryAcquire takes one unit if one is available, without waiting:
// Python's acquire(block=False).
func (s *Semaphore) TryAcquire() bool {
	for {
		v := atomic.LoadUint32(s.value)
		if v == 0 {
			return false
		}
		if atomic.CompareAndSwapUint32(s.value, v, v-1) {
			s.hb.Acquire()
			return true
		}
	}
}

// Release returns one unit (any process may release).
func (s *Semaphore) Release() {
	s.hb.Release()
	atomic.AddUint32(s.value, 1)
	if atomic.LoadUint32(s.nwait) > 0 {
		futex.Wake(s.value, 1)
	}
}

// Do runs f holding one unit: Python's `with sem:`. It returns Acquire's
// error without running f when no unit was taken.
func (s *Semaphore) Do(ctx context.Context, f func()) error {
	if err := s.Acquire(ctx); err != nil {
		return err
	}
	defer s.Release()
	f()
	return nil
}

// Value returns the number of units available (Python's get_value); it may
// be stale as soon as it returns.
func (s *Semaphore) Value() int { return int(atomic.LoadUint32(s.value)) }

// Close is [Lock.Close].
func (s *Semaphore) Close() error { _, err := s.close(); return err }

// DropKept releases a pool worker's kept copy of the Semaphore: the worker's
// resource cache calls it when it stops keeping the Semaphore (its creator
// closed it, or the cache is full); it is Close for a copy no task
// may use any more. Users do not call it.
func (s *Semaphore) DropKept() { s.dropKept() }

// MarkKept is called by a pool worker that keeps this copy of the Semaphore for
// its later tasks: a task's Close then leaves it open, and DropKept
// releases it. Users do not call it.
func (s *Semaphore) MarkKept() { s.markKept() }

// NeedsDescriptors reports whether the Semaphore is open (wire.Resource).
func (s *Semaphore) NeedsDescriptors() bool { return s.needsDescriptors() }

// ExportResource describes the Semaphore to another process (wire.Exporter).
func (s *Semaphore) ExportResource(x *wire.Exported) error { return s.export(x) }

// ImportResource makes s the receiving process's copy (wire.Importer).
func (s *Semaphore) ImportResource(state []byte, files []*os.File) error {
	p, _, err := s.attach(state, files, kindSemaphore, semSize)
	if err != nil {
		return err
	}
	s.bind(p)
	return nil
}

// BoundedSemaphore is a semaphore whose units are owned by the processes
// that acquired them: Python's multiprocessing.BoundedSemaphore, made
// robust. When a process dies holding units they are returned, and the
// Acquire that receives one returns [ErrOwnerDead] (holding the unit: what
// the unit guarded may need repair). Release from a process that holds no
// unit returns [ErrOverReleased]: unlike Python, where any process may
// release, a unit must be released by the process that acquired it, since
// otherwise a death could not say whose units to return.
//
// A dead holder's units are returned when a waiter looks for them: within
// 50 ms of the death while some Acquire waits. At most
// [MaxHolders] processes may hold units at once.
//
// Make one with [NewBoundedSemaphore]; it travels to other processes as a
// resource and is safe for concurrent use.
type BoundedSemaphore struct {
	obj
	p            unsafe.Pointer
	value, nwait *uint32
	bound        uint32
	m            *futex.Mutex
	gate         *futex.Gate
}

// NewBoundedSemaphore returns a semaphore with value units, which is also
// the most it can hold. A value outside 0 to math.MaxInt32 returns an
// error matching [ErrInvalidArgument]. Off Linux it returns an error
// matching errors.ErrUnsupported.
func NewBoundedSemaphore(value int) (*BoundedSemaphore, error) {
	if value < 0 || value > math.MaxInt32 {
		return nil, fmt.Errorf("psync: NewBoundedSemaphore(%d): value out of range: %w", value, ErrInvalidArgument)
	}
	s := &BoundedSemaphore{}
	p, err := s.create(kindBounded, bsemSize)
	if err != nil {
		return nil, err
	}
	atomic.StoreUint32(u32(p, bsemBound), uint32(value))
	atomic.StoreUint32(u32(p, semValue), uint32(value))
	s.bind(p)
	return s, nil
}

func (s *BoundedSemaphore) bind(p unsafe.Pointer) {
	s.p, s.value, s.nwait = p, u32(p, semValue), u32(p, semWait)
	s.bound = atomic.LoadUint32(u32(p, bsemBound))
	s.m, s.gate = s.mutex(p, bsemMutex), futex.NewGate()
}

func (s *BoundedSemaphore) holder(i int) (*uint64, *uint32) {
	h := unsafe.Add(s.p, bsemTable+i*holderSize)
	return (*uint64)(h), u32(h, 8)
}

func self64() uint64 {
	pid, tag := futex.Self()
	return uint64(tag)<<32 | uint64(pid)
}

// lockState takes the table's mutex. A process that died holding it may
// have left the value and the table disagreeing; the table is the truth
// (each count is one word), so the value is recomputed from it.
func (s *BoundedSemaphore) lockState(ctx context.Context) error {
	err := s.m.Lock(ctx)
	if err == ErrOwnerDead {
		held := uint32(0)
		for i := range MaxHolders {
			if id, n := s.holder(i); atomic.LoadUint64(id) != 0 {
				held += atomic.LoadUint32(n)
			}
		}
		v := s.bound - min(held, s.bound)
		atomic.StoreUint32(s.value, v)
		r := u32(s.p, bsemReclaimed)
		atomic.StoreUint32(r, min(atomic.LoadUint32(r), v))
		return s.m.MarkConsistent()
	}
	return err
}

// takeLocked takes a unit if one is available, after returning dead
// holders' units when reclaim is set. The table's mutex is held.
func (s *BoundedSemaphore) takeLocked(reclaim bool) (got, fromDead bool, err error) {
	me := self64()
	if reclaim && atomic.LoadUint32(s.value) == 0 {
		for i := range MaxHolders {
			id, n := s.holder(i)
			v := atomic.LoadUint64(id)
			if v == 0 || v == me || futex.Alive(uint32(v), uint32(v>>32)) {
				continue
			}
			k := atomic.LoadUint32(n)
			atomic.StoreUint32(n, 0)
			atomic.StoreUint64(id, 0)
			atomic.AddUint32(u32(s.p, bsemReclaimed), k)
			atomic.AddUint32(s.value, k)
		}
	}
	if atomic.LoadUint32(s.value) == 0 {
		return false, false, nil
	}
	free := -1
	slot := -1
	for i := range MaxHolders {
		id, _ := s.holder(i)
		v := atomic.LoadUint64(id)
		if v == me {
			slot = i
			break
		}
		if v == 0 && free < 0 {
			free = i
		}
	}
	if slot < 0 {
		if free < 0 {
			return false, false, fmt.Errorf("psync: BoundedSemaphore held by %d processes: %w", MaxHolders, ErrTooManyWaiters)
		}
		slot = free
		id, _ := s.holder(slot)
		atomic.StoreUint64(id, me)
	}
	// The count first: a death between the two leaves the value too high
	// by one, which lockState's recomputation repairs.
	_, n := s.holder(slot)
	atomic.AddUint32(n, 1)
	atomic.AddUint32(s.value, ^uint32(0))
	r := u32(s.p, bsemReclaimed)
	if atomic.LoadUint32(r) > 0 {
		atomic.AddUint32(r, ^uint32(0))
		fromDead = true
	}
	return true, fromDead, nil
}

// Acquire takes one unit, blocking until one is available (returned by a
// live holder, or taken back from a dead one) or ctx ends. It returns nil,
// [ErrOwnerDead] (the unit came from a dead holder), or, holding nothing,
// an error wrapping ctx.Err() or [ErrTooManyWaiters].
func (s *BoundedSemaphore) Acquire(ctx context.Context) error {
	for reclaim := false; ; reclaim = true {
		if err := s.lockState(ctx); err != nil {
			return err
		}
		got, dead, err := s.takeLocked(reclaim)
		s.m.Unlock()
		switch {
		case err != nil:
			return err
		case got && dead:
			return ErrOwnerDead
		case got:
			return nil
		}
		// Sleep until a release (or a chunk passed: look for dead holders).
		first := true
		if err := s.gate.Wait(ctx, s.value, s.nwait, func() (uint32, bool, error) {
			if !first || atomic.LoadUint32(s.value) > 0 {
				return 0, true, nil
			}
			first = false
			return 0, false, nil
		}); err != nil {
			return err
		}
	}
}

// TryAcquire takes a unit if one is available now (returning dead
// holders' units first): ok reports whether it took one; err is
// [ErrOwnerDead] when the unit came from a dead holder.
func (s *BoundedSemaphore) TryAcquire() (ok bool, err error) {
	if err := s.lockState(context.Background()); err != nil {
		return false, err
	}
	got, dead, err := s.takeLocked(true)
	s.m.Unlock()
	if dead {
		err = ErrOwnerDead
	}
	return got, err
}

// Release returns one unit acquired by this process ([ErrOverReleased]
// if it holds none).
func (s *BoundedSemaphore) Release() error {
	if err := s.lockState(context.Background()); err != nil {
		return err
	}
	me := self64()
	err := ErrOverReleased
	for i := range MaxHolders {
		id, n := s.holder(i)
		if atomic.LoadUint64(id) != me || atomic.LoadUint32(n) == 0 {
			continue
		}
		if atomic.AddUint32(n, ^uint32(0)) == 0 {
			atomic.StoreUint64(id, 0)
		}
		atomic.AddUint32(s.value, 1)
		err = nil
		break
	}
	s.m.Unlock()
	if err == nil && atomic.LoadUint32(s.nwait) > 0 {
		futex.Wake(s.value, 1)
	}
	return err
}

// Do runs f holding one unit: Python's `with sem:`. It returns Acquire's
// error without running f when no unit was taken; when the unit came from
// a dead holder it runs f and returns [ErrOwnerDead]. It returns
// Release's error too (joined with ErrOwnerDead when both happen).
func (s *BoundedSemaphore) Do(ctx context.Context, f func()) error {
	err := s.Acquire(ctx)
	if err != nil && err != ErrOwnerDead {
		return err
	}
	return runLocked(err, f, s.Release)
}

// Value returns the number of units available; it may be stale as soon as
// it returns (and does not count a dead holder's units not yet returned).
func (s *BoundedSemaphore) Value() int { return int(atomic.LoadUint32(s.value)) }

// Close is [Lock.Close].
// Units this process holds stay held (they return to the others when it
// exits).
func (s *BoundedSemaphore) Close() error { _, err := s.close(s.m); return err }

// DropKept releases a pool worker's kept copy of the BoundedSemaphore: the worker's
// resource cache calls it when it stops keeping the BoundedSemaphore (its creator
// closed it, or the cache is full); it is Close for a copy no task
// may use any more. Users do not call it.
func (s *BoundedSemaphore) DropKept() { s.dropKept(s.m) }

// MarkKept is called by a pool worker that keeps this copy of the BoundedSemaphore for
// its later tasks: a task's Close then leaves it open, and DropKept
// releases it. Users do not call it.
func (s *BoundedSemaphore) MarkKept() { s.markKept() }

// NeedsDescriptors reports whether the semaphore is open (wire.Resource).
func (s *BoundedSemaphore) NeedsDescriptors() bool { return s.needsDescriptors() }

// ExportResource describes the semaphore to another process (wire.Exporter).
func (s *BoundedSemaphore) ExportResource(x *wire.Exported) error { return s.export(x) }

// ImportResource makes s the receiving process's copy (wire.Importer).
func (s *BoundedSemaphore) ImportResource(state []byte, files []*os.File) error {
	p, _, err := s.attach(state, files, kindBounded, bsemSize)
	if err != nil {
		return err
	}
	s.bind(p)
	return nil
}
