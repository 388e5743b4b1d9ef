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
	refs  int       // open objects made here (creator); imported arenas stay
	mine  bool      // made by this process
}

var arenas struct {
	sync.Mutex
	cur   *arena
	byKey map[[2]uint64]*arena
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
	return a, off, nil
}

// release drops one object of a creator's arena: the last one unmaps it
// and closes its memfd (children that received it keep their own).
func (a *arena) release() error {
	arenas.Lock()
	defer arenas.Unlock()
	if !a.mine {
		return nil
	}
	a.refs--
	if a.refs > 0 {
		return nil
	}
	if arenas.cur == a {
		arenas.cur = nil
	}
	delete(arenas.byKey, a.key)
	err := errors.Join(memfd.Unmap(a.mem), a.files[0].Close())
	a.mem = nil
	if err != nil {
		return fmt.Errorf("psync: closing shared memory: %w", err)
	}
	return nil
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
	if a := arenas.byKey[key]; a != nil {
		f.Close()
		if a.mine {
			a.refs++ // an object of ours came back: it is closed like ours
		}
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
	a := &arena{files: []*os.File{f}, mem: mem, key: key}
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
