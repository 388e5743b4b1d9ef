package pages

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
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

// TestPopulateHugeSpan covers the huge-page branch: a mapping of 4 MiB
// plus a page holds at least one whole 2 MiB-aligned span wherever it
// lands. Every page is resident after Populate whatever the THP mode; in
// "madvise" mode (hugeAdvised) the span is populated as huge pages and
// left marked MADV_NOHUGEPAGE, which smaps reports as the "nh" flag.
func TestPopulateHugeSpan(t *testing.T) {
	if !supported() {
		t.Skip("this kernel has no MADV_POPULATE_WRITE (Linux 5.14)")
	}
	size := 2*huge + unix.Getpagesize()
	b := mmap(t, size)
	Populate(b)
	if n, want := resident(t, b), size/unix.Getpagesize(); n != want {
		t.Fatalf("%d of %d pages resident after Populate", n, want)
	}
	marked, huges := vmaFlags(t, b)
	if marked != hugeAdvised() {
		t.Fatalf("a part of the mapping marked MADV_NOHUGEPAGE: %v; want %v (THP in madvise mode with 2 MiB pages)", marked, hugeAdvised())
	}
	t.Logf("THP madvise mode: %v; AnonHugePages in the mapping: %d kB", hugeAdvised(), huges)
}

// vmaFlags reports whether a mapping within b has the "nh" flag
// (MADV_NOHUGEPAGE) in /proc/self/smaps, and the kB of huge pages in them.
func vmaFlags(t *testing.T, b []byte) (nh bool, hugeKB int) {
	t.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	lo := uint64(uintptr(unsafe.Pointer(&b[0])))
	hi := lo + uint64(len(b))
	in := false
	for _, line := range strings.Split(string(smaps), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if a, z, ok := strings.Cut(f[0], "-"); ok && !strings.HasSuffix(f[0], ":") {
			s, err1 := strconv.ParseUint(a, 16, 64)
			e, err2 := strconv.ParseUint(z, 16, 64)
			in = err1 == nil && err2 == nil && s >= lo && e <= hi
			continue
		}
		if !in {
			continue
		}
		switch f[0] {
		case "VmFlags:":
			nh = nh || slices.Contains(f[1:], "nh")
		case "AnonHugePages:":
			kb, _ := strconv.Atoi(f[1])
			hugeKB += kb
		}
	}
	return nh, hugeKB
}

func TestPopulateKeepsBytes(t *testing.T) {
	if !supported() {
		t.Skip("this kernel has no MADV_POPULATE_WRITE (Linux 5.14)")
	}
	// A sparse mapping: some pages written, the others never touched.
	// Populating unaligned ranges (rounded out to whole pages, taking in
	// neighbours' bytes) must keep the written bytes and leave the others
	// zero.
	page := unix.Getpagesize()
	b := mmap(t, 3*huge)
	want := make([]byte, len(b))
	for off := 0; off < len(b); off += 5 * page {
		for i := off; i < off+page; i++ {
			b[i] = byte(i*7 + 1)
			want[i] = b[i]
		}
	}
	Populate(b[123 : len(b)-77])
	Populate(b[1:])
	if n, all := resident(t, b), len(b)/page; n != all {
		t.Fatalf("%d of %d pages resident after Populate", n, all)
	}
	if !bytes.Equal(b, want) {
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
