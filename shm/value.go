package shm

import (
	"os"
	"reflect"
	"sync/atomic"
	"unsafe"
)

// Value is one value of type T in shared memory: Python's Value, with its
// lock (Value.Lock, Value.Do, Value.GetLock: see [Lock]), or its RawValue
// when the lock is not used (an unused lock costs nothing). T must be fixed-size and
// pointer-free: a number, a bool, or an array or struct of such types.
//
// Each Value is a segment of its own: one descriptor and at least one page
// of memory. For many values, use one Value of a struct or an [Array].
//
// Load and Store are safe for concurrent use, from any goroutine of any
// process that maps the value; they are atomic when T has at most 8 bytes.
// Close must not run concurrently with any other use. Make a Value with
// [NewValue]; the zero Value is not usable (it cannot be passed to another
// process, and its Close does nothing).
type Value[T any] struct {
	seg *segment
	p   atomic.Pointer[T] // nil once closed
}

// NewValue returns a new Value holding v, in a new anonymous segment (see
// the package documentation). It fails with an error wrapping [ErrType],
// naming the type, if T holds pointers. The caller must Close it.
func NewValue[T any](v T) (*Value[T], error) {
	seg, err := newSegment("Value", kindValue, reflect.TypeFor[T](), 1)
	if err != nil {
		return nil, err
	}
	x := &Value[T]{seg: seg}
	p := (*T)(seg.data())
	*p = v
	x.p.Store(p)
	return x, nil
}

// attachValue maps a Value from the file of one made elsewhere (see
// attachSegment), taking ownership of f.
func attachValue[T any](f *os.File) (*Value[T], error) {
	seg, _, err := attachSegment("Value", kindValue, reflect.TypeFor[T](), f)
	if err != nil {
		return nil, err
	}
	x := &Value[T]{seg: seg}
	x.p.Store((*T)(seg.data()))
	return x, nil
}

func (v *Value[T]) ptr() *T {
	p := v.p.Load()
	if p == nil {
		panic("shm: Value used after Close")
	}
	return p
}

// Pointer returns the address of the value in shared memory, for direct
// access (sync/atomic functions on an integer T, or fields of a struct).
// It is valid only until Close: a dereference after Close is a fatal fault,
// not a panic (see the package documentation). Pointer panics after Close.
func (v *Value[T]) Pointer() *T { return v.ptr() }

// Load returns the value. For a T of at most 8 bytes it is one atomic load
// (never torn; sequentially consistent with Store and the atomic helpers);
// a larger T is copied without synchronisation, so a concurrent Store may
// be seen half done. Load panics after Close.
func (v *Value[T]) Load() T {
	p := v.ptr()
	var out T
	switch n := unsafe.Sizeof(out); {
	case n == 0:
	case n == 4:
		w := atomic.LoadUint32((*uint32)(unsafe.Pointer(p)))
		copy(bytesOf(&out), unsafe.Slice((*byte)(unsafe.Pointer(&w)), 4))
	case n <= 8:
		// The value is the first n bytes of an aligned word whose other
		// bytes nobody writes (the segment has at least 8 data bytes).
		w := atomic.LoadUint64((*uint64)(unsafe.Pointer(p)))
		copy(bytesOf(&out), unsafe.Slice((*byte)(unsafe.Pointer(&w)), n))
	default:
		out = *p
	}
	return out
}

// Store sets the value to x, atomically for a T of at most 8 bytes (see
// Load). Store panics after Close.
func (v *Value[T]) Store(x T) {
	p := v.ptr()
	switch n := unsafe.Sizeof(x); {
	case n == 0:
	case n == 4:
		var w uint32
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&w)), 4), bytesOf(&x))
		atomic.StoreUint32((*uint32)(unsafe.Pointer(p)), w)
	case n == 8:
		var w uint64
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&w)), 8), bytesOf(&x))
		atomic.StoreUint64((*uint64)(unsafe.Pointer(p)), w)
	case n < 8:
		word := (*uint64)(unsafe.Pointer(p))
		for {
			old := atomic.LoadUint64(word)
			w := old
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&w)), n), bytesOf(&x))
			if atomic.CompareAndSwapUint64(word, old, w) {
				return
			}
		}
	default:
		*p = x
	}
}

