package psync

import (
	"context"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/wire"
)

const (
	eventFlag = 4 // 0 clear, 1 set (the futex word)
	eventWait = 8 // processes sleeping on the flag
	eventSize = line
	// eventSpins bounds the polling before a waiter sleeps: a peer on the
	// other CPU often sets the event within the microseconds a futex
	// round trip would cost.
	eventSpins = 100
)

// Event is a flag shared by processes: Python's multiprocessing.Event.
// Wait blocks until the flag is set; Set wakes every waiter. Make one with
// [NewEvent]; it travels to other processes as a resource and is safe for
// concurrent use. An Event has no owner, so a process's death changes
// nothing about it.
type Event struct {
	obj
	flag, nwait *uint32
	gate        *futex.Gate
	hb          futex.HB
}

// NewEvent returns a new, clear Event (errors.ErrUnsupported off Linux).
func NewEvent() (*Event, error) {
	e := &Event{}
	p, err := e.create(kindEvent, eventSize)
	if err != nil {
		return nil, err
	}
	e.bind(p)
	return e, nil
}

func (e *Event) bind(p unsafe.Pointer) {
	e.flag, e.nwait, e.gate = u32(p, eventFlag), u32(p, eventWait), futex.NewGate()
}

// Set sets the flag and wakes every waiter.
func (e *Event) Set() {
	e.hb.Release()
	atomic.StoreUint32(e.flag, 1)
	if atomic.LoadUint32(e.nwait) > 0 {
		futex.Wake(e.flag, 0)
	}
}

// Clear resets the flag.
func (e *Event) Clear() { atomic.StoreUint32(e.flag, 0) }

// IsSet reports whether the flag is set.
func (e *Event) IsSet() bool {
	set := atomic.LoadUint32(e.flag) == 1
	e.hb.Acquire()
	return set
}

// Wait blocks until the flag is set (nil) or ctx ends (an error wrapping
// ctx.Err()). Python's wait(timeout) returning False is a ctx deadline.
func (e *Event) Wait(ctx context.Context) error {
	defer e.hb.Acquire()
	for range eventSpins {
		if atomic.LoadUint32(e.flag) == 1 {
			return nil
		}
		pause()
	}
	return e.gate.Wait(ctx, e.flag, e.nwait, func() (uint32, bool, error) {
		return 0, atomic.LoadUint32(e.flag) == 1, nil
	})
}

// Close is [Lock.Close].
func (e *Event) Close() error { _, err := e.close(); return err }

// DropKept releases a pool worker's kept copy of the Event: the worker's
// resource cache calls it when it stops keeping the Event (its creator
// closed it, or the cache is full); it is Close for a copy no task
// may use any more. Users do not call it.
func (e *Event) DropKept() { e.dropKept() }

// MarkKept is called by a pool worker that keeps this copy of the Event for
// its later tasks: a task's Close then leaves it open, and DropKept
// releases it. Users do not call it.
func (e *Event) MarkKept() { e.markKept() }

// NeedsDescriptors reports whether the Event is open (wire.Resource).
func (e *Event) NeedsDescriptors() bool { return e.needsDescriptors() }

// ExportResource describes the Event to another process (wire.Exporter).
func (e *Event) ExportResource(x *wire.Exported) error { return e.export(x) }

// ImportResource makes e the receiving process's copy (wire.Importer).
func (e *Event) ImportResource(state []byte, files []*os.File) error {
	p, _, err := e.attach(state, files, kindEvent, eventSize)
	if err != nil {
		return err
	}
	e.bind(p)
	return nil
}

// pause is a call the compiler cannot remove: a spin's delay.
//
//go:noinline
func pause() {}
