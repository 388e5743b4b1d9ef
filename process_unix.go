//go:build unix

package multiproc

import (
	"os"
	"syscall"
)

var termSignal os.Signal = syscall.SIGTERM

// exitStatus converts a reaped child's status to Python's exit code
// convention: the status, or -N when killed by signal N.
func exitStatus(ps *os.ProcessState) (code int, sig syscall.Signal) {
	if ps == nil {
		return -1, 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal()), ws.Signal()
	}
	return ps.ExitCode(), 0
}
