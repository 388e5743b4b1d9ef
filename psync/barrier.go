package psync

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/wire"
)

const (
	barGen     = 4  // generation: bumped when one ends (the futex word)
	barWait    = 8  // processes sleeping on the generation
	barParties = 12 //
	barMutex   = 16 // guards the rest
	barCount   = 24 // parties arrived in this generation
	barBroken  = 28 // 1 while broken (until Reset)
	barRing    = 32 // bit g%32: generation g ended broken
	barArrived = line

	// MaxParties bounds a Barrier's parties.
	MaxParties = 1 << 16
)

// Barrier makes a fixed number of parties wait for each other: Python's
// multiprocessing.Barrier, shared by processes. Each Wait blocks until
// Parties calls of Wait (from any processes and goroutines) have arrived,
// then all return together and the barrier is ready for the next round.
//
// The barrier breaks (every waiter, and every later Wait until
// [Barrier.Reset], returns [ErrBrokenBarrier]) on [Barrier.Abort], on Reset
// while parties wait, when a waiter's ctx ends (as a timeout does in
// Python), and when a process dies while one of its parties waits: a
// waiting process watches the others' through pidfds and learns of the
// death within a few milliseconds (2–3 ms measured on a quiet machine,
// most of it the kernel's report of the exit), and within 100 ms (a timed
// check) when it cannot watch them. A party that dies before arriving
// leaves the others waiting until their ctx ends, which breaks it, as in
// Python.
//
// Make one with [NewBarrier]; it travels to other processes as a resource
// and is safe for concurrent use.
type Barrier struct {
	obj
	p          unsafe.Pointer
	gen, nwait *uint32
	parties    int
	m          *futex.Mutex
	gate       *futex.Gate
	hb         futex.HB
}

// NewBarrier returns a barrier for parties parties. Parties outside 1 to
// [MaxParties] return an error matching [ErrInvalidArgument]. Off Linux it
// returns an error matching errors.ErrUnsupported.
func NewBarrier(parties int) (*Barrier, error) {
	if parties < 1 || parties > MaxParties {
		return nil, fmt.Errorf("psync: NewBarrier(%d): parties out of range: %w", parties, ErrInvalidArgument)
	}
	b := &Barrier{}
	p, err := b.create(kindBarrier, barArrived+parties*8)
	if err != nil {
		return nil, err
	}
	atomic.StoreUint32(u32(p, barParties), uint32(parties))
	b.bind(p)
	return b, nil
}

func (b *Barrier) bind(p unsafe.Pointer) {
	b.p, b.gen, b.nwait = p, u32(p, barGen), u32(p, barWait)
	b.parties = int(atomic.LoadUint32(u32(p, barParties)))
	b.m, b.gate = b.mutex(p, barMutex), futex.NewGate()
}

func (b *Barrier) arrived(i int) *uint64 { return (*uint64)(unsafe.Add(b.p, barArrived+i*8)) }

// lockState takes the barrier's mutex; a party that died holding it breaks
// the barrier.
func (b *Barrier) lockState(ctx context.Context) error {
	err := b.m.Lock(ctx)
	if err == ErrOwnerDead {
		b.breakLocked(true)
		return b.m.MarkConsistent()
	}
	return err
}

// endLocked ends the current generation, broken or not, and wakes its
// waiters.
func (b *Barrier) endLocked(broken bool) {
	g := atomic.LoadUint32(b.gen)
	ring := u32(b.p, barRing)
	if broken {
		atomic.StoreUint32(ring, atomic.LoadUint32(ring)|1<<(g%32))
	} else {
		atomic.StoreUint32(ring, atomic.LoadUint32(ring)&^(1<<(g%32)))
	}
	atomic.StoreUint32(u32(b.p, barCount), 0)
	b.hb.Release()
	atomic.AddUint32(b.gen, 1)
	if atomic.LoadUint32(b.nwait) > 0 {
		futex.Wake(b.gen, 0)
	}
}

func (b *Barrier) breakLocked(broken bool) {
	atomic.StoreUint32(u32(b.p, barBroken), 1)
	if atomic.LoadUint32(u32(b.p, barCount)) > 0 {
		b.endLocked(true)
	}
}

// Wait arrives at the barrier and blocks until all parties have. It
// returns the arrival index (0 to Parties-1, different for each party of
// a round; Python's return value) and nil, or [ErrBrokenBarrier] (wrapping
// ctx.Err() when this waiter's ctx ended, which breaks the barrier).
func (b *Barrier) Wait(ctx context.Context) (int, error) {
	if err := b.lockState(ctx); err != nil {
		return 0, err
	}
	if atomic.LoadUint32(u32(b.p, barBroken)) != 0 {
		b.m.Unlock()
		return 0, ErrBrokenBarrier
	}
	g := atomic.LoadUint32(b.gen)
	idx := int(atomic.LoadUint32(u32(b.p, barCount)))
	atomic.StoreUint64(b.arrived(idx), self64())
	atomic.StoreUint32(u32(b.p, barCount), uint32(idx+1))
	if idx+1 == b.parties {
		b.endLocked(false)
		b.m.Unlock()
		return idx, nil
	}
	b.m.Unlock()
	first := true
	var ws watches
	defer ws.close()
	err := b.gate.Wait(ctx, b.gen, b.nwait, func() (uint32, bool, error) {
		if atomic.LoadUint32(b.gen) != g {
			return 0, true, nil
		}
		if !first && b.deadParty(&ws) {
			if err := b.lockState(context.Background()); err != nil {
				return 0, true, err
			}
			if atomic.LoadUint32(b.gen) == g {
				b.breakLocked(true)
			}
			b.m.Unlock()
			return 0, true, nil
		}
		first = false
		return g, false, nil
	})
	b.hb.Acquire()
	if err != nil && ctx.Err() != nil {
		if lerr := b.lockState(context.WithoutCancel(ctx)); lerr == nil {
			if atomic.LoadUint32(b.gen) == g {
				b.breakLocked(true)
			}
			b.m.Unlock()
		}
		if atomic.LoadUint32(b.gen) == g || b.endedBroken(g) {
			return idx, fmt.Errorf("%w: %w", ErrBrokenBarrier, err)
		}
		return idx, nil // the round completed as the ctx ended
	}
	if err != nil {
		return idx, err
	}
	if b.endedBroken(g) {
		return idx, ErrBrokenBarrier
	}
	return idx, nil
}

