package shm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// generatedPrefix starts every generated name. It contains "multiproc", as
// the test leak checker expects of the library's segments.
const generatedPrefix = "multiproc-"

func checkName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("shm: invalid segment name %q", name)
	case len(name) > 255:
		return fmt.Errorf("shm: segment name of %d bytes: at most 255", len(name))
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("shm: invalid segment name %q: it must not contain '/' or NUL", name)
	}
	return nil
}

// self is this process's pid and start time, as generated names carry them.
var self = sync.OnceValues(func() (string, error) {
	start, alive, err := procStart(os.Getpid())
	if err != nil || !alive {
		return "", fmt.Errorf("shm: reading this process's start time: %w", err)
	}
	return fmt.Sprintf("%s%d-%d-", generatedPrefix, os.Getpid(), start), nil
})

func generateName() (string, error) {
	prefix, err := self()
	if err != nil {
		return "", err
	}
	var r [8]byte
	rand.Read(r[:]) // never fails (crypto/rand's documented contract)
	return prefix + hex.EncodeToString(r[:]), nil
}

// parseGenerated reports whether name has the form of a generated name,
// and returns the pid and start time it records.
func parseGenerated(name string) (pid int, start uint64, ok bool) {
	rest, ok := strings.CutPrefix(name, generatedPrefix)
	if !ok {
		return 0, 0, false
	}
	parts := strings.Split(rest, "-")
	if len(parts) != 3 || len(parts[2]) != 16 {
		return 0, 0, false
	}
	pid, err := strconv.Atoi(parts[0])
	if err != nil || pid <= 0 {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if _, err := hex.DecodeString(parts[2]); err != nil {
		return 0, 0, false
	}
	return pid, start, true
}

// Sweep removes the named segments whose names were generated
// ([GeneratedName]) by processes that no longer exist, and returns the names
// it removed. A segment is kept while a process with the recorded pid and
// start time exists (a dead creator not yet reaped by its parent still
// exists); names chosen by users are never touched. Processes that have a
// swept segment mapped keep using it: only the name goes.
//
// Sweep runs by itself at the first named [Create] of each process; call it
// to clean up at other times (at program start, say). It is safe for
// concurrent use, also by several processes at once. Segments of other
// users that this process may not remove are passed over. On Linux, pids of
// another pid namespace sharing /dev/shm look dead: containers with a common
// /dev/shm should not mix generated names.
func Sweep() (removed []string, err error) {
	dir := segmentDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("shm: sweeping %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		pid, start, ok := parseGenerated(e.Name())
		if !ok {
			continue
		}
		cur, alive, err := procStart(pid)
		if err != nil {
			continue // cannot tell: keep it
		}
		if alive && (cur == start || cur == 0) {
			continue
		}
		switch err := os.Remove(filepath.Join(dir, e.Name())); {
		case err == nil:
			removed = append(removed, e.Name())
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
			// Another sweeper was first, or it is not ours to remove.
		default:
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("shm: sweeping %s: %w", dir, err)
	}
	return removed, nil
}