// File returns the open file backing the value's segment and the extent
// of the mapping (a 128-byte header, then the data): what another process
// needs to map the same value (passing v as an argument sends a duplicate
// of it). The file belongs to v: do not close it. File returns a nil file
// after Close.
func (v *Value[T]) File() (f *os.File, off, size int64) { return v.seg.file() }

// Close unmaps the value and closes its file; its memory is freed once no
// process holds it. Afterwards, Load, Store and Pointer panic, and any
// pointer obtained from Pointer must not be used: that is a fatal fault.
// Close is idempotent: later calls return nil. It also releases v's
// resource ID, so pools whose workers keep a mapping of v drop it (see
// the package documentation); a zero Value's Close does nothing.
func (v *Value[T]) Close() error {
	v.p.Store(nil)
	return v.seg.close("Value")
}

func bytesOf[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}

// Integer is the constraint of the atomic helpers: every integer type.
type Integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

// Add atomically adds delta to the value of v (wrapping around on
// overflow, like Go's integer arithmetic) and returns the new value. Like
// the other atomic helpers it is sequentially consistent with Load, Store
// and every atomic operation on the same value, in any process. It panics
// after Close.
func Add[T Integer](v *Value[T], delta T) (new T) {
	p := v.ptr()
	switch unsafe.Sizeof(delta) {
	case 8:
		return T(atomic.AddUint64((*uint64)(unsafe.Pointer(p)), uint64(delta)))
	case 4:
		return T(atomic.AddUint32((*uint32)(unsafe.Pointer(p)), uint32(delta)))
	}
	old, _ := update(p, func(old T) (T, bool) { return old + delta, true })
	return old + delta
}

// Swap atomically stores new as the value of v and returns the previous
// value. It panics after Close.
func Swap[T Integer](v *Value[T], new T) (old T) {
	p := v.ptr()
	switch unsafe.Sizeof(new) {
	case 8:
		return T(atomic.SwapUint64((*uint64)(unsafe.Pointer(p)), uint64(new)))
	case 4:
		return T(atomic.SwapUint32((*uint32)(unsafe.Pointer(p)), uint32(new)))
	}
	old, _ = update(p, func(T) (T, bool) { return new, true })
	return old
}

// CompareAndSwap atomically stores new as the value of v if it is old, and
// reports whether it did. It panics after Close.
func CompareAndSwap[T Integer](v *Value[T], old, new T) (swapped bool) {
	p := v.ptr()
	switch unsafe.Sizeof(new) {
	case 8:
		return atomic.CompareAndSwapUint64((*uint64)(unsafe.Pointer(p)), uint64(old), uint64(new))
	case 4:
		return atomic.CompareAndSwapUint32((*uint32)(unsafe.Pointer(p)), uint32(old), uint32(new))
	}
	_, swapped = update(p, func(cur T) (T, bool) { return new, cur == old })
	return swapped
}

// update applies f to the 1- or 2-byte integer at p, atomically through a
// compare-and-swap of the aligned 8-byte word that holds it (its other
// bytes are padding nobody writes), unless f declines. It returns the
// value before and whether f's value was stored.
func update[T Integer](p *T, f func(T) (T, bool)) (old T, stored bool) {
	word := (*uint64)(unsafe.Pointer(p))
	n := unsafe.Sizeof(old)
	for {
		w := atomic.LoadUint64(word)
		copy(bytesOf(&old), unsafe.Slice((*byte)(unsafe.Pointer(&w)), n))
		next, ok := f(old)
		if !ok {
			return old, false
		}
		nw := w
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&nw)), n), bytesOf(&next))
		if atomic.CompareAndSwapUint64(word, w, nw) {
			return old, true
		}
	}
}
