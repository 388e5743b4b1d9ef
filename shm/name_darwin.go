package shm

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// segmentDir is where named segments live on macOS, which has no /dev/shm
// (its shm_open namespace is not a directory): the per-user temporary
// directory.
func segmentDir() string { return os.TempDir() }

// procStart returns the start time of process pid, in microseconds since
// the epoch, and whether it exists.
func procStart(pid int) (start uint64, alive bool, err error) {
	if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
		return 0, false, nil
	}
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return 0, false, err
	}
	if kp.Proc.P_pid != int32(pid) {
		return 0, false, nil // gone between the two calls
	}
	t := kp.Proc.P_starttime
	return uint64(t.Sec)*1e6 + uint64(t.Usec), true, nil
}
