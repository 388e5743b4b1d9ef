package psync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/memfd"
)

// An arena is one memfd holding many primitives, each in a block of its
// own at a 64-byte-aligned offset (a cache line of its own, so two busy
// locks do not slow each other). The creating process fills the current
// arena until it is full and then makes another; blocks are never reused,
// so an offset a child received always names the object it was given.
//
//	arena: [0,64) header: magic "mpsy" (u32), version (u32), size (u64)
//	block: [0,4) kind tag (blockMagic | kind), then the kind's fields
const (
	arenaSize    = 64 << 10
	arenaMagic   = 0x7973706d // "mpsy"
	arenaVersion = 1
	blockMagic   = 0x5053 << 16
	line         = 64
)

type kind uint32

const (
	kindLock kind = iota + 1
	kindRLock
	kindSemaphore
	kindBounded
	kindEvent
	kindCondition
	kindBarrier
)

func (k kind) String() string {
	return [...]string{"?", "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event", "Condition", "Barrier"}[min(int(k), 7)]
}

type arena struct {
	files []*os.File // the memfd, as one slice that exports hand out without allocating
	mem   []byte
	key   [2]uint64 // device and inode: one mapping per memfd per process
	used  int       // bytes allocated (creator)
	refs  int       // open objects of this process in the arena (made here or imported); guarded by arenas
	mine  bool      // made by this process
}

// arenas is this process's table of mapped arenas. An arena, made here or
// received, is unmapped and its memfd closed when the last object of this
// process in it is released: a long-lived pool worker given fresh
// primitives round after round holds only the arenas of the primitives it
// still keeps.
var arenas struct {
	sync.Mutex
	cur    *arena
	byKey  map[[2]uint64]*arena
	parked []*parked // objects released while this process held their lock
}

// parked is an object whose release waits for its lock to be free: its
// word stays mapped and in the robust list while this process holds it
// (a task that returned holding a lock its worker then dropped, or a
// goroutine that still holds it), so that the kernel still reports it
// if the process dies, and a late Unlock touches mapped memory.
type parked struct {
	a  *arena
	ms []*futex.Mutex
}

func fileKey(f *os.File) ([2]uint64, error) {
	fi, err := f.Stat()
	if err != nil {
		return [2]uint64{}, err
	}
	return statKey(fi), nil
}

// alloc reserves size bytes (a multiple of line) in the current arena, or
// in a new one, and returns the arena and the block's offset.
func alloc(size int) (*arena, int, error) {
	if !futex.Supported {
		return nil, 0, errUnsupported
	}
	size = (size + line - 1) &^ (line - 1)
	arenas.Lock()
	defer arenas.Unlock()
	a := arenas.cur
	if a == nil || a.used+size > len(a.mem) {
		n := max(arenaSize, (line+size+memfd.PageSize-1)&^(memfd.PageSize-1))
		f, err := memfd.New("multiproc-psync", int64(n))
		if err != nil {
			return nil, 0, fmt.Errorf("psync: creating shared memory: %w", err)
		}
		mem, err := memfd.Map(f, 0, n)
		if err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("psync: mapping shared memory: %w", err)
		}
		key, err := fileKey(f)
		if err != nil {
			memfd.Unmap(mem)
			f.Close()
			return nil, 0, fmt.Errorf("psync: shared memory: %w", err)
		}
		binary.LittleEndian.PutUint32(mem[0:], arenaMagic)
		binary.LittleEndian.PutUint32(mem[4:], arenaVersion)
		binary.LittleEndian.PutUint64(mem[8:], uint64(n))
		a = &arena{files: []*os.File{f}, mem: mem, key: key, used: line, mine: true}
		if arenas.byKey == nil {
			arenas.byKey = map[[2]uint64]*arena{}
		}
		arenas.byKey[key] = a
		if size <= arenaSize-line {
			arenas.cur = a
		}
	}
	off := a.used
	a.used += size
	a.refs++
	sweepLocked()
	return a, off, nil
}

// ref counts one more object of this process in a (a Condition's lock
// imported from the Condition's own arena).
func (a *arena) ref() {
	arenas.Lock()
	a.refs++
	arenas.Unlock()
}

// release drops one object of this process in a, after releasing its
// mutex handles (their words leave the robust list before the memory goes:
// the kernel walks the list when the process dies, and must never find an
// unmapped word there). The last object unmaps the arena and closes its
// memfd; other processes keep their own. A handle whose word this process
// holds parks the object instead (see parked), released by a later
// release, import or allocation that finds the word free.
func (a *arena) release(ms ...*futex.Mutex) error {
	arenas.Lock()
	defer arenas.Unlock()
	for _, m := range ms {
		if m != nil && m.Held() {
			arenas.parked = append(arenas.parked, &parked{a: a, ms: ms})
			sweepLocked()
			return nil
		}
	}
	sweepLocked()
	return a.releaseLocked(ms)
}

