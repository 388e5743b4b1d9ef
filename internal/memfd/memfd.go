package memfd

import (
	"fmt"
	"os"
)

// PageSize is the granularity of mappings: [Map] offsets must be multiples
// of it.
var PageSize = os.Getpagesize()

// New returns a new anonymous segment of size bytes, zero-filled, with its
// backing store reserved (see [Allocate]) and, on Linux, its size sealed.
// name appears only in diagnostics (/proc/PID/fd, the temporary file's
// name); it need not be unique. The file is close-on-exec; the caller owns
// it, and the memory lives as long as the file or any mapping of it does.
func New(name string, size int64) (*os.File, error) {
	if size <= 0 {
		return nil, fmt.Errorf("segment size %d: must be positive", size)
	}
	return newAnon(name, size)
}

// Allocate makes f size bytes long and reserves its backing store, so that
// later writes through a mapping cannot fault for lack of space: a file
// system without room fails here, with an error matching syscall.ENOSPC.
// Bytes beyond f's old size read as zero. On Linux this is fallocate(2);
// macOS uses F_PREALLOCATE; other systems only set the size (there a full
// file system still shows up as SIGBUS on first write).
func Allocate(f *os.File, size int64) error {
	if size <= 0 {
		return fmt.Errorf("segment size %d: must be positive", size)
	}
	return allocate(f, size)
}

// Map maps size bytes of f from offset off, shared and writable: stores
// through the result are seen by every process that maps the same file, and
// written to the file. off must be a multiple of [PageSize], and the file
// must be at least off+size bytes long, which Map checks, since touching a
// mapping beyond the end of its file is a SIGBUS rather than an error. That
// makes Map safe on a descriptor received from another process. The file may
// be closed after Map returns: the mapping stays valid until [Unmap].
//
// The mapping is not Go memory: the garbage collector neither scans nor
// frees it, and a slice of it does not keep it mapped. Touching it after
// Unmap is a fatal fault, not a panic.
func Map(f *os.File, off int64, size int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("mapping size %d: must be positive", size)
	}
	if off < 0 || off%int64(PageSize) != 0 {
		return nil, fmt.Errorf("mapping offset %d: must be a non-negative multiple of the page size %d", off, PageSize)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < off+int64(size) {
		return nil, fmt.Errorf("mapping %d bytes at offset %d of %s: the file has only %d bytes", size, off, f.Name(), fi.Size())
	}
	return mmap(f, off, size)
}

// Unmap removes a mapping returned by [Map]. b must be exactly that slice
// (not a subslice); nil is accepted and ignored.
func Unmap(b []byte) error {
	if b == nil {
		return nil
	}
	return munmap(b)
}
