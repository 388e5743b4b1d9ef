package memfd

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// newAnon creates a memfd. Sealing its size once allocated means no holder
// of the descriptor (a child, or one that received it over a socket) can
// shrink it and turn the others' accesses into SIGBUS.
//
// A memfd lives on the kernel's internal shm mount, which has no size
// limit: fallocate would take pages until the machine runs out, and then
// the OOM killer, which does not count unmapped shmem against its
// allocator, picks some other process. So a size beyond the machine's
// memory and swap is refused first, with ENOMEM; below that, a failing
// allocation returns ENOSPC or ENOMEM like any other.
func newAnon(name string, size int64) (*os.File, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err == nil {
		if limit := (uint64(si.Totalram) + uint64(si.Totalswap)) * uint64(si.Unit); uint64(size) > limit {
			return nil, os.NewSyscallError("memfd_create", fmt.Errorf("%d bytes exceed the machine's %d bytes of memory and swap: %w", size, limit, unix.ENOMEM))
		}
	}
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if err := allocate(f, size); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, os.NewSyscallError("fcntl F_ADD_SEALS", err)
	}
	return f, nil
}

// allocate uses fallocate, which also extends the file. A file system
// without fallocate (EOPNOTSUPP) gets only a size: there is nothing better.
func allocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return f.Truncate(size)
	}
	return os.NewSyscallError("fallocate", err)
}
