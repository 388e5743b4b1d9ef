//go:build unix

package ipc

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// Pipe returns the two ends of a new connection (Python's
// multiprocessing.Pipe). With duplex, both ends send and receive. Without
// it, the first end only receives and the second only sends (Python's
// Pipe(duplex=False) returns (reader, writer) in that order). Both ends
// are resources: pass one to a Process or a pool task and keep the other.
// The ends are a unix socketpair, so the peer build is this binary's and
// typed values take the fast encodings.
func Pipe(duplex bool) (*Conn, *Conn, error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("ipc: pipe: %w", os.NewSyscallError("socketpair", err))
	}
	a, err := fileConn(fds[0], "ipc-pipe")
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	b, err := fileConn(fds[1], "ipc-pipe")
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	cfg := connConfig{sameBuild: ownBuild() != "", peerBuild: ownBuild(), max: DefaultMaxMessageSize, canRead: true, canWrite: true}
	ra, rb := cfg, cfg
	if !duplex {
		ra.canWrite = false
		rb.canRead = false
		// The kernel enforces the direction too: a stray write on the
		// receiving end fails instead of confusing the sender.
		a.(*net.UnixConn).CloseWrite()
		b.(*net.UnixConn).CloseRead()
	}
	return newConn(a, ra), newConn(b, rb), nil
}

// fileConn makes a net.Conn of descriptor fd, which it takes over.
func fileConn(fd int, name string) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), name)
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("ipc: %w", err)
	}
	return c, nil
}
