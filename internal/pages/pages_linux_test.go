package pages

import (
	"bytes"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident counts the resident pages of b, which must start on a page.
func resident(t *testing.T, b []byte) int {
	t.Helper()
	vec := make([]byte, (len(b)+unix.Getpagesize()-1)/unix.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

func mmap(t *testing.T, size int) []byte {
	t.Helper()
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	return b
}

func TestPopulateMakesPagesResident(t *testing.T) {
	const size = 1 << 20
	b := mmap(t, size)
	if n := resident(t, b); n != 0 {
		t.Fatalf("a fresh mapping has %d resident pages", n)
	}
	probe := mmap(t, unix.Getpagesize())
	if err := unix.Madvise(probe, unix.MADV_POPULATE_WRITE); err != nil {
		t.Skipf("this kernel has no MADV_POPULATE_WRITE (Linux 5.14): %v", err)
	}
	Populate(b)
	if n, want := resident(t, b), size/unix.Getpagesize(); n != want {
		t.Fatalf("%d of %d pages resident after Populate", n, want)
	}
}

func TestPopulateSmallIsNoCall(t *testing.T) {
	b := mmap(t, Min)
	Populate(b[:Min-1]) // below Min: nothing to do
	if n := resident(t, b); n != 0 {
		t.Fatalf("Populate of %d bytes made %d pages resident", Min-1, n)
	}
}

func TestPopulateKeepsBytes(t *testing.T) {
	// Unaligned both ends, inside a larger slice whose ends hold data too:
	// the rounded-out range takes in neighbours' bytes and must not change
	// any.
	buf := make([]byte, 3<<20)
	for i := range buf {
		buf[i] = byte(i*7 + 1)
	}
	want := bytes.Clone(buf)
	Populate(buf[123 : len(buf)-77])
	Populate(buf[1:])
	if !bytes.Equal(buf, want) {
		t.Fatal("Populate changed bytes")
	}
	ints := make([]int64, 1<<18)
	for i := range ints {
		ints[i] = int64(i)
	}
	Populate(ints)
	for i, v := range ints {
		if v != int64(i) {
			t.Fatalf("ints[%d] = %d after Populate", i, v)
		}
	}
	Populate([]byte(nil))
	Populate([]struct{}{{}, {}})
}
