package pages

import (
	"bytes"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Min is the size from which Populate makes its system call: below it the
// call (~1 µs) is not worth the few faults it saves.
const Min = 64 << 10

// huge is the huge page size Populate uses where whole ones fit, if the
// kernel's is the same (hugeAdvised).
const huge = 2 << 20

// supported reports whether this kernel has MADV_POPULATE_WRITE (Linux
// 5.14), probed once on a page of its own: without it Populate does
// nothing.
var supported = sync.OnceValue(func() bool {
	b, err := unix.Mmap(-1, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return false
	}
	defer unix.Munmap(b)
	return unix.Madvise(b, unix.MADV_POPULATE_WRITE) == nil
})

// hugeAdvised reports whether transparent huge pages are in "madvise"
// mode with 2 MiB pages: only then does marking a range MADV_HUGEPAGE
// change what populating it allocates, and only then is the
// MADV_NOHUGEPAGE that unmarks it afterwards the same as leaving it
// unmarked (in that mode khugepaged collapses marked ranges alone). In
// "always" mode the kernel uses huge pages for aligned spans by itself,
// and unmarking would take them from the Go heap for good (there is no
// advice that restores the default); in "never" mode there are none.
var hugeAdvised = sync.OnceValue(func() bool {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || !bytes.Contains(mode, []byte("[madvise]")) {
		return false
	}
	size, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
	return err == nil && string(bytes.TrimSpace(size)) == "2097152"
})

// Populate populates the pages under s (a fresh allocation about to be
// written). Where s spans whole 2 MiB-aligned huge pages and transparent
// huge pages are in "madvise" mode, those are populated as huge pages:
// the span is marked MADV_HUGEPAGE while populating and MADV_NOHUGEPAGE
// after, so that khugepaged never collapses (and bloats) the Go heap
// around it later; the marks split the heap's mapping there. The range is
// rounded out to whole pages, which may take in the ends of neighbouring
// objects, whose bytes populating does not touch. Errors are ignored:
// populating is only ever a saving.
func Populate[T any](s []T) {
	size := uintptr(len(s)) * unsafe.Sizeof(*new(T))
	if size < Min || !supported() {
		return
	}
	page := uintptr(unix.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	end := (start + size + page - 1) &^ (page - 1)
	start &^= page - 1
	// The guard keeps start+huge-1 from wrapping on 32-bit systems.
	if end-start >= huge && start <= ^uintptr(0)-huge && hugeAdvised() {
		if hs, he := (start+huge-1)&^(huge-1), end&^(huge-1); hs < he {
			unix.Syscall(unix.SYS_MADVISE, hs, he-hs, unix.MADV_HUGEPAGE)
			defer unix.Syscall(unix.SYS_MADVISE, hs, he-hs, unix.MADV_NOHUGEPAGE)
		}
	}
	unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_POPULATE_WRITE)
	runtime.KeepAlive(s)
}
