package core

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directReads: a caller may read its worker's replies itself (Await).
const directReads = true

// spinReads: waiters for a reply or a task may poll before they sleep (spin.go).
const spinReads = true

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
func (k *directWaker) wait(rc syscall.RawConn) (readable bool, err error) {
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
func pending(rc syscall.RawConn) bool {
	waiting := true
	rc.Control(func(fd uintptr) {
		// Raw: it cannot block, and skips the scheduler's bookkeeping
		// (the caller's next read goes through it, see wire's
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

// sockFD is the pool's own descriptor of a worker's socket, a duplicate
// that outlives the *net.UnixConn the read loop waits on, so that the
// socket can leave the net package's poller while its stream is parked
// (see readerState). It implements the Control of syscall.RawConn; the
// descriptor stays open while a Control callback runs.
type sockFD struct {
	mu     sync.RWMutex
	fd     int
	closed bool
	// order is touched around every system call on the socket: what a
	// read returns happened after the write it answers, through the
	// kernel, where the race detector cannot see it (the net package's
	// descriptor lock gave it that edge), so a buffer written out and
	// reused once the reply came is not reported as a race.
	order atomic.Uint64
}

// newSockFD duplicates c's descriptor (close-on-exec).
func newSockFD(c *net.UnixConn) (*sockFD, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	cerr := rc.Control(func(fd uintptr) {
		nfd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	return &sockFD{fd: nfd}, nil
}

func (s *sockFD) Control(f func(fd uintptr)) error {
	if s == nil {
		return net.ErrClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return net.ErrClosed
	}
	s.order.Add(1) // before a write: what was done before it is released
	f(uintptr(s.fd))
	s.order.Add(1) // after a read: what the writer did before is acquired
	return nil
}

// release orders what the caller did before a write made without Control
// (through the connection) before what a reader of the reply does after.
func (s *sockFD) release() {
	if s != nil {
		s.order.Add(1)
	}
}

func (s *sockFD) Read(func(fd uintptr) bool) error  { return errors.ErrUnsupported }
func (s *sockFD) Write(func(fd uintptr) bool) error { return errors.ErrUnsupported }

func (s *sockFD) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		unix.Close(s.fd)
	}
	s.mu.Unlock()
}

// conn returns a new connection on the socket, registered with the net
// package's poller, for the read loop to wait on.
func (s *sockFD) conn() (*net.UnixConn, error) {
	var f *os.File
	err := s.Control(func(fd uintptr) {
		nfd, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		if err == nil {
			f = os.NewFile(uintptr(nfd), "multiproc-worker")
		}
	})
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, errors.New("multiproc: cannot duplicate a worker's socket")
	}
	c, err := net.FileConn(f) // duplicates again
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("multiproc: a worker's socket is not a unix socket")
	}
	return uc, nil
}

// waitIn blocks the calling thread until the socket is readable (bytes,
// or the end of the stream): the read loop's wait when no poller-registered
// connection could be made.
func (s *sockFD) waitIn() error {
	return s.Control(func(fd uintptr) {
		fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		unix.Ppoll(fds[:], nil, nil)
	})
}

// writev writes bufs in order with raw vectored writes and returns what
// is left: nothing, unless the socket filled up and wait is false. With
// wait it waits for room in ppoll, a blocking system call on this thread.
func (s *sockFD) writev(bufs [][]byte, wait bool) ([][]byte, error) {
	var err error
	cerr := s.Control(func(fd uintptr) {
		var iov [16]unix.Iovec
		for len(bufs) > 0 {
			n := 0
			for _, b := range bufs {
				if n == len(iov) {
					break
				}
				if len(b) > 0 {
					iov[n].Base = &b[0]
					iov[n].SetLen(len(b))
					n++
				}
			}
			if n == 0 {
				bufs = nil
				return
			}
			r, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
			switch e {
			case 0:
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				if !wait {
					return
				}
				fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
				unix.Ppoll(fds[:], nil, nil)
				continue
			default:
				err = os.NewSyscallError("writev", e)
				return
			}
			left := int(r)
			for len(bufs) > 0 && left >= len(bufs[0]) {
				left -= len(bufs[0])
				bufs = bufs[1:]
			}
			if len(bufs) > 0 {
				bufs[0] = bufs[0][left:]
			}
		}
	})
	if cerr != nil {
		return bufs, cerr
	}
	return bufs, err
}

// pidWatch watches a worker process for its exit through a pidfd, which
// the net package's poller waits on without a thread: the only watch of a
// worker whose stream is parked.
type pidWatch struct{ f *os.File }

func newPidWatch(pid int) (*pidWatch, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	unix.CloseOnExec(fd)
	return &pidWatch{f: os.NewFile(uintptr(fd), "multiproc-pidfd")}, nil
}

// wait returns once the process has exited or the watch was closed.
func (pw *pidWatch) wait() {
	rc, err := pw.f.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		var zero unix.Timespec
		n, err := unix.Ppoll(fds[:], &zero, nil)
		return err == nil && n > 0 && fds[0].Revents != 0
	})
}

func (pw *pidWatch) close() {
	if pw != nil {
		pw.f.Close()
	}
}
