//go:build unix

package isolate

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Capture points this process's fds 1 and 2 at a file for the duration of
// each task ([Capture.Begin] to [Capture.End]), so that everything the
// process writes there while the task runs (fmt.Print, log, os.Stderr, C
// code) is kept: the task's output. Between tasks, and for output written
// after End by goroutines that outlived their task, fds 1 and 2 are the
// process's own again. Begin and End are called by the goroutine that runs
// tasks, in pairs.
type Capture struct {
	f           *os.File
	max         int
	out, errOut int // the process's own fds 1 and 2, saved
}

// NewCapture captures into f (owned by the parent, which reads it if the
// process dies mid-task), keeping the last max bytes of each task's output.
func NewCapture(f *os.File, max int) (*Capture, error) {
	out, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, fmt.Errorf("multiproc: output capture: saving stdout: %w", err)
	}
	errOut, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		unix.Close(out)
		return nil, fmt.Errorf("multiproc: output capture: saving stderr: %w", err)
	}
	return &Capture{f: f, max: max, out: out, errOut: errOut}, nil
}

// Begin empties the capture file and points fds 1 and 2 at it.
func (c *Capture) Begin() {
	c.f.Truncate(0)
	c.f.Seek(0, io.SeekStart)
	fd := int(c.f.Fd())
	redirect(fd, 1)
	redirect(fd, 2)
}

// End points fds 1 and 2 back at the process's own. If the task failed it
// returns the last max bytes of its output; if it succeeded, the output is
// written to the process's stdout, in one piece, and End returns "".
func (c *Capture) End(failed bool) string {
	redirect(c.out, 1)
	redirect(c.errOut, 2)
	size, err := c.f.Seek(0, io.SeekCurrent)
	if err != nil || size == 0 {
		return ""
	}
	// The file's pages are charged to this process's memory cgroup (a
	// memfd's pages count for whoever writes them): free them as soon as
	// the task's output has been used, not at the next task's Begin.
	defer c.f.Truncate(0)
	if failed {
		return Tail(c.f, size, c.max)
	}
	io.Copy(os.Stdout, io.NewSectionReader(c.f, 0, size))
	return ""
}
