package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/memfd"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// The segment of a Value or an Array starts with a header of headerSize
// bytes; the data follows, so it is 8-byte (indeed cache-line) aligned
// whatever the mapping's address. The header lets a process that maps a
// segment it received (the resource mechanism) check that it holds what it
// expects, and reserves room for the optional lock:
//
//	offset  size  field
//	0       4     magic "mpsh" (little-endian 0x6873706d)
//	4       2     layout version (1)
//	6       2     kind: 1 Value, 2 Array
//	8       8     element size in bytes
//	16      8     element count (1 for a Value)
//	24      8     FNV-1a hash of the element type's name
//	32      32    reserved, zero
//	64      8     the lock: an internal/futex Mutex word (zero: unlocked)
//	72      56    reserved, zero
//	128           data
//
// The lock area holds the object's lock (Python's get_lock(), lock.go): a
// robust process-shared mutex of internal/futex, the layer package psync
// builds on too, neither package importing the other. Zero means unlocked.
// The area has a cache line of its own, so lock traffic does not slow
// accesses to the first elements.
const (
	headerSize   = 128
	lockAreaOff  = 64
	lockAreaSize = 64

	headerMagic   = 0x6873706d
	layoutVersion = 1

	kindValue = 1
	kindArray = 2
)

// segment is the mapping of a Value or an Array.
type segment struct {
	id    uint64     // this process's resource ID of the object (wire.NewID)
	state []byte     // what ExportResource sends besides the descriptor (resource.go)
	files []*os.File // f as ExportResource hands it out, made once (see export)

	mu  sync.Mutex // guards f and mem
	f   *os.File
	mem []byte // header and data; nil once closed

	lk atomic.Pointer[futex.Mutex] // the lock's handle, made on first use (lock.go)
}

// newSegmentOf wraps a mapping made or attached in this process, giving it
// an ID of its own: IDs are unique per process, so a segment received from
// another process gets a new one here rather than keeping the sender's,
// which could collide with one this process made.
func newSegmentOf(kind uint16, t reflect.Type, count int, f *os.File, mem []byte) *segment {
	rk := byte(resValue)
	if kind == kindArray {
		rk = resArray
	}
	return &segment{id: wire.NewID(), state: makeState(rk, uint64(count), t.String()), files: []*os.File{f}, f: f, mem: mem}
}

func typeHash(t reflect.Type) uint64 {
	h := fnv.New64a()
	h.Write([]byte(t.PkgPath() + "." + t.String()))
	return h.Sum64()
}

// newSegment makes an anonymous segment for count elements of type t and
// writes its header. The data bytes are zero.
func newSegment(what string, kind uint16, t reflect.Type, count int) (*segment, error) {
	if err := checkType(what, t); err != nil {
		return nil, err
	}
	if count < 0 {
		return nil, fmt.Errorf("shm: %s[%s] of length %d: must not be negative", what, t, count)
	}
	elem := t.Size()
	if elem != 0 && uint64(count) > (1<<62)/uint64(elem) {
		return nil, fmt.Errorf("shm: %s[%s] of length %d: too large", what, t, count)
	}
	// At least 8 data bytes, so that Load and Store can treat a small
	// value as part of one aligned 8-byte word.
	size := headerSize + max(int64(elem)*int64(count), 8)
	f, err := memfd.New("multiproc-"+what, size)
	if err != nil {
		return nil, fmt.Errorf("shm: creating %s[%s] of %d bytes: %w", what, t, size, err)
	}
	if int64(int(size)) != size {
		f.Close()
		return nil, fmt.Errorf("shm: %s[%s] of %d bytes: too large to map", what, t, size)
	}
	mem, err := memfd.Map(f, 0, int(size))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: mapping %s[%s]: %w", what, t, err)
	}
	h := mem[:headerSize]
	binary.LittleEndian.PutUint32(h[0:], headerMagic)
	binary.LittleEndian.PutUint16(h[4:], layoutVersion)
	binary.LittleEndian.PutUint16(h[6:], kind)
	binary.LittleEndian.PutUint64(h[8:], uint64(elem))
	binary.LittleEndian.PutUint64(h[16:], uint64(count))
	binary.LittleEndian.PutUint64(h[24:], typeHash(t))
	populate(mem)
	return newSegmentOf(kind, t, count, f, mem), nil
}

