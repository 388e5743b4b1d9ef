package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/multiproc-go/multiproc/internal/memfd"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// ErrType is returned (wrapped) when a [Value] or [Array] is asked to hold a
// type that cannot live in shared memory: one that holds pointers (strings,
// slices, maps, interfaces, pointers, channels, functions). The error names
// the type and the offending field.
var ErrType = errors.New("shm: type cannot live in shared memory")

// SharedMemory is a segment of memory shared between processes, Python's
// shared_memory.SharedMemory. Make one with [Create] or [Open].
//
// Buf, Size, Name and File are safe for concurrent use; Close and Unlink may
// be called from any goroutine, but the memory must no longer be used once
// Close has started (see the package documentation: touching it afterwards
// is a fatal fault). The zero SharedMemory is not usable.
type SharedMemory struct {
	name  string      // "" for an anonymous segment
	path  string      // where the name lives; "" for an anonymous segment
	info  os.FileInfo // identifies the segment behind path, for Unlink
	id    uint64      // this process's resource ID of m (wire.NewID)
	state []byte      // what ExportResource sends besides the descriptor

	mu            sync.Mutex // guards the fields below
	f             *os.File
	mem           []byte
	unlinkOnClose bool // the creator, without Keep
	unlinked      bool
}

// An Option configures [Create]; invalid or conflicting options make
// Create fail. A nil Option panics.
type Option func(*options) error

type options struct {
	name      string
	generated bool
	keep      bool
}

// Name gives the segment the name name, used as given: it lives in
// /dev/shm/name (see the package documentation for macOS), other processes
// map it with [Open], and it is never swept. A name is one path element (no
// '/', which also means no leading slash as shm_open takes it), at most 255
// bytes. The form of generated names ("multiproc-PID-START-HEX") is
// reserved, since [Sweep] removes such segments. Create fails with an error
// matching [fs.ErrExist] if the name is taken.
func Name(name string) Option {
	return func(o *options) error {
		if err := checkName(name); err != nil {
			return err
		}
		if _, _, ok := parseGenerated(name); ok {
			return fmt.Errorf("shm: Name(%q): the form of generated names is reserved; use GeneratedName", name)
		}
		o.name = name
		return nil
	}
}

// GeneratedName gives the segment a fresh name of the form
// "multiproc-PID-START-HEX" (the creating process's pid and start time, and
// a random part; [SharedMemory.Name] returns it). Once the creating process
// is gone, [Sweep] removes the segment, whether or not it was closed.
func GeneratedName() Option {
	return func(o *options) error {
		o.generated = true
		return nil
	}
}

// Keep makes the creator's Close leave the name in place, so that the
// segment outlives its creator until someone calls [SharedMemory.Unlink]
// (Python's behaviour). It needs [Name] or [GeneratedName]; a kept
// generated name is still swept once its creator is gone.
func Keep() Option {
	return func(o *options) error {
		o.keep = true
		return nil
	}
}

// Create makes a new segment of size bytes, zero-filled, with its backing
// store reserved: if the memory (or /dev/shm) has no room for size bytes,
// Create fails with an error matching syscall.ENOSPC instead of letting the
// first write kill the process with SIGBUS. Without a [Name] or
// [GeneratedName] option the segment is anonymous (see the package
// documentation). The caller must Close it.
//
// Create fails if size is not positive, if options conflict (Name with
// GeneratedName, Keep without a name), or if a name is invalid or taken.
func Create(size int, opts ...Option) (*SharedMemory, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	switch {
	case size <= 0:
		return nil, fmt.Errorf("shm: Create(%d): size must be positive", size)
	case o.name != "" && o.generated:
		return nil, errors.New("shm: Create: Name and GeneratedName conflict")
	case o.keep && o.name == "" && !o.generated:
		return nil, errors.New("shm: Create: Keep needs Name or GeneratedName (an anonymous segment has no name to keep)")
	}
	if o.name == "" && !o.generated {
		f, err := memfd.New("multiproc-shm", int64(size))
		if err != nil {
			return nil, fmt.Errorf("shm: creating a %d-byte segment: %w", size, err)
		}
		m, err := mapFile(f, "", "", size)
		if err != nil {
			f.Close()
			return nil, err
		}
		return m, nil
	}
	sweepOnce.Do(func() { Sweep() })
	if o.generated {
		for range 3 { // a random collision is a 2^-64 event; bounded anyway
			name, err := generateName()
			if err != nil {
				return nil, err
			}
			m, err := createNamed(name, size, !o.keep)
			if !errors.Is(err, fs.ErrExist) {
				return m, err
			}
		}
		return nil, errors.New("shm: Create: could not find a free generated name")
	}
	return createNamed(o.name, size, !o.keep)
}

// sweepOnce runs Sweep at the first named Create of the process.
var sweepOnce sync.Once

