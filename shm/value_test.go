package shm_test

import (
	"errors"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/multiproc-go/multiproc/shm"
	"golang.org/x/sys/unix"
)

// dupFile returns a second descriptor of f, as a process receiving the
// segment would hold.
func dupFile(t *testing.T, f *os.File) *os.File {
	t.Helper()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), f.Name())
}

type point struct {
	X, Y float64
	On   bool
}

type odd [3]byte // a size that is neither a word nor a power of two

func TestValueLoadStore(t *testing.T) {
	t.Run("float64", func(t *testing.T) { loadStore(t, 0.0, math.Pi) })
	t.Run("int32", func(t *testing.T) { loadStore(t, int32(-1), math.MaxInt32) })
	t.Run("bool", func(t *testing.T) { loadStore(t, false, true) })
	t.Run("uint16", func(t *testing.T) { loadStore(t, uint16(7), 65535) })
	t.Run("3 bytes", func(t *testing.T) { loadStore(t, odd{1, 2, 3}, odd{4, 5, 6}) })
	t.Run("struct", func(t *testing.T) { loadStore(t, point{1, 2, false}, point{3, 4, true}) })
	t.Run("empty struct", func(t *testing.T) { loadStore(t, struct{}{}, struct{}{}) })
}

// loadStore checks a Value through its own mapping and a second one made
// from its file, as in a process that received it.
func loadStore[T comparable](t *testing.T, first, second T) {
	v, err := shm.NewValue(first)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	f, _, _ := v.File()
	w, err := shm.AttachValue[T](dupFile(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := w.Load(); got != first {
		t.Fatalf("second mapping loads %v, want %v", got, first)
	}
	v.Store(second)
	if got := w.Load(); got != second {
		t.Fatalf("second mapping loads %v after Store, want %v", got, second)
	}
	if got := *w.Pointer(); got != second {
		t.Fatalf("*Pointer() = %v, want %v", got, second)
	}
}

func TestValueAtomics(t *testing.T) {
	t.Run("int64", func(t *testing.T) { atomics[int64](t) })
	t.Run("uint32", func(t *testing.T) { atomics[uint32](t) })
	t.Run("int16", func(t *testing.T) { atomics[int16](t) })
	t.Run("uint8", func(t *testing.T) { atomics[uint8](t) })
	t.Run("int", func(t *testing.T) { atomics[int](t) })
}

// atomics increments one Value from goroutines through two mappings: no
// increment may be lost, for every size the helpers handle differently.
func atomics[T shm.Integer](t *testing.T) {
	v, err := shm.NewValue[T](0)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	f, _, _ := v.File()
	w, err := shm.AttachValue[T](dupFile(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const goroutines, each = 4, 30 // 120 fits in every integer type
	var wg sync.WaitGroup
	for g := range goroutines {
		x := v
		if g%2 == 1 {
			x = w
		}
		wg.Go(func() {
			for range each {
				shm.Add(x, 1)
			}
		})
	}
	wg.Wait()
	if got := w.Load(); got != goroutines*each {
		t.Fatalf("after %d increments the value is %d", goroutines*each, got)
	}
	if shm.CompareAndSwap(v, 0, 5) {
		t.Fatal("CompareAndSwap with a wrong old value swapped")
	}
	if !shm.CompareAndSwap(v, goroutines*each, 5) || w.Load() != 5 {
		t.Fatalf("CompareAndSwap with the right old value: value %d, want 5", w.Load())
	}
	if old := shm.Swap(w, 9); old != 5 || v.Load() != 9 {
		t.Fatalf("Swap returned %d (want 5), value %d (want 9)", old, v.Load())
	}
	if got := shm.Add(v, ^T(0)); got != 8 { // adding all ones subtracts one
		t.Fatalf("Add(-1) = %d, want 8", got)
	}
}

func TestValueUseAfterClose(t *testing.T) {
	v, err := shm.NewValue(1.5)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if f, _, _ := v.File(); f != nil {
		t.Fatal("File after Close is not nil")
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "after Close") {
			t.Fatalf("Load after Close: recovered %v, want a panic about Close", r)
		}
	}()
	v.Load()
}

// TestTypeRefused: types with pointers are refused at construction, and
// the error names the type and what in it is a pointer.
func TestTypeRefused(t *testing.T) {
	type withString struct {
		N    int
		Name string
	}
	type nested struct {
		In [2]struct{ P *int }
	}
	for _, tc := range []struct {
		name string
		make func() error
		want string
	}{
		{"Value of a string", func() error { _, err := shm.NewValue("x"); return err }, "Value[string]"},
		{"Value of a pointer", func() error { _, err := shm.NewValue[*int](nil); return err }, "Value[*int]"},
		{"Value of a struct with a string", func() error { _, err := shm.NewValue(withString{}); return err }, "field Name is a string"},
		{"Array of a slice", func() error { _, err := shm.NewArray[[]int](3); return err }, "Array[[]int]"},
		{"Array of a nested pointer", func() error { _, err := shm.NewArray[nested](3); return err }, "field In[0].P is a ptr"},
		{"Array of a map", func() error { _, err := shm.ArrayOf([]map[int]int{nil}); return err }, "Array[map[int]int]"},
		{"Array of an interface", func() error { _, err := shm.NewArray[any](1); return err }, "Array[interface {}]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.make()
			if !errors.Is(err, shm.ErrType) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error wrapping ErrType that mentions %q", err, tc.want)
			}
		})
	}
}

// TestAttachChecksHeader: a process that maps a segment it received checks
// that it holds what it expects, so a mixed-up descriptor is an error, not
// garbage or a fault.
func TestAttachChecksHeader(t *testing.T) {
	v, err := shm.NewValue[int64](1)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	a, err := shm.NewArray[int32](10)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	raw, err := shm.Create(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	vf, _, _ := v.File()
	af, _, _ := a.File()
	rf, _, _ := raw.File()
	for _, tc := range []struct {
		name   string
		attach func() error
	}{
		{"a Value as an Array", func() error { _, err := shm.AttachArray[int64](dupFile(t, vf)); return err }},
		{"an Array as a Value", func() error { _, err := shm.AttachValue[int32](dupFile(t, af)); return err }},
		{"another element type", func() error { _, err := shm.AttachArray[uint32](dupFile(t, af)); return err }},
		{"another element size", func() error { _, err := shm.AttachValue[int32](dupFile(t, vf)); return err }},
		{"a plain segment", func() error { _, err := shm.AttachArray[int32](dupFile(t, rf)); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.attach(); err == nil {
				t.Fatal("attached; want an error")
			}
		})
	}
}

// TestValueConcurrentStores: Store and Load of a word-sized value never
// tear, whichever mapping they go through.
func TestValueConcurrentStores(t *testing.T) {
	v, err := shm.NewValue(uint64(0))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			if i%2 == 0 {
				v.Store(0)
			} else {
				v.Store(math.MaxUint64)
			}
		}
	})
	for range 10000 {
		if got := v.Load(); got != 0 && got != math.MaxUint64 {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("torn load: %#x", got)
		}
	}
	stop.Store(true)
	wg.Wait()
}
