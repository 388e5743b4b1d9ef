//go:build linux

package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
)

// shmDir is where POSIX shared memory (shm_open) and the library's named
// SharedMemory live on Linux.
const shmDir = "/dev/shm"

// shmTag is what names of the library's segments contain, in some case.
const shmTag = "multiproc"

// listShm returns the paths in shmDir whose name contains shmTag in any case.
func listShm() (map[string]bool, error) {
	entries, err := os.ReadDir(shmDir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil // no tmpfs there: nothing can leak there
	}
	if err != nil {
		return nil, fmt.Errorf("testutil: listing %s: %w", shmDir, err)
	}
	names := make(map[string]bool)
	for _, e := range entries {
		if strings.Contains(strings.ToLower(e.Name()), shmTag) {
			names[shmDir+"/"+e.Name()] = true
		}
	}
	return names, nil
}

// newShm returns the entries of now that base lacks and that no other
// program is using.
//
// go test runs the test binaries of several packages at once, and /dev/shm is
// shared by all of them: a segment that another package's tests created
// during ours is new to our baseline but not our leak. A segment that a
// foreign process (see owner) has open or mapped is therefore left out; ours
// are reported even when open, since after the tests nothing of ours should
// hold one. What this cannot tell apart is a segment leaked by another test
// binary while ours ran, with no process left holding it: that one is
// reported here too, as well as by its own package.
func newShm(base, now map[string]bool, exe string) []string {
	var fresh []string
	for name := range now {
		if !base[name] {
			fresh = append(fresh, name)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	held := heldByForeign(fresh, exe)
	var leaked []string
	for _, name := range fresh {
		if !held[name] {
			leaked = append(leaked, name)
		}
	}
	slices.Sort(leaked)
	return leaked
}

// heldByForeign returns which of paths some foreign process has open (in
// /proc/PID/fd) or mapped (in /proc/PID/maps). Processes whose files cannot
// be read are passed over.
func heldByForeign(paths []string, exe string) map[string]bool {
	want := make(map[string]bool, len(paths))
	for _, p := range paths {
		want[p] = true
	}
	held := make(map[string]bool)
	procs, err := scanProcs()
	if err != nil {
		return held
	}
	self := os.Getpid()
	for _, p := range procs {
		if p.pid == self || p.ppid == self || owner(p.pid, exe) != foreign {
			continue
		}
		dir := "/proc/" + strconv.Itoa(p.pid)
		fdHolds(dir, want, held)
		mapHolds(dir, want, held)
		if len(held) == len(want) {
			break
		}
	}
	return held
}

// fdHolds adds to held the paths in want that the process at dir has open.
func fdHolds(dir string, want, held map[string]bool) {
	d, err := os.Open(dir + "/fd")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		if target, err := os.Readlink(dir + "/fd/" + n); err == nil && want[target] {
			held[target] = true
		}
	}
}

// mapHolds adds to held the paths in want that the process at dir has
// mapped: a segment may be mapped after its descriptor was closed.
func mapHolds(dir string, want, held map[string]bool) {
	f, err := os.Open(dir + "/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// The path is the last field and may itself contain spaces, so
		// it is everything from the path's start to the end of the line.
		line := sc.Text()
		i := strings.Index(line, " "+shmDir+"/")
		if i < 0 {
			continue
		}
		if p := line[i+1:]; want[p] {
			held[p] = true
		}
	}
}
