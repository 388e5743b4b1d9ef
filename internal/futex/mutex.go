package futex

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/errs"
)

// Errors of a [Mutex], registered so that they cross process boundaries;
// psync re-exports them. ErrOwnerDead is the root package's.
var (
	// ErrNotHeld: Unlock or MarkConsistent by a process that does not hold
	// the lock (or a Condition used without its lock).
	ErrNotHeld = errs.RegisterSentinel(errors.New("multiproc: lock not held by this process"))
	// ErrNotRecoverable: a lock whose dead holder's successor unlocked it
	// without MarkConsistent; it can never be taken again.
	ErrNotRecoverable = errs.RegisterSentinel(errors.New("multiproc: lock not recoverable"))
	// ErrOwnerDead: the previous holder died holding the lock.
	ErrOwnerDead = errs.ErrOwnerDead
)

// MutexSize is the number of bytes a Mutex word occupies (8-byte aligned).
const MutexSize = 8

// The 64-bit word: the low half is the futex word (pid and flags), the high
// half the holder's start-time tag, so one CAS names the holder exactly.
const (
	pidMask        = 1<<30 - 1
	flagIncons     = 1 << 30 // taken from a dead holder, not yet marked consistent
	flagWaiters    = 1 << 31 // some process may sleep on the word
	notRecoverable = pidMask // pid field of a lock that can never be taken
	spins          = 100
)

// lowOff is the byte offset of the low 32 bits of a uint64 in memory.
var lowOff = func() uintptr {
	x := uint64(1)
	if *(*byte)(unsafe.Pointer(&x)) == 1 {
		return 0
	}
	return 4
}()

// Mutex is a robust, process-shared mutex on an 8-byte word in shared
// memory (zero: unlocked). The word is owned by a process: goroutines of
// the holding process are excluded like those of any other (a Mutex is a
// sync.Mutex across processes), and any goroutine of the holding process
// may unlock it, as with sync.Mutex.
//
// The Mutex value itself is this process's handle on the word (its waiting
// gate and its watch on a holder): make one per word per process, and Close
// it when done. It is safe for concurrent use.
type Mutex struct {
	w     *uint64
	low   *uint32
	gate  *Gate
	self  uint64 // what this handle stamps: the robust thread's or the process's identity
	proc  uint64 // this process's identity: pid and start-time tag
	rob   uint64 // the robust thread's identity (0: none); a word holding proc or rob is ours
	alias *alias // the registered word, or nil
	hb    HB

	mu    sync.Mutex // guards watch
	watch *Watch     // of the last foreign holder this process slept on
}

// MutexAt returns a handle on the mutex word at p, which must be 8-byte
// aligned inside a shared mapping that outlives the handle. A holder's
// death is seen through its pidfd and timed checks; [NewMutex] adds the
// kernel's robust list, which is faster.
func MutexAt(p unsafe.Pointer) *Mutex {
	if uintptr(p)%8 != 0 {
		panic("futex: mutex word not 8-byte aligned")
	}
	self := me()
	rob := robustSelf()
	return &Mutex{w: (*uint64)(p), low: (*uint32)(unsafe.Add(p, lowOff)), gate: NewGate(), self: self, proc: self, rob: rob}
}

// NewMutex is [MutexAt] for a word the caller can also name by file and
// offset: p is the word in the caller's mapping of f at file offset off.
// The word is then registered, once per process, in the kernel's robust
// list (see robust_linux.go), so that a waiter learns of a holder's death
// from the kernel as soon as the holder's threads exit (~0.1–0.3 ms),
// rather than when its pidfd reports the whole process gone (1–3 ms for
// a Go process here). The handle accesses the word through an alias
// mapping of its page. When registration is not possible (another OS, the
// per-process limit of 2000 words) it is MutexAt(p).
//
// Call [Mutex.Release] before unmapping the memory.
func NewMutex(p unsafe.Pointer, f *os.File, off int64) *Mutex {
	m := MutexAt(p)
	a := register(f, off)
	if a == nil {
		return m
	}
	m.alias = a
	m.w, m.low = (*uint64)(a.addr), (*uint32)(unsafe.Add(a.addr, lowOff))
	m.rob = robustSelf()
	m.self = m.rob
	return m
}

