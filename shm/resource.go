package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// SharedMemory, Value and Array are resources (internal/wire's Exporter
// and Importer): the codec of a Process argument or a pool task finds them
// at any depth and passes their descriptor beside the bytes, and the
// receiving side maps the same memory. The package documentation states
// the contract; this file is the mechanism.
//
// What travels is one descriptor (the object's own, Owned false: the
// transport duplicates it when it must hold it, so a task that reuses an
// object costs no syscall here) and a small state that lets the receiver
// refuse what it does not expect before it maps anything:
//
//	byte    kind: resMemory, resValue or resArray
//	uvarint SharedMemory: its size in bytes; Value, Array: the element count
//	rest    SharedMemory: its name ("" when anonymous); Value, Array: the
//	        element type's name (reflect.Type.String), for the error message
//
// For a Value or an Array the segment's 128-byte header (header.go) is then
// checked as well: it is the authority (it lives in the memory itself), the
// state only makes the common mistakes readable. The state and the
// one-entry file list of a Value or an Array are built once, when the
// object is made, so exporting one allocates nothing.

// Resource kinds in the exported state.
const (
	resMemory = 1
	resValue  = 2
	resArray  = 3
)

var (
	// ErrClosed is returned (wrapped) when a closed SharedMemory, Value or
	// Array, or a zero one that was never made, is passed to another
	// process: there is no memory left to pass. The encoding of the
	// argument fails before anything is sent.
	ErrClosed = errors.New("shm: object is closed")

	// ErrMismatch is returned (wrapped) when a segment received from
	// another process does not hold what the receiving position expects:
	// another kind of object (a SharedMemory where a Value is expected),
	// another element type, another length or size, or memory that is not
	// a segment of this package at all. The receiver maps nothing and
	// closes the descriptor; decoding the argument fails.
	ErrMismatch = errors.New("shm: received segment does not match")
)

func kindName(kind byte) string {
	switch kind {
	case resMemory:
		return "SharedMemory"
	case resValue:
		return "Value"
	case resArray:
		return "Array"
	}
	return fmt.Sprintf("object of unknown kind %d", kind)
}

func makeState(kind byte, n uint64, rest string) []byte {
	b := append(make([]byte, 0, 1+binary.MaxVarintLen64+len(rest)), kind)
	b = binary.AppendUvarint(b, n)
	return append(b, rest...)
}

func parseState(state []byte) (kind byte, n uint64, rest string, err error) {
	if len(state) < 2 {
		return 0, 0, "", fmt.Errorf("%w: %d bytes of state", ErrMismatch, len(state))
	}
	n, k := binary.Uvarint(state[1:])
	if k <= 0 {
		return 0, 0, "", fmt.Errorf("%w: malformed state", ErrMismatch)
	}
	return state[0], n, string(state[1+k:]), nil
}

// oneFile returns the only file of files, or closes them all and fails.
func oneFile(what string, files []*os.File) (*os.File, error) {
	if len(files) != 1 {
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("%w: %s arrived with %d descriptors, want 1", ErrMismatch, what, len(files))
	}
	return files[0], nil
}

// NeedsDescriptors reports whether m has a descriptor to pass: true until
// Close, false for a closed or zero SharedMemory (which cannot travel).
func (m *SharedMemory) NeedsDescriptors() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.f != nil
}

// ExportResource describes m to the transport that passes it to another
// process: its descriptor (which m keeps: the transport duplicates it), its
// ID and its size and name. It fails with an error wrapping [ErrClosed]
// after Close. Programs do not call it; it is how a *SharedMemory travels
// as a Process or task argument (see the package documentation).
func (m *SharedMemory) ExportResource(x *wire.Exported) error {
	m.mu.Lock()
	f := m.f
	m.mu.Unlock()
	if f == nil {
		return fmt.Errorf("%w: SharedMemory %q", ErrClosed, m.name)
	}
	x.ID, x.Files, x.Owned, x.State = m.id, []*os.File{f}, false, m.state
	return nil
}

