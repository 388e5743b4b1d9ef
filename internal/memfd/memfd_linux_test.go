package memfd_test

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/multiproc-go/multiproc/internal/memfd"
	"golang.org/x/sys/unix"
)

// TestSealed guards the seals: no holder of a segment's descriptor may
// change its size under the others' mappings.
func TestSealed(t *testing.T) {
	f, err := memfd.New("multiproc-test", int64(memfd.PageSize))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int64{0, 2 * int64(memfd.PageSize)} {
		if err := f.Truncate(size); !errors.Is(err, syscall.EPERM) {
			t.Errorf("Truncate(%d) of a sealed segment = %v, want EPERM", size, err)
		}
	}
}

// TestAllocateNoSpace guards the reason Allocate exists: on a file system
// without room, ftruncate succeeds and the first write through a mapping is
// a SIGBUS; Allocate must fail with ENOSPC instead. The size asked for
// exceeds the whole of /dev/shm, so tmpfs refuses it before allocating a
// page, and other programs sharing /dev/shm never see it full.
func TestAllocateNoSpace(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	if st.Blocks == 0 {
		t.Skip("/dev/shm has no size limit")
	}
	path := fmt.Sprintf("/dev/shm/multiproc-memfd-test-%d", os.Getpid())
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	defer f.Close()
	size := int64(st.Blocks)*int64(st.Bsize) + int64(memfd.PageSize)
	if err := memfd.Allocate(f, size); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Allocate(%d) on /dev/shm of %d bytes = %v, want ENOSPC", size, int64(st.Blocks)*int64(st.Bsize), err)
	}
}

// TestNewBeyondMemory guards against the OOM killer: an anonymous segment
// larger than the machine's memory and swap is refused before fallocate
// starts taking pages (which the OOM killer would not blame on us).
func TestNewBeyondMemory(t *testing.T) {
	f, err := memfd.New("multiproc-test", 1<<50)
	if err == nil {
		f.Close()
		t.Fatal("New(1 PiB) succeeded")
	}
	if !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("New(1 PiB) = %v, want an error matching ENOMEM", err)
	}
}