func createNamed(name string, size int, unlinkOnClose bool) (*SharedMemory, error) {
	path := filepath.Join(segmentDir(), name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("shm: creating segment %q: %w", name, err)
	}
	fail := func(err error) (*SharedMemory, error) {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := memfd.Allocate(f, int64(size)); err != nil {
		return fail(fmt.Errorf("shm: creating %d-byte segment %q: %w", size, name, err))
	}
	m, err := mapFile(f, name, path, size)
	if err != nil {
		return fail(err)
	}
	m.unlinkOnClose = unlinkOnClose
	return m, nil
}

// Open maps the named segment name, made by [Create] with [Name] or
// [GeneratedName] in this or any other process (or by any program that
// made /dev/shm/name, such as Python's SharedMemory). Its size is the size
// of the segment. Open fails with an error matching [fs.ErrNotExist] if
// there is no such segment. The caller must Close the result; an opener's
// Close never unlinks (call [SharedMemory.Unlink] for that).
func Open(name string) (*SharedMemory, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(segmentDir(), name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: opening segment %q: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: opening segment %q: %w", name, err)
	}
	if fi.Size() <= 0 || int64(int(fi.Size())) != fi.Size() {
		f.Close()
		return nil, fmt.Errorf("shm: opening segment %q: it has %d bytes", name, fi.Size())
	}
	m, err := mapFile(f, name, path, int(fi.Size()))
	if err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// mapFile maps size bytes of f into a SharedMemory that owns f.
func mapFile(f *os.File, name, path string, size int) (*SharedMemory, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("shm: segment %q: %w", name, err)
	}
	mem, err := memfd.Map(f, 0, size)
	if err != nil {
		return nil, fmt.Errorf("shm: mapping segment %q: %w", name, err)
	}
	return &SharedMemory{name: name, path: path, info: fi, f: f, mem: mem,
		id: wire.NewID(), state: makeState(resMemory, uint64(size), name)}, nil
}

// closeMapping undoes mapFile, for a mapping nobody else has seen.
func (m *SharedMemory) closeMapping() {
	memfd.Unmap(m.mem)
	m.f.Close()
}

// Buf returns the segment's memory: a slice of Size bytes that every
// process mapping the segment shares. Stores are seen by the other
// processes without further action; ordering between processes needs
// atomic operations (sync/atomic on aligned words of Buf) or a lock. Buf
// returns nil after Close. The slice is valid only until Close: see the
// package documentation.
func (m *SharedMemory) Buf() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mem
}

// Size returns the segment's size in bytes.
func (m *SharedMemory) Size() int { return int(m.info.Size()) }

// Name returns the segment's name, or "" for an anonymous segment.
func (m *SharedMemory) Name() string { return m.name }

// File returns the open file backing the segment and the extent of it that
// the segment occupies: what another process needs to map the same memory
// (passing m as an argument sends a duplicate of it). The file belongs to
// m: do not close it; it is valid until Close. File returns nil after
// Close.
func (m *SharedMemory) File() (f *os.File, off, size int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.f, 0, m.info.Size()
}

// Close unmaps the segment and closes its file. If m was made by Create
// with a name and without [Keep], Close also unlinks the name (if it still
// names this segment). The memory of an anonymous or unlinked segment is
// freed when no process holds it any more. Close is idempotent: later calls
// return nil. After Close the memory must not be touched (a fatal fault).
//
// Close also releases m's resource ID, so that pools whose workers keep a
// mapping of m (it was passed to their tasks) drop those once the tasks
// that use it are done; processes m was passed to keep theirs until they
// close them.
func (m *SharedMemory) Close() error {
	m.mu.Lock()
	if m.f == nil {
		m.mu.Unlock()
		return nil
	}
	// The release calls into the pools: outside m.mu.
	defer wire.Release(m.id)
	defer m.mu.Unlock()
	var errs []error
	if err := memfd.Unmap(m.mem); err != nil {
		errs = append(errs, err)
	}
	if err := m.f.Close(); err != nil {
		errs = append(errs, err)
	}
	m.f, m.mem = nil, nil
	if m.unlinkOnClose && !m.unlinked {
		m.unlinked = true
		if err := unlinkSame(m.path, m.info); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shm: closing segment %q: %w", m.name, err)
	}
	return nil
}

// Unlink removes the segment's name now, like Python's unlink: later Opens
// fail, while processes that have it mapped keep using it, and its memory is
// freed with the last of them. Any process may unlink a segment, not only
// its creator. Unlink does nothing for an anonymous segment. It fails with
// an error matching [fs.ErrNotExist] if the name is already gone, or now
// names another segment (which it leaves alone). Unlink may be called
// before or after Close.
func (m *SharedMemory) Unlink() error {
	if m.path == "" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unlinked = true
	if err := unlinkSame(m.path, m.info); err != nil {
		return fmt.Errorf("shm: unlinking segment %q: %w", m.name, err)
	}
	return nil
}

// unlinkSame removes path if it is still the file described by fi: a name
// removed and made again by another process belongs to that process.
func unlinkSame(path string, fi os.FileInfo) error {
	cur, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !os.SameFile(cur, fi) {
		return fmt.Errorf("%s names another segment now: %w", path, fs.ErrNotExist)
	}
	return os.Remove(path)
}
