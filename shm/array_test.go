package shm_test

import (
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/multiproc-go/multiproc/shm"
)

func TestArray(t *testing.T) {
	a, err := shm.ArrayOf([]int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f, off, size := a.File()
	b, err := shm.AttachArray[int32](dupFile(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if off != 0 || size < 128+40 {
		t.Fatalf("File extent %d+%d, want 0 and at least a header and 40 bytes", off, size)
	}
	if b.Len() != 10 || !slices.Equal(b.Slice(), []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("second mapping: %v, want 0..9", b.Slice())
	}
	s := a.Slice()
	for i := range s {
		s[i] = -s[i]
	}
	if got := b.Slice()[9]; got != -9 {
		t.Fatalf("second mapping reads %d after a write through the first, want -9", got)
	}
	if len(s) != cap(s) {
		t.Fatalf("slice capacity %d, want its length %d: an append must not write past the array", cap(s), len(s))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if a.Slice() != nil || a.Len() != 0 {
		t.Fatal("Slice after Close is not nil")
	}
	// The memory lives on while another mapping holds it.
	if got := b.Slice()[1]; got != -1 {
		t.Fatalf("after the first Close the second mapping reads %d, want -1", got)
	}
}

func TestArrayAtomicElements(t *testing.T) {
	a, err := shm.NewArray[int64](4)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s := a.Slice()
	done := make(chan struct{})
	go func() {
		for range 1000 {
			atomic.AddInt64(&s[2], 1)
		}
		close(done)
	}()
	for range 1000 {
		atomic.AddInt64(&s[2], 1)
	}
	<-done
	if got := atomic.LoadInt64(&s[2]); got != 2000 {
		t.Fatalf("element 2 = %d after 2000 atomic increments", got)
	}
}

func TestArraySizes(t *testing.T) {
	empty, err := shm.NewArray[float64](0)
	if err != nil {
		t.Fatal(err)
	}
	if empty.Len() != 0 {
		t.Fatalf("empty array has %d elements", empty.Len())
	}
	if err := empty.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := shm.NewArray[float64](-1); err == nil {
		t.Fatal("NewArray(-1) succeeded")
	}
	huge := int(min(int64(1)<<50, math.MaxInt)) // 2^31-1 on 32 bits
	if _, err := shm.NewArray[[1 << 20]byte](huge); err == nil {
		t.Fatalf("NewArray of %d MiB succeeded", huge)
	}
	// More than the machine has: refused before any page is taken.
	if a, err := shm.NewArray[byte](huge); err == nil {
		a.Close()
		if strconv.IntSize == 64 { // 2 GiB may fit a 32-bit machine
			t.Fatal("NewArray of 1 PiB succeeded")
		}
	}
	z, err := shm.NewArray[struct{}](1000)
	if err != nil {
		t.Fatal(err)
	}
	if z.Len() != 1000 {
		t.Fatalf("array of empty structs has %d elements, want 1000", z.Len())
	}
	z.Close()
}
