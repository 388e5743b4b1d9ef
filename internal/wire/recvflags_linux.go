package wire

import (
	"syscall"
	"unsafe"
)

// recvmsgNow is one non-blocking recvmsg on fd, made as a raw system call:
// it cannot block (the descriptor is non-blocking), so it need not tell
// the Go scheduler, and skipping that matters on the latency path. An idle
// Go process puts its system monitor thread into a deep sleep, and the
// first system call through the scheduler wakes it again: a second thread
// woken for every task that arrives at an idle worker, besides the one
// that reads it. The kernel installs received descriptors close-on-exec
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
	r, _, e := syscall.RawSyscall(syscall.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), syscall.MSG_CMSG_CLOEXEC|syscall.MSG_DONTWAIT)
	if e != 0 {
		return 0, 0, 0, e
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

func setCloseOnExec([]byte) {}
