//go:build unix

package memfd

import (
	"os"

	"golang.org/x/sys/unix"
)

func mmap(f *os.File, off int64, size int) ([]byte, error) {
	b, err := unix.Mmap(int(f.Fd()), off, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return b, nil
}

func munmap(b []byte) error { return os.NewSyscallError("munmap", unix.Munmap(b)) }