func (a *arena) releaseLocked(ms []*futex.Mutex) error {
	for _, m := range ms {
		if m != nil {
			m.Release()
		}
	}
	if a.refs--; a.refs > 0 {
		return nil
	}
	if arenas.cur == a {
		arenas.cur = nil
	}
	if arenas.byKey[a.key] == a {
		delete(arenas.byKey, a.key)
	}
	err := errors.Join(memfd.Unmap(a.mem), a.files[0].Close())
	a.mem = nil
	if err != nil {
		return fmt.Errorf("psync: closing shared memory: %w", err)
	}
	return nil
}

// sweepLocked releases the parked objects whose words are free now. It
// runs at every release, import and allocation, so a parked object goes
// soon after its word is freed, at no cost to Unlock. Errors are dropped:
// unmapping what this package mapped does not fail, and no caller would
// know whose error it was.
func sweepLocked() {
	keep := arenas.parked[:0]
	for _, p := range arenas.parked {
		held := false
		for _, m := range p.ms {
			held = held || (m != nil && m.Held())
		}
		if held {
			keep = append(keep, p)
		} else {
			p.a.releaseLocked(p.ms)
		}
	}
	clear(arenas.parked[len(keep):])
	arenas.parked = keep
}

// parkedCount returns how many objects wait for their lock to be free before
// their release (tests).
func parkedCount() int {
	arenas.Lock()
	defer arenas.Unlock()
	return len(arenas.parked)
}

// attach maps a memfd received from another process, or finds the arena
// this process has for it already (then f is closed). It owns f.
func attach(f *os.File) (*arena, error) {
	if !futex.Supported {
		f.Close()
		return nil, errUnsupported
	}
	key, err := fileKey(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("psync: received shared memory: %w", err)
	}
	arenas.Lock()
	defer arenas.Unlock()
	sweepLocked()
	if a := arenas.byKey[key]; a != nil {
		f.Close()
		a.refs++ // one more object in it (one of ours that came back, or another received one)
		return a, nil
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() < line || fi.Size() > 1<<30 {
		f.Close()
		return nil, fmt.Errorf("psync: received shared memory is no psync arena (size %d): %v", fi.Size(), err)
	}
	mem, err := memfd.Map(f, 0, int(fi.Size()))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("psync: mapping received shared memory: %w", err)
	}
	if binary.LittleEndian.Uint32(mem[0:]) != arenaMagic || binary.LittleEndian.Uint32(mem[4:]) != arenaVersion ||
		binary.LittleEndian.Uint64(mem[8:]) != uint64(len(mem)) {
		memfd.Unmap(mem)
		f.Close()
		return nil, errors.New("psync: received shared memory is no psync arena of this version")
	}
	a := &arena{files: []*os.File{f}, mem: mem, key: key, refs: 1}
	if arenas.byKey == nil {
		arenas.byKey = map[[2]uint64]*arena{}
	}
	arenas.byKey[key] = a
	return a, nil
}

// block returns the address of the block at off after checking it holds
// kind k and size bytes fit.
func (a *arena) block(off, size int, k kind) (unsafe.Pointer, error) {
	if off < line || off%line != 0 || off+size > len(a.mem) {
		return nil, fmt.Errorf("psync: received %v at offset %d of a %d-byte arena", k, off, len(a.mem))
	}
	if got := binary.LittleEndian.Uint32(a.mem[off:]); got != blockMagic|uint32(k) {
		return nil, fmt.Errorf("psync: received %v, but the shared memory holds %v there", k, kind(got&^blockMagic))
	}
	return unsafe.Pointer(&a.mem[off]), nil
}

// kindAt returns the kind tag of the block at off (0 when off is outside
// the arena or not a block).
func (a *arena) kindAt(off int) kind {
	if off < line || off%line != 0 || off+4 > len(a.mem) {
		return 0
	}
	return kind(binary.LittleEndian.Uint32(a.mem[off:]) &^ blockMagic)
}

func (a *arena) newBlock(off int, k kind) unsafe.Pointer {
	binary.LittleEndian.PutUint32(a.mem[off:], blockMagic|uint32(k))
	return unsafe.Pointer(&a.mem[off])
}
