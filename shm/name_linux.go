package shm

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

// segmentDir is where named segments live: POSIX shared memory's
// directory, a tmpfs, which shm_open uses too.
func segmentDir() string { return "/dev/shm" }

// procStart returns the start time of process pid, in clock ticks since
// boot (field 22 of /proc/PID/stat), and whether it exists.
func procStart(pid int) (start uint64, alive bool, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	// The command name (field 2) is in parentheses and may contain
	// spaces and parentheses itself: fields resume after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 20 {
		return 0, false, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(string(fields[19]), 10, 64) // field 22
	if err != nil {
		return 0, false, fmt.Errorf("unexpected /proc/%d/stat: %w", pid, err)
	}
	return start, true, nil
}
