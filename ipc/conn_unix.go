//go:build unix

package ipc

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var errPeerClosedEOF = io.EOF

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// dupFD duplicates fd, close-on-exec.
func dupFD(fd int) (*os.File, error) {
	syscall.ForkLock.RLock()
	nfd, err := syscall.Dup(fd)
	if err == nil {
		syscall.CloseOnExec(nfd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	return os.NewFile(uintptr(nfd), "ipc-conn"), nil
}

// fileConnOf makes a net.Conn of f, closing f.
func fileConnOf(f *os.File) (net.Conn, error) {
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("ipc: receiving a Conn: %w", err)
	}
	return nc, nil
}

// threadWaitMillis bounds how long a receive or a write waits for its
// socket on its own thread before it parks in the Go poller.
const threadWaitMillis = 1

// threadWait waits, on the calling thread, up to threadWaitMillis for fd
// to be ready for events. Measured here, the poller's wake-up of a
// goroutine on another CPU costs ~30 µs, more than a whole small round
// trip; a thread blocked in poll(2) is woken by the kernel directly. The
// bound keeps a Conn whose peer is silent from holding a thread: it then
// waits in the poller like any other. Only receives that expect bytes
// soon (right after this side sent, or in the middle of a message) and
// the writer use it.
func threadWait(fd int, write bool) bool {
	ev := int16(unix.POLLIN)
	if write {
		ev = unix.POLLOUT
	}
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: ev}}
	n, err := unix.Poll(fds[:], threadWaitMillis)
	return err == nil && n > 0
}

// rawRead reads into p through the raw connection, waiting first on the
// thread (threadWait), then in the poller.
func (c *Conn) rawRead(p []byte) (int, error) {
	var n int
	var err error
	cerr := c.rc.Read(func(fd uintptr) bool {
		for {
			n, err = syscall.Read(int(fd), p)
			switch err {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				if threadWait(int(fd), false) {
					continue
				}
				return false
			}
			return true
		}
	})
	if n < 0 {
		n = 0
	}
	if cerr != nil {
		return n, cerr
	}
	if err == nil && n == 0 && len(p) > 0 {
		err = io.EOF
	}
	return n, err
}
