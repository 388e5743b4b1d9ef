package shmword

import (
	"os"

	"golang.org/x/sys/unix"
)

// anonFile returns a memfd: it has no name in any file system, so it cannot
// leak; the kernel frees it with its last user.
func anonFile() (*os.File, error) {
	fd, err := unix.MemfdCreate("multiproc-words", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "multiproc-words")
	if err := f.Truncate(Size); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func mmap(f *os.File) ([]byte, error) {
	return unix.Mmap(int(f.Fd()), 0, Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

func munmap(b []byte) error { return unix.Munmap(b) }
