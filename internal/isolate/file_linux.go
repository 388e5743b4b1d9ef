package isolate

import (
	"os"

	"golang.org/x/sys/unix"
)

// NewFile makes an anonymous in-memory file that grows as it is written
// (a memfd, unlike internal/memfd's fixed, sealed segments): a crash
// report or a task's captured output, which the parent owns and reads.
func NewFile(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}