func (b *Barrier) endedBroken(g uint32) bool {
	return atomic.LoadUint32(u32(b.p, barRing))&(1<<(g%32)) != 0
}

// deadParty reports whether a party of the current round has died. The
// caller is the gate holder: it watches each other process with a party in
// the round through a pidfd (at most maxWatches of them) whose exit wakes
// the generation word, so a death is seen within a few milliseconds; a
// party it cannot watch is seen by the timed check, every [futex.Chunk].
func (b *Barrier) deadParty(ws *watches) bool {
	spid, _ := futex.Self()
	n := min(int(atomic.LoadUint32(u32(b.p, barCount))), b.parties)
	for i := range n {
		v := atomic.LoadUint64(b.arrived(i))
		if v == 0 || uint32(v) == spid {
			continue
		}
		if ws.dead(uint32(v), uint32(v>>32), b.gen) {
			return true
		}
	}
	return false
}

// maxWatches bounds the pidfds one waiting process holds for a Barrier
// round; parties beyond it are checked every [futex.Chunk].
const maxWatches = 64

// watches are one Barrier.Wait's pidfd watches on the other parties'
// processes, by pid and start-time tag.
type watches struct{ ws []*futex.Watch }

// dead reports whether process pid (start-time tag) has died, watching it
// so that its exit wakes word when it can.
func (s *watches) dead(pid, tag uint32, word *uint32) bool {
	for _, w := range s.ws {
		if w.Pid == pid && w.Tag == tag {
			if w.Dead() {
				return true
			}
			if w.Polled() {
				return false // the pidfd reports the exit
			}
			return !futex.Alive(pid, tag)
		}
	}
	if len(s.ws) < maxWatches {
		w, err := futex.NewWatch(pid, tag, func() { futex.Wake(word, 0) })
		if err == nil {
			s.ws = append(s.ws, w)
			if w.Dead() {
				return true
			}
			if w.Polled() {
				return false
			}
		}
	}
	return !futex.Alive(pid, tag)
}

func (s *watches) close() {
	for _, w := range s.ws {
		w.Close()
	}
}

// Abort breaks the barrier: waiters return [ErrBrokenBarrier], and so does
// every Wait until [Barrier.Reset].
func (b *Barrier) Abort() error {
	if err := b.lockState(context.Background()); err != nil {
		return err
	}
	b.breakLocked(true)
	return b.m.Unlock()
}

// Reset returns the barrier to its initial state; parties waiting return
// [ErrBrokenBarrier].
func (b *Barrier) Reset() error {
	if err := b.lockState(context.Background()); err != nil {
		return err
	}
	if atomic.LoadUint32(u32(b.p, barCount)) > 0 {
		b.endLocked(true)
	}
	atomic.StoreUint32(u32(b.p, barBroken), 0)
	return b.m.Unlock()
}

// Parties returns the number of parties a round needs.
func (b *Barrier) Parties() int { return b.parties }

// NWaiting returns the number of parties waiting in the current round; it
// may be stale as soon as it returns.
func (b *Barrier) NWaiting() int { return int(atomic.LoadUint32(u32(b.p, barCount))) }

// Broken reports whether the barrier is broken.
func (b *Barrier) Broken() bool { return atomic.LoadUint32(u32(b.p, barBroken)) != 0 }

// Close is [Lock.Close].
func (b *Barrier) Close() error { _, err := b.close(b.m); return err }

// DropKept releases a pool worker's kept copy of the Barrier: the worker's
// resource cache calls it when it stops keeping the Barrier (its creator
// closed it, or the cache is full); it is Close for a copy no task
// may use any more. Users do not call it.
func (b *Barrier) DropKept() { b.dropKept(b.m) }

// MarkKept is called by a pool worker that keeps this copy of the Barrier for
// its later tasks: a task's Close then leaves it open, and DropKept
// releases it. Users do not call it.
func (b *Barrier) MarkKept() { b.markKept() }

// NeedsDescriptors reports whether the Barrier is open (wire.Resource).
func (b *Barrier) NeedsDescriptors() bool { return b.needsDescriptors() }

// ExportResource describes the Barrier to another process (wire.Exporter).
func (b *Barrier) ExportResource(x *wire.Exported) error { return b.export(x) }

// ImportResource makes b the receiving process's copy (wire.Importer).
func (b *Barrier) ImportResource(state []byte, files []*os.File) error {
	if len(files) != 1 {
		closeFiles(files)
		return fmt.Errorf("psync: importing Barrier: %d descriptors", len(files))
	}
	p, _, err := b.attachFile(state, files[0], kindBarrier, barArrived+8)
	if err != nil {
		return err
	}
	n := int(atomic.LoadUint32(u32(p, barParties)))
	if n < 1 || n > MaxParties || b.off+barArrived+n*8 > len(b.a.mem) {
		return fmt.Errorf("psync: importing Barrier: %d parties do not fit its block", n)
	}
	b.bind(p)
	return nil
}
