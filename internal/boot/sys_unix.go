//go:build unix

package boot

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

func socketPair() (parentEnd, childEnd *os.File, err error) {
	fds, err := socketpairCloexec()
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "multiproc-control"), os.NewFile(uintptr(fds[1]), "multiproc-control-child"), nil
}

// fileConn turns a socket file into a netpoller-backed conn, closing f.
func fileConn(f *os.File) (*net.UnixConn, error) {
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("multiproc: control socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("multiproc: control socket is a %T, not a unix socket", c)
	}
	return uc, nil
}

// controlConn opens fd 3 in a child, after checking that it is a socket.
func controlConn() (*net.UnixConn, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(3, &st); err != nil {
		return nil, fmt.Errorf("fd 3: %w", err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return nil, fmt.Errorf("fd 3 is not a socket")
	}
	// fileConn dups fd 3 close-on-exec and closes the original, so programs
	// the child runs with os/exec never inherit the control socket.
	return fileConn(os.NewFile(3, "multiproc-control"))
}

func ignoreInterrupt() {
	// A terminal's Ctrl-C reaches the whole foreground process group. The
	// parent decides what happens (by default it dies, and its children
	// follow it through the parent-death signal and the control socket's
	// EOF); children must not each print or die on their own.
	signal.Ignore(os.Interrupt)
}

var spawnOnce sync.Once
var spawnCh chan spawnReq

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// startCmd starts cmd from one OS thread that lives as long as the process.
// The parent-death signal fires when the thread that forked the child
// exits, not when the process does (golang/go#27505), and the Go runtime
// may retire threads; a locked thread that never returns is never retired.
//
// A ctx that ends while the request waits for the spawner (busy starting
// other children) returns its error; once the spawner has the request, the
// start is a fork and exec, over in milliseconds, and is waited for.
func startCmd(ctx context.Context, cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go spawner()
	})
	req := spawnReq{cmd: cmd, done: make(chan error, 1)}
	select {
	case spawnCh <- req:
	case <-ctx.Done():
		return ctxErr(ctx)
	}
	return <-req.done
}

// ExitStatus converts a reaped child's status to Python's exit code
// convention: the status, or -N when killed by signal N.
func ExitStatus(ps *os.ProcessState) (code int, sig syscall.Signal) {
	if ps == nil {
		return -1, 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal()), ws.Signal()
	}
	return ps.ExitCode(), 0
}

// spawner is the one goroutine that starts children. It lives as long as
// the process (leak checkers know its name).
func spawner() {
	runtime.LockOSThread() // never unlocked: the thread must not exit
	for req := range spawnCh {
		req.done <- req.cmd.Start()
	}
}

// setSocketBuffers sizes both buffers of a socket; it is best effort (the
// kernel caps the size at its configured maximum).
func setSocketBuffers(f *os.File, n int) {
	fd := int(f.Fd())
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, n)
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}

// writeNonblocking writes what the socket takes of b at once, in one
// system call, and returns how much that was (0 on any error: whatever is
// left is written later, where errors are reported).
func writeNonblocking(c *net.UnixConn, b []byte) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	// The netpoller's descriptors are non-blocking, and returning true
	// stops RawConn.Write from waiting for the socket to become writable.
	rc.Write(func(fd uintptr) bool {
		m, err := syscall.Write(int(fd), b)
		if err == nil && m > 0 {
			n = m
		}
		return true
	})
	return n
}

// connFD returns the descriptor of c, or -1.
func connFD(c *net.UnixConn) int {
	fd := -1
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(f uintptr) { fd = int(f) })
	}
	return fd
}

// firstFile is the descriptor of the first file a parent passes (after the
// control socket, fd 3).
const firstFile = 4

// closeInherited closes every descriptor above 2 that lacks close-on-exec,
// except control and the files passed at fds 4 to 4+files-1: descriptors
// a parent leaked into this process (opened without O_CLOEXEC), which the
// child has no use for and would otherwise hold open (a pipe's write end
// kept open in a child hides EOF from the pipe's reader) and hand on to
// its own children. Close-on-exec descriptors are this process's own: the
// Go runtime and package os open everything that way.
func closeInherited(control, files int) {
	for _, fd := range inheritedFDs(control, files) {
		unix.Close(fd)
	}
}

// inheritedFDs lists the descriptors closeInherited closes.
func inheritedFDs(control, files int) []int {
	var fds []int
	for _, fd := range openFDs() {
		if fd <= 2 || fd == control || (fd >= firstFile && fd < firstFile+files) {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		fds = append(fds, fd)
	}
	return fds
}

// openFDs lists this process's open descriptors from the system's
// descriptor directory; where there is none (a chroot without /proc) it
// returns every number below the descriptor limit (capped), for the caller
// to probe.
func openFDs() []int {
	if d, err := os.Open(fdDir); err == nil {
		names, err := d.Readdirnames(-1)
		d.Close()
		if err == nil {
			fds := make([]int, 0, len(names))
			for _, name := range names {
				if fd, err := strconv.Atoi(name); err == nil {
					fds = append(fds, fd)
				}
			}
			return fds
		}
	}
	bound := uint64(1 << 16)
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < bound {
		bound = rl.Cur
	}
	fds := make([]int, bound)
	for i := range fds {
		fds[i] = i
	}
	return fds
}
