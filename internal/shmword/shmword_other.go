//go:build unix && !linux

package shmword

import (
	"os"
	"syscall"
)

// anonFile returns an unlinked temporary file: without memfd, unlinking at
// once is what keeps it from outliving its users.
func anonFile() (*os.File, error) {
	f, err := os.CreateTemp("", "multiproc-words-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	if err := f.Truncate(Size); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func mmap(f *os.File) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, Size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
}

func munmap(b []byte) error { return syscall.Munmap(b) }