// ImportResource makes the zero SharedMemory m the receiving side's
// mapping of a segment passed by another process, taking ownership of
// files. It fails with an error wrapping [ErrMismatch] if what arrived is
// not a SharedMemory of the announced size. The result is not the creator:
// its Close unmaps and never unlinks. Programs do not call it.
func (m *SharedMemory) ImportResource(state []byte, files []*os.File) error {
	f, err := oneFile("SharedMemory", files)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		f.Close()
		return err
	}
	kind, size, name, err := parseState(state)
	switch {
	case err != nil:
		return fail(err)
	case kind != resMemory:
		return fail(fmt.Errorf("%w: received %s where a SharedMemory is expected", ErrMismatch, aKindName(kind)))
	case size == 0 || size > 1<<62:
		return fail(fmt.Errorf("%w: SharedMemory of %d bytes", ErrMismatch, size))
	case name != "" && checkName(name) != nil:
		return fail(fmt.Errorf("%w: SharedMemory named %q", ErrMismatch, name))
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("shm: receiving SharedMemory %q: %w", name, err))
	}
	if fi.Size() != int64(size) {
		return fail(fmt.Errorf("%w: SharedMemory %q of %d bytes arrived as a file of %d bytes", ErrMismatch, name, size, fi.Size()))
	}
	path := ""
	if name != "" {
		path = filepath.Join(segmentDir(), name)
	}
	got, err := mapFile(f, name, path, int(size))
	if err != nil {
		return fail(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f != nil {
		got.closeMapping()
		return errors.New("shm: ImportResource on a SharedMemory in use")
	}
	m.name, m.path, m.info, m.id, m.state = got.name, got.path, got.info, got.id, got.state
	m.f, m.mem = got.f, got.mem
	return nil
}

// aKindName is kindName with its article.
func aKindName(kind byte) string {
	if kind == resArray {
		return "an Array"
	}
	return "a " + kindName(kind)
}

// NeedsDescriptors reports whether v has a descriptor to pass: true until
// Close, false for a closed or zero Value (which cannot travel).
func (v *Value[T]) NeedsDescriptors() bool { return v.seg.open() }

// ExportResource describes v to the transport that passes it to another
// process (see [SharedMemory.ExportResource]). It fails with an error
// wrapping [ErrClosed] after Close or for a zero Value. Programs do not
// call it.
func (v *Value[T]) ExportResource(x *wire.Exported) error { return v.seg.export("Value", x) }

// ImportResource makes the zero Value v the receiving side's mapping of a
// Value passed by another process, taking ownership of files. It fails
// with an error wrapping [ErrMismatch], mapping nothing, if what arrived
// is not a Value[T]: another kind of object, or a Value of another type
// (the segment's header records the element size and type). Programs do
// not call it.
func (v *Value[T]) ImportResource(state []byte, files []*os.File) error {
	seg, _, err := importSegment[T](resValue, state, files)
	if err != nil {
		return err
	}
	if v.seg != nil {
		seg.close("Value")
		return errors.New("shm: ImportResource on a Value in use")
	}
	v.seg = seg
	v.p.Store((*T)(seg.data()))
	return nil
}

// NeedsDescriptors reports whether a has a descriptor to pass: true until
// Close, false for a closed or zero Array (which cannot travel).
func (a *Array[T]) NeedsDescriptors() bool { return a.seg.open() }

// ExportResource describes a to the transport that passes it to another
// process (see [SharedMemory.ExportResource]). It fails with an error
// wrapping [ErrClosed] after Close or for a zero Array. Programs do not
// call it.
func (a *Array[T]) ExportResource(x *wire.Exported) error { return a.seg.export("Array", x) }

// ImportResource makes the zero Array a the receiving side's mapping of
// an Array passed by another process, taking ownership of files. It fails
// with an error wrapping [ErrMismatch], mapping nothing, if what arrived is
// not an Array[T] of the announced length. Programs do not call it.
func (a *Array[T]) ImportResource(state []byte, files []*os.File) error {
	seg, n, err := importSegment[T](resArray, state, files)
	if err != nil {
		return err
	}
	if a.seg != nil {
		seg.close("Array")
		return errors.New("shm: ImportResource on an Array in use")
	}
	a.seg, a.s = seg, unsafeSlice[T](seg, n)
	return nil
}

// importSegment checks the state of a received Value or Array (kind,
// element type, count) and then maps the segment, which checks its header.
func importSegment[T any](kind byte, state []byte, files []*os.File) (*segment, int, error) {
	t := reflect.TypeFor[T]()
	what := kindName(kind)
	f, err := oneFile(what, files)
	if err != nil {
		return nil, 0, err
	}
	gotKind, n, elem, err := parseState(state)
	if err == nil {
		switch {
		case gotKind != kind:
			err = fmt.Errorf("%w: received %s where %s[%s] is expected", ErrMismatch, aKindName(gotKind), aKindName(kind), t)
		case elem != t.String():
			err = fmt.Errorf("%w: received %s[%s] where %s[%s] is expected", ErrMismatch, what, elem, what, t)
		}
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	seg, count, err := attachSegment(what, segKind(kind), t, f)
	if err != nil {
		return nil, 0, err
	}
	if uint64(count) != n {
		seg.close(what)
		return nil, 0, fmt.Errorf("%w: %s[%s] of %d elements arrived with a header of %d", ErrMismatch, what, t, n, count)
	}
	return seg, count, nil
}

// segKind maps a resource kind to the header's kind.
func segKind(kind byte) uint16 {
	if kind == resArray {
		return kindArray
	}
	return kindValue
}

// open reports whether s is mapped (a nil s belongs to a zero object).
func (s *segment) open() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f != nil
}

func (s *segment) export(what string, x *wire.Exported) error {
	if s == nil {
		return fmt.Errorf("%w: zero %s (make one with New%s)", ErrClosed, what, what)
	}
	s.mu.Lock()
	f := s.f
	s.mu.Unlock()
	if f == nil {
		return fmt.Errorf("%w: %s", ErrClosed, what)
	}
	// The one-entry list is made once: a pool task passed the same object
	// exports it each time, and the transport only reads the list (the
	// exporter keeps what is not Owned).
	x.ID, x.Files, x.Owned, x.State = s.id, s.files, false, s.state
	return nil
}