// Release unregisters the handle's word from the robust list (the last
// handle on a word unlinks it, and the last on a page unmaps its alias),
// and closes the handle. The handle must not be used afterwards. Call it
// before unmapping the word's memory; for a handle from MutexAt it is
// Close.
func (m *Mutex) Release() {
	m.Close()
	m.mu.Lock()
	a := m.alias
	m.alias = nil
	m.mu.Unlock()
	if a != nil {
		a.unregister()
	}
}

// mine reports whether the word v names this process as its holder
// (through any handle's stamp).
func (m *Mutex) mine(v uint64) bool {
	x := v &^ (flagIncons | flagWaiters)
	return x == m.proc || (m.rob != 0 && x == m.rob)
}

// ownerDied reports whether the kernel marked the word's holder dead: its
// robust-list walk clears the holder's id and sets the owner-died bit
// (flagIncons), leaving the high half.
func ownerDied(v uint64) bool {
	low := uint32(v)
	return low&pidMask == 0 && low&flagIncons != 0
}

func me() uint64 {
	pid, tag := Self()
	return uint64(tag)<<32 | uint64(pid)
}

// Lock acquires the mutex. It returns nil, or [ErrOwnerDead] when it took
// the mutex from a holder that died (the caller holds it; what it guards may
// be inconsistent: repair it and call MarkConsistent before Unlock), or
// [ErrNotRecoverable] (not held), or an error wrapping ctx.Err() (not
// held).
func (m *Mutex) Lock(ctx context.Context) error {
	if atomic.CompareAndSwapUint64(m.w, 0, m.self) {
		m.hb.Acquire()
		return nil
	}
	err := m.lockSlow(ctx)
	m.hb.Acquire()
	return err
}

func (m *Mutex) lockSlow(ctx context.Context) error {
	self := m.self
	// A short spin: a holder on the other CPU often releases within the
	// microseconds a sleep and wake would cost (4–12 µs round trip here).
	for i := 0; i < spins; i++ {
		v := atomic.LoadUint64(m.w)
		if v == 0 {
			if atomic.CompareAndSwapUint64(m.w, 0, self) {
				return nil
			}
			continue
		}
		if uint32(v)&pidMask == notRecoverable {
			return ErrNotRecoverable
		}
		if v&flagWaiters != 0 || ownerDied(v) {
			break // others sleep already, or the holder died: join them
		}
		for j := 0; j < 20; j++ {
			pause()
		}
	}
	return m.gate.Wait(ctx, m.low, nil, func() (uint32, bool, error) {
		for {
			v := atomic.LoadUint64(m.w)
			if v == 0 {
				// Set the waiters flag on taking it: others may sleep.
				if atomic.CompareAndSwapUint64(m.w, 0, self|flagWaiters) {
					return 0, true, nil
				}
				continue
			}
			low := uint32(v)
			if low&pidMask == notRecoverable {
				return 0, true, ErrNotRecoverable
			}
			if ownerDied(v) || m.holderDead(v, true) {
				nv := self | flagIncons | uint64(low&flagWaiters)
				if atomic.CompareAndSwapUint64(m.w, v, nv) {
					return 0, true, ErrOwnerDead
				}
				continue
			}
			if low&flagWaiters == 0 && !atomic.CompareAndSwapUint64(m.w, v, v|flagWaiters) {
				continue
			}
			return low | flagWaiters, false, nil
		}
	})
}

// pause is a call the compiler cannot remove: the spin's delay.
//
//go:noinline
func pause() {}

