package core

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directReads: a caller may read its worker's replies itself (Await).
const directReads = true

// directWaker is an eventfd that a direct reader polls beside its worker's
// socket, so that a cancel, a timeout or its context ending can wake it.
type directWaker struct{ fd int }

func newDirectWaker() (*directWaker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return &directWaker{fd: fd}, nil
}

// wait blocks the calling thread in ppoll until c is readable or the waker
// fires. It polls inside Control, so c's descriptor stays open meanwhile.
// A signal (the Go runtime's preemption) ends it early: the caller checks
// and waits again.
// It reports whether c is readable (bytes, or the end of the stream).
func (k *directWaker) wait(c *net.UnixConn) (readable bool, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, err
	}
	cerr := rc.Control(func(fd uintptr) {
		fds := [2]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(k.fd), Events: unix.POLLIN}}
		// unix.Ppoll is a blocking system call (entersyscall): the thread
		// sleeps in the kernel, and the reply wakes it directly.
		if _, err := unix.Ppoll(fds[:], nil, nil); err == nil {
			readable = fds[0].Revents != 0
			if fds[1].Revents != 0 {
				var b [8]byte
				unix.Read(k.fd, b[:]) // reset the counter
			}
		}
	})
	return readable, cerr
}

// pending reports whether bytes (or the end of the stream) wait to be read
// on c, without reading them; true when it cannot tell.
func pending(c *net.UnixConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return true
	}
	waiting := true
	rc.Control(func(fd uintptr) {
		// Raw: it cannot block, and skips the scheduler (see wire's
		// recvmsgNow).
		var b [1]byte
		_, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		waiting = e != unix.EAGAIN
	})
	return waiting
}

// writeNow writes what c's socket takes of b at once, with one raw system
// call (c is non-blocking: it cannot block), and returns how many bytes
// that was.
func writeNow(c *net.UnixConn, b []byte) int {
	if len(b) == 0 {
		return 0
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) {
		r, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e == 0 {
			n = int(r)
		}
	})
	return n
}

// wake makes a pending or future wait return.
func (k *directWaker) wake() {
	b := [8]byte{1}
	unix.Write(k.fd, b[:])
}

func (k *directWaker) close() {
	if k != nil {
		unix.Close(k.fd)
	}
}
