package pages

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Min is the size from which Populate makes its system call: below it the
// call (~1 µs) is not worth the few faults it saves.
const Min = 64 << 10

// huge is the huge page size Populate uses where whole ones fit.
const huge = 2 << 20

// Populate populates the pages under s (a fresh allocation about to be
// written). Where s spans whole 2 MiB-aligned huge pages they are
// populated as huge pages: the range is marked MADV_HUGEPAGE only while
// populating and unmarked after, so that khugepaged never collapses (and
// bloats) it later. s must stay referenced by the caller for the call, as
// any slice argument does; the range is rounded out to whole pages, which
// may take in the ends of neighbouring objects, whose bytes populating
// does not touch.
func Populate[T any](s []T) {
	size := uintptr(len(s)) * unsafe.Sizeof(*new(T))
	if size < Min {
		return
	}
	page := uintptr(unix.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	end := (start + size + page - 1) &^ (page - 1)
	start &^= page - 1
	if hs, he := (start+huge-1)&^(huge-1), end&^(huge-1); hs < he {
		unix.Syscall(unix.SYS_MADVISE, hs, he-hs, unix.MADV_HUGEPAGE)
		defer unix.Syscall(unix.SYS_MADVISE, hs, he-hs, unix.MADV_NOHUGEPAGE)
	}
	unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_POPULATE_WRITE)
}
