package wire

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvmsgNow is one non-blocking recvmsg on fd. It goes through the Go
// scheduler (syscall.Syscall, not RawSyscall) although it cannot block:
// that entry is what wakes the runtime's system monitor from the deep
// sleep it enters while a process looks idle, and the monitor is what
// preempts a goroutine that runs for long. A worker (GOMAXPROCS=1 by
// default) read its tasks with raw calls only, so a task that arrived at
// an idle worker and spun kept the only P for up to a minute: nothing else
// in the worker ran, the CPU guard's goroutine included
// (TestWorkerPreemptsAfterIdle). The raw call was meant to spare that
// wake-up on the latency path; an A/B of apply_latency with mpbench found
// no cost (-no-python -reps 7, two rounds, raw 55.1 and 49.7 us/call,
// through the scheduler 48.3 and 48.8; noise is larger than any
// difference). The kernel installs received descriptors close-on-exec
// (MSG_CMSG_CLOEXEC), as the net package asks.
func recvmsgNow(fd int, p, oob []byte) (n, oobn, flags int, err error) {
	var iov syscall.Iovec
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
	}
	var msg syscall.Msghdr
	msg.Iov = &iov
	msg.Iovlen = 1
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	// unix's number, not syscall's: linux/386's syscall package knows
	// recvmsg only through socketcall, while the kernel (4.3 and later)
	// has the direct call on every architecture.
	r, _, e := syscall.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), syscall.MSG_CMSG_CLOEXEC|syscall.MSG_DONTWAIT)
	if e != 0 {
		return 0, 0, 0, e
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

func setCloseOnExec([]byte) {}
