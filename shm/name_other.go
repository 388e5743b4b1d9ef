//go:build unix && !linux && !darwin

package shm

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// segmentDir is where named segments live on systems without /dev/shm.
func segmentDir() string { return os.TempDir() }

// procStart reports whether process pid exists; its start time is unknown
// here (0), so a generated name is kept as long as its pid is in use.
func procStart(pid int) (start uint64, alive bool, err error) {
	if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
		return 0, false, nil
	}
	return 0, true, nil
}
