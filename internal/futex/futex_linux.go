package futex

import (
	"math"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations (linux/futex.h); shared, so not FUTEX_PRIVATE_FLAG.
const (
	futexWait = 0
	futexWake = 1
)

// Supported reports whether this platform has futexes (Linux).
const Supported = true

// Wait sleeps while *addr == val, until a [Wake] on addr, a signal, or
// timeout (≤ 0: no limit). It returns early and at once when *addr != val.
// Callers re-check their condition afterwards: every return may be
// spurious. The futex is shared (not FUTEX_PRIVATE), so it works across
// processes mapping the same memory.
//
// The calling goroutine's OS thread is blocked in the kernel for the
// duration (Go's scheduler hands its P to another thread after ~20 µs).
func Wait(addr *uint32, val uint32, timeout time.Duration) {
	var ts *unix.Timespec
	if timeout > 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	// Syscall6 (not RawSyscall): the scheduler must know the thread blocks.
	syscall.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
}

// Wake wakes up to n waiters of addr (n ≤ 0: all) and returns how many it
// woke. A wake costs a system call (~1 µs here) whether or not anyone waits,
// so callers keep a waiter count or flag and wake only when it is set.
func Wake(addr *uint32, n int) int {
	if n <= 0 || n > math.MaxInt32 {
		n = math.MaxInt32
	}
	r, _, _ := syscall.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(n), 0, 0, 0)
	return int(r)
}
