package shm

import (
	"os"
	"reflect"
	"unsafe"
)

// Array is a fixed-length array of T in shared memory: Python's Array,
// with its lock (Array.Lock, Array.Do, Array.GetLock: see [Lock]), or its
// RawArray when the lock is not used. T must be fixed-size and
// pointer-free: a number, a bool, or an array or struct of such types.
//
// [Array.Slice] is the way in: a Go slice over the shared memory, read and
// written like any slice, with no copy and no call per element. Accesses
// are not synchronised: processes writing the same elements need the lock or
// sync/atomic operations on the elements (atomic.AddInt64(&s[i], 1) works
// on an Array[int64]). Close must not run concurrently with any other use.
// Make an Array with [NewArray] or [ArrayOf]; the zero Array is not usable
// (it cannot be passed to another process, and its Close does nothing).
type Array[T any] struct {
	seg *segment
	s   []T // nil once closed
}

// NewArray returns an Array of n zero values of T, in a new anonymous
// segment (see the package documentation). It fails with an error wrapping
// [ErrType], naming the type, if T holds pointers; it also fails if n is
// negative or the array would not fit in the machine's memory (an error
// matching syscall.ENOMEM or ENOSPC). The caller must Close it.
func NewArray[T any](n int) (*Array[T], error) {
	seg, err := newSegment("Array", kindArray, reflect.TypeFor[T](), n)
	if err != nil {
		return nil, err
	}
	return &Array[T]{seg: seg, s: unsafeSlice[T](seg, n)}, nil
}

// unsafeSlice is the slice of n elements of T over seg's data.
func unsafeSlice[T any](seg *segment, n int) []T { return unsafe.Slice((*T)(seg.data()), n) }

// ArrayOf returns an Array holding a copy of vs (Python's
// Array('i', range(10)) is ArrayOf([]int32{0, 1, ..., 9})). It fails like
// [NewArray]. The caller must Close it.
func ArrayOf[T any](vs []T) (*Array[T], error) {
	a, err := NewArray[T](len(vs))
	if err != nil {
		return nil, err
	}
	copy(a.s, vs)
	return a, nil
}

// attachArray maps an Array from the file of one made elsewhere (see
// attachSegment), taking ownership of f.
func attachArray[T any](f *os.File) (*Array[T], error) {
	seg, n, err := attachSegment("Array", kindArray, reflect.TypeFor[T](), f)
	if err != nil {
		return nil, err
	}
	return &Array[T]{seg: seg, s: unsafeSlice[T](seg, n)}, nil
}

// Slice returns the array as a Go slice of Len elements (its capacity is
// its length, so an append copies out to ordinary memory). Every call
// returns the same memory, shared with every process that maps the array.
//
// The slice is valid only until Close, and it does not keep the Array
// alive or mapped: touching it after Close is a fatal fault (SIGSEGV,
// "unexpected fault address") that kills the process, not a panic. Slice
// returns nil after Close.
func (a *Array[T]) Slice() []T { return a.s }

// Len returns the number of elements (0 after Close).
func (a *Array[T]) Len() int { return len(a.s) }

// File returns the open file backing the array's segment and the extent
// of the mapping (a 128-byte header, then the data): what another process
// needs to map the same array (passing a as an argument sends a duplicate
// of it). The file belongs to a: do not close it. File returns a nil file
// after Close.
func (a *Array[T]) File() (f *os.File, off, size int64) { return a.seg.file() }

// Close unmaps the array and closes its file; its memory is freed once no
// process holds it. Afterwards every slice that Slice returned must not be
// touched: that is a fatal fault. Close is idempotent: later calls return
// nil. It also releases a's resource ID, so pools whose workers keep a
// mapping of a drop it (see the package documentation); a zero Array's
// Close does nothing.
func (a *Array[T]) Close() error {
	a.s = nil
	return a.seg.close("Array")
}
