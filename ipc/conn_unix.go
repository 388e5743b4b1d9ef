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
