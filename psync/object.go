package psync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// obj is what every primitive has: its block in an arena, its resource ID
// and what an export hands out, prepared once so that exporting allocates
// nothing.
type obj struct {
	a        *arena
	off      int
	id       uint64
	files    []*os.File // the arena's memfd (and, for a Condition, its lock's)
	state    [12]byte   // kind, offset, and a kind's extra word (a Condition's lock offset)
	imported bool
	kept     atomic.Bool // a pool worker keeps this copy for its tasks: only DropKept releases it
	closed   atomic.Bool
}

func (o *obj) init(a *arena, off int, k kind, extra uint32) {
	o.a, o.off, o.id, o.files = a, off, wire.NewID(), a.files
	binary.LittleEndian.PutUint32(o.state[0:], uint32(k))
	binary.LittleEndian.PutUint32(o.state[4:], uint32(off))
	binary.LittleEndian.PutUint32(o.state[8:], extra)
}

// create allocates a block of size bytes for kind k.
func (o *obj) create(k kind, size int) (unsafe.Pointer, error) {
	a, off, err := alloc(size)
	if err != nil {
		return nil, err
	}
	o.init(a, off, k, 0)
	return a.newBlock(off, k), nil
}

// attach maps what ImportResource received (one memfd) and returns the
// block, after checking that it holds kind k. It owns files.
func (o *obj) attach(state []byte, files []*os.File, k kind, size int) (unsafe.Pointer, uint32, error) {
	if len(files) != 1 {
		closeFiles(files)
		return nil, 0, fmt.Errorf("psync: importing %v: %d descriptors, want 1", k, len(files))
	}
	return o.attachFile(state, files[0], k, size)
}

// attachFile is attach for one file, which it owns.
func (o *obj) attachFile(state []byte, f *os.File, k kind, size int) (unsafe.Pointer, uint32, error) {
	if len(state) != 12 {
		f.Close()
		return nil, 0, fmt.Errorf("psync: importing %v: bad state (%d bytes)", k, len(state))
	}
	if got := kind(binary.LittleEndian.Uint32(state)); got != k {
		f.Close()
		return nil, 0, fmt.Errorf("psync: importing %v: the sender exported a %v", k, got)
	}
	a, err := attach(f)
	if err != nil {
		return nil, 0, err
	}
	off := int(binary.LittleEndian.Uint32(state[4:]))
	p, err := a.block(off, size, k)
	if err != nil {
		a.release()
		return nil, 0, err
	}
	extra := binary.LittleEndian.Uint32(state[8:])
	o.init(a, off, k, extra)
	o.imported = true
	imports.Add(1)
	return p, extra, nil
}

// imports counts ImportResource calls in this process (tests: a pool
// worker imports a primitive once).
var imports atomic.Int64

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

func (o *obj) needsDescriptors() bool { return o.a != nil && !o.closed.Load() }

func (o *obj) export(x *wire.Exported) error {
	if !o.needsDescriptors() {
		return errors.New("psync: exporting a closed or zero primitive")
	}
	x.ID, x.Files, x.State = o.id, o.files, o.state[:]
	return nil
}

// close releases this process's object, after its mutex handles ms (see
// arena.release): the creator's Close also makes the pool workers that
// keep a copy drop it (wire.Release); every object's release unmaps the
// arena with the last object of this process in it. A pool worker's kept
// copy (markKept) is released only by dropKept: a task that closes what it
// was given leaves the copy for the worker's later tasks. It reports
// whether this call released the object.
func (o *obj) close(ms ...*futex.Mutex) (bool, error) {
	if o.a == nil || o.kept.Load() {
		for _, m := range ms {
			if m != nil {
				m.Close() // the watch only: the task is done with it
			}
		}
		return false, nil
	}
	return o.release(ms...)
}

func (o *obj) release(ms ...*futex.Mutex) (bool, error) {
	if o.a == nil || !o.closed.CompareAndSwap(false, true) {
		return false, nil
	}
	if !o.imported {
		wire.Release(o.id)
	}
	return true, o.a.release(ms...)
}

// markKept records that a pool worker keeps the object for its tasks.
func (o *obj) markKept() { o.kept.Store(true) }

// dropKept releases a worker's kept copy.
func (o *obj) dropKept(ms ...*futex.Mutex) error {
	_, err := o.release(ms...)
	return err
}

func u32(p unsafe.Pointer, off uintptr) *uint32 { return (*uint32)(unsafe.Add(p, off)) }

// mutex returns a handle on the futex.Mutex word at offset field of the
// object's block, registered in this process's robust list (futex.NewMutex)
// so that the kernel reports a holder's death.
func (o *obj) mutex(p unsafe.Pointer, field int) *futex.Mutex {
	return futex.NewMutex(unsafe.Add(p, field), o.a.files[0], int64(o.off+field))
}