// holderDead reports whether the holder recorded in v has died: gone, a
// zombie, or its pid reused by another process. watch makes the caller
// (the gate holder) watch the holder with a pidfd that wakes the word.
func (m *Mutex) holderDead(v uint64, watch bool) bool {
	pid, tag := uint32(v)&pidMask, uint32(v>>32)
	if spid, stag := uint32(m.proc), uint32(m.proc>>32); pid == spid {
		return tag != stag // a dead process that had our pid
	}
	if rtid, rtag := uint32(m.rob), uint32(m.rob>>32); m.rob != 0 && pid == rtid {
		return tag != rtag // a dead thread that had our robust thread's id
	}
	if !watch {
		return !Alive(pid, tag)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.watch; w != nil && w.Pid == pid && w.Tag == tag {
		if w.Dead() {
			return true
		}
		if w.Polled() {
			return false // the pidfd reports the exit
		}
		return !Alive(pid, tag)
	}
	if m.watch != nil {
		m.watch.Close()
		m.watch = nil
	}
	low := m.low
	w, err := NewWatch(pid, tag, func() { Wake(low, 0) })
	if err != nil {
		return !Alive(pid, tag) // no pidfd: timed checks every Chunk
	}
	m.watch = w
	return w.Dead()
}

// TryLock acquires the mutex if it is free or its holder is dead, without
// waiting: ok reports whether it is now held; err is nil, [ErrOwnerDead]
// (held, as for Lock) or [ErrNotRecoverable] (not held).
func (m *Mutex) TryLock() (ok bool, err error) {
	defer m.hb.Acquire()
	self := m.self
	for {
		v := atomic.LoadUint64(m.w)
		if v == 0 {
			if atomic.CompareAndSwapUint64(m.w, 0, self) {
				return true, nil
			}
			continue
		}
		low := uint32(v)
		if low&pidMask == notRecoverable {
			return false, ErrNotRecoverable
		}
		if !ownerDied(v) && !m.holderDead(v, false) {
			return false, nil
		}
		if atomic.CompareAndSwapUint64(m.w, v, self|flagIncons|uint64(low&flagWaiters)) {
			return true, ErrOwnerDead
		}
	}
}

// Unlock releases the mutex, which this process must hold ([ErrNotHeld]
// otherwise). Unlocking a mutex taken with ErrOwnerDead and not marked
// consistent makes it not recoverable: every later Lock returns
// [ErrNotRecoverable].
func (m *Mutex) Unlock() error {
	m.hb.Release()
	self := m.self
	if atomic.CompareAndSwapUint64(m.w, self, 0) {
		return nil
	}
	for {
		v := atomic.LoadUint64(m.w)
		if !m.mine(v) {
			return ErrNotHeld
		}
		if v&flagIncons != 0 {
			atomic.StoreUint64(m.w, notRecoverable)
			Wake(m.low, 0)
			return nil
		}
		if atomic.CompareAndSwapUint64(m.w, v, 0) {
			if v&flagWaiters != 0 {
				Wake(m.low, 1)
			}
			return nil
		}
	}
}

// MarkConsistent records that the holder repaired what the mutex guards
// after [ErrOwnerDead]: Unlock then releases it normally. It returns
// [ErrNotHeld] when this process does not hold the mutex, and nil when the
// mutex was consistent already.
func (m *Mutex) MarkConsistent() error {
	for {
		v := atomic.LoadUint64(m.w)
		if !m.mine(v) {
			return ErrNotHeld
		}
		if v&flagIncons == 0 || atomic.CompareAndSwapUint64(m.w, v, v&^flagIncons) {
			return nil
		}
	}
}

// Held reports whether this process holds the mutex.
func (m *Mutex) Held() bool { return m.mine(atomic.LoadUint64(m.w)) }

// Contended reports whether the word's waiters flag is set: some process
// went to sleep on it (set only after the sleeper began watching the
// holder). For tests.
func (m *Mutex) Contended() bool { return atomic.LoadUint64(m.w)&flagWaiters != 0 }

// Holder returns the pid of the process recorded in the word (0: free, not
// recoverable, or marked dead by the kernel), for diagnostics and tests;
// it may be stale as soon as it returns. A robust stamp names a thread,
// whose process is looked up in /proc (the thread id itself when that
// fails).
func (m *Mutex) Holder() int {
	p := uint32(atomic.LoadUint64(m.w)) & pidMask
	if p == notRecoverable || p == 0 {
		return 0
	}
	if m.rob != 0 && p == uint32(m.rob) {
		return int(uint32(m.proc))
	}
	return tgid(int(p))
}

// HolderDied reports whether the word is held by a process that died: the
// kernel marked it, or the process it names is gone. The next acquirer
// gets ErrOwnerDead. For diagnostics and tests; it reads /proc when the
// word names another process.
func (m *Mutex) HolderDied() bool {
	v := atomic.LoadUint64(m.w)
	switch {
	case v == 0 || uint32(v)&pidMask == notRecoverable:
		return false
	case ownerDied(v):
		return true
	}
	return m.holderDead(v, false)
}

// Close releases this process's handle (its pidfd watch); the word and the
// lock state are untouched.
func (m *Mutex) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watch != nil {
		m.watch.Close()
		m.watch = nil
	}
}

func addU32(p *uint32, d uint32) { atomic.AddUint32(p, d) }
