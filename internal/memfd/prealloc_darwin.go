package memfd

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate reserves size bytes with F_PREALLOCATE. Only a lack of space
// is an error: a file system that cannot preallocate still gets its size.
func preallocate(f *os.File, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if size <= fi.Size() {
		return nil
	}
	st := unix.Fstore_t{Flags: unix.F_ALLOCATEALL, Posmode: unix.F_PEOFPOSMODE, Length: size - fi.Size()}
	err = unix.FcntlFstore(f.Fd(), unix.F_PREALLOCATE, &st)
	if errors.Is(err, unix.ENOSPC) {
		return os.NewSyscallError("fcntl F_PREALLOCATE", err)
	}
	return nil
}
