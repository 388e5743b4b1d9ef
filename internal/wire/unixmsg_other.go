//go:build !unix

package wire

import (
	"errors"
	"net"
	"os"
)

func oobSize() int { return 0 }

// readMsg reads; there is no non-blocking read here, so TryNext waits.
func (r *Reader) readMsg(p []byte) (int, error) { return r.uc.Read(p) }

func closeFD(int) {}

// Attach places descriptors in a byte stream written by [WriteFiles].
type Attach struct {
	At  int
	Fds []int
}

// WriteFiles is not supported on this platform.
func WriteFiles(c *net.UnixConn, b []byte, att []Attach) error {
	return errors.ErrUnsupported
}

// DupFD is not supported on this platform.
func DupFD(f *os.File) (int, error) { return -1, errors.ErrUnsupported }

// CloseFD closes a descriptor from DupFD.
func CloseFD(fd int) {}
