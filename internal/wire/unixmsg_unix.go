//go:build unix

package wire

import (
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

func oobSize() int { return syscall.CmsgSpace(MaxFilesPerMsg * 4) }

// readMsg reads bytes and the descriptors that came with them. The kernel
// ends a recvmsg after the first segment that carries descriptors, so one
// control buffer sized for a sendmsg's maximum always suffices; MSG_CTRUNC
// then means the kernel could not install them in this process.
func (r *Reader) readMsg(p []byte) (int, error) {
	var n, oobn, flags int
	var err error
	if r.nowait {
		n, oobn, flags, err = r.recvNow(p)
	} else {
		n, oobn, flags, _, err = r.uc.ReadMsgUnix(p, r.oob)
	}
	if oobn > 0 {
		if perr := r.queueRights(r.oob[:oobn]); perr != nil && err == nil {
			err = perr
		}
	}
	if err == nil && flags&syscall.MSG_CTRUNC != 0 {
		// The control buffer fits a sendmsg's maximum, so the kernel
		// could not install the descriptors here (EMFILE): the frames
		// that start in these bytes lose theirs (see FilesLost).
		r.truncEnd = r.base + int64(r.w0) + int64(n)
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// queueRights adds the descriptors of SCM_RIGHTS messages to the queue
// (the net package receives them close-on-exec).
func (r *Reader) queueRights(oob []byte) error {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("%w: control message: %w", ErrCorrupt, err)
	}
	var bad error
	for i := range msgs {
		fds, err := syscall.ParseUnixRights(&msgs[i])
		if err != nil {
			continue // not descriptors (credentials): nothing to keep
		}
		for _, fd := range fds {
			if len(r.fds) >= maxQueuedFiles {
				closeFD(fd)
				bad = fmt.Errorf("%w: more than %d descriptors received that no frame declares", ErrCorrupt, maxQueuedFiles)
				continue
			}
			r.fds = append(r.fds, fd)
		}
	}
	return bad
}

// recvNow is one recvmsg that does not wait: it runs on the raw descriptor
// (the net package's descriptors are non-blocking) through Control, which
// keeps the descriptor open meanwhile without taking the connection's read
// lock, so it works while another goroutine waits in the connection's
// RawConn.Read. No data yet is errWouldBlock; end of stream is io.EOF.
func (r *Reader) recvNow(p []byte) (n, oobn, flags int, err error) {
	rc := r.raw
	if rc == nil {
		var err error
		if rc, err = r.uc.SyscallConn(); err != nil {
			return 0, 0, 0, err
		}
	}
	var rerr error
	cerr := rc.Control(func(fd uintptr) {
		for {
			n, oobn, flags, rerr = recvmsgNow(int(fd), p, r.oob)
			if rerr != syscall.EINTR {
				return
			}
		}
	})
	switch {
	case cerr != nil:
		return 0, 0, 0, cerr
	case rerr == syscall.EAGAIN:
		return 0, 0, 0, errWouldBlock
	case rerr != nil:
		return 0, 0, 0, os.NewSyscallError("recvmsg", rerr)
	case n == 0 && len(p) > 0:
		return 0, 0, 0, io.EOF
	}
	if oobn > 0 {
		setCloseOnExec(r.oob[:oobn])
	}
	return n, oobn, flags, nil
}

func closeFD(fd int) { syscall.Close(fd) }

// Attach places descriptors in a byte stream written by [WriteFiles]: Fds
// belong to the frame that starts at byte At.
type Attach struct {
	At  int
	Fds []int
}

// WriteFiles writes b to c with the descriptors of att (in increasing At
// order) passed by SCM_RIGHTS, at most [MaxFilesPerMsg] per sendmsg, each
// set in a sendmsg that starts no later than its frame, so a [Reader] in
// descriptor mode has a frame's descriptors when it parses the frame. A
// frame with more than MaxFilesPerMsg descriptors has its first bytes sent
// one per sendmsg, each with the next share. The descriptors stay the
// caller's; the kernel holds its own references while they are in flight.
func WriteFiles(c *net.UnixConn, b []byte, att []Attach) error {
	s := 0
	var fds []int
	for _, a := range att {
		rest, pos := a.Fds, a.At
		for len(rest) > 0 {
			if len(fds) == MaxFilesPerMsg {
				if pos == s {
					pos++ // the frame's descriptors span sendmsgs: one byte each
				}
				if err := sendRights(c, b[s:pos], fds); err != nil {
					return err
				}
				s, fds = pos, fds[:0]
			}
			k := min(len(rest), MaxFilesPerMsg-len(fds))
			fds = append(fds, rest[:k]...)
			rest = rest[k:]
		}
	}
	return sendRights(c, b[s:], fds)
}

func sendRights(c *net.UnixConn, b []byte, fds []int) error {
	if len(fds) == 0 {
		_, err := c.Write(b)
		return err
	}
	// A stream socket may take part of b; the descriptors went with its
	// first byte, so the rest is written plainly.
	n, _, err := c.WriteMsgUnix(b, syscall.UnixRights(fds...), nil)
	if err != nil {
		return err
	}
	if n < len(b) {
		_, err = c.Write(b[n:])
	}
	return err
}

// DupFD returns a close-on-exec duplicate of f's descriptor, which the
// caller owns (close it with CloseFD). f's blocking mode is left alone (f.Fd
// would change it).
func DupFD(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	cerr := rc.Control(func(fd uintptr) {
		// ForkLock: no child may inherit the duplicate between dup and
		// close-on-exec.
		syscall.ForkLock.RLock()
		nfd, derr = syscall.Dup(int(fd))
		if derr == nil {
			syscall.CloseOnExec(nfd)
		}
		syscall.ForkLock.RUnlock()
	})
	if cerr != nil {
		// A closed file says "use of closed file" (poll.ErrFileClosing),
		// which matches nothing a caller can test for: say os.ErrClosed.
		return -1, fmt.Errorf("%w: %v", os.ErrClosed, cerr)
	}
	if derr != nil {
		return -1, os.NewSyscallError("dup", derr)
	}
	return nfd, nil
}

// CloseFD closes a descriptor from DupFD.
func CloseFD(fd int) { closeFD(fd) }