// attachSegment maps a segment made by newSegment from its file (received
// from another process) after checking that its header describes what the
// caller expects, and returns it with its element count. A segment that
// does not is unmapped again at once, never used, and reported with an
// error wrapping ErrMismatch. It duplicates nothing: the segment owns f from
// then on, also on failure.
func attachSegment(what string, kind uint16, t reflect.Type, f *os.File) (*segment, int, error) {
	fail := func(err error) (*segment, int, error) {
		f.Close()
		return nil, 0, fmt.Errorf("shm: attaching %s[%s]: %w", what, t, err)
	}
	mismatch := func(format string, args ...any) (*segment, int, error) {
		f.Close()
		return nil, 0, fmt.Errorf("%w: attaching %s[%s]: %s", ErrMismatch, what, t, fmt.Sprintf(format, args...))
	}
	if err := checkType(what, t); err != nil {
		f.Close()
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if fi.Size() < headerSize+8 || int64(int(fi.Size())) != fi.Size() {
		return mismatch("a segment of %d bytes is no %s", fi.Size(), what)
	}
	mem, err := memfd.Map(f, 0, int(fi.Size()))
	if err != nil {
		return fail(err)
	}
	h := mem[:headerSize]
	count := binary.LittleEndian.Uint64(h[16:])
	var bad string
	switch {
	case binary.LittleEndian.Uint32(h[0:]) != headerMagic || binary.LittleEndian.Uint16(h[4:]) != layoutVersion:
		bad = "the memory is not a Value or Array segment of this layout"
	case binary.LittleEndian.Uint16(h[6:]) != kind:
		bad = fmt.Sprintf("the segment holds %s", segKindName(binary.LittleEndian.Uint16(h[6:])))
	case binary.LittleEndian.Uint64(h[8:]) != uint64(t.Size()) || binary.LittleEndian.Uint64(h[24:]) != typeHash(t):
		bad = fmt.Sprintf("the segment holds another element type (of %d bytes; %s has %d)", binary.LittleEndian.Uint64(h[8:]), t, t.Size())
	case count > uint64(fi.Size()) || (t.Size() > 0 && count > uint64(fi.Size()-headerSize)/uint64(t.Size())):
		bad = fmt.Sprintf("the header announces %d elements in %d bytes", count, fi.Size())
	}
	if bad != "" {
		memfd.Unmap(mem)
		return mismatch("%s", bad)
	}
	populate(mem)
	return newSegmentOf(kind, t, int(count), f, mem), int(count), nil
}

// data returns the address of the first element.
func (s *segment) data() unsafe.Pointer { return unsafe.Pointer(&s.mem[headerSize]) }

// segKindName names a header kind, with its article.
func segKindName(kind uint16) string {
	switch kind {
	case kindValue:
		return "a Value"
	case kindArray:
		return "an Array"
	}
	return fmt.Sprintf("an object of unknown kind %d", kind)
}

// file returns the segment's file and extent (nil once closed, and for
// the nil segment of a zero object).
func (s *segment) file() (*os.File, int64, int64) {
	if s == nil {
		return nil, 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f, 0, int64(len(s.mem))
}

// close unmaps the segment and closes its file, once, and then releases
// its ID (wire.Release), so that pools whose workers keep a mapping of it
// drop theirs. The release runs outside s.mu: it calls into the pools.
func (s *segment) close(what string) error {
	if s == nil {
		return nil // a zero Value or Array
	}
	s.mu.Lock()
	if s.f == nil {
		s.mu.Unlock()
		return nil
	}
	s.releaseLock()
	err := errors.Join(memfd.Unmap(s.mem), s.f.Close())
	s.f, s.mem = nil, nil
	s.mu.Unlock()
	wire.Release(s.id)
	if err != nil {
		return fmt.Errorf("shm: closing %s: %w", what, err)
	}
	return nil
}
