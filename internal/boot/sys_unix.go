//go:build unix

package boot

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
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
func startCmd(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go spawner()
	})
	req := spawnReq{cmd: cmd, done: make(chan error, 1)}
	spawnCh <- req
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
