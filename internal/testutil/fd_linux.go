//go:build linux

package testutil

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// OpenFDs returns the open file descriptors of this process, each mapped to
// its link target in /proc/self/fd: a path, "pipe:[inode]", "socket:[inode]",
// "anon_inode:[eventpoll]" and so on. The descriptor OpenFDs itself opens to
// read the directory is left out. Descriptors opened or closed concurrently
// by other goroutines may or may not appear.
func OpenFDs() (map[int]string, error) {
	// Opening any file also initialises the runtime's netpoller, if nothing
	// has yet: its epoll and eventfd descriptors are in every listing, the
	// baseline's included. See newFDs.
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("testutil: listing file descriptors: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("testutil: listing file descriptors: %w", err)
	}
	// The directory's own descriptor is in the listing; it is closed on
	// return, so it is no one's leak.
	self := int(d.Fd())
	fds := make(map[int]string, len(names))
	for _, name := range names {
		n, err := strconv.Atoi(name)
		if err != nil || n == self {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + name)
		if err != nil {
			continue // closed since the listing: not open, so not leaked
		}
		fds[n] = target
	}
	return fds, nil
}

// Link targets of the two descriptors the Go runtime's netpoller opens.
const (
	epollTarget   = "anon_inode:[eventpoll]"
	eventfdTarget = "anon_inode:[eventfd]"
)

// newFDs returns the descriptors in now that the baseline base did not have
// with the same target (a number reused for another file is a new
// descriptor), minus those that o ignores and the runtime's own.
//
// The runtime's netpoller opens one epoll descriptor and, since Go 1.21, one
// eventfd to interrupt epoll_wait (netpollBreak); it opens them lazily, on
// the first pollable file, and keeps them for the life of the process. The
// baseline is taken with os.Open, which initialises the netpoller first, so
// they are normally in it; should a runtime open them later, one new
// descriptor of each kind is tolerated, but only when the baseline has none
// of that kind: more than one, or one more than the baseline had, is a user's
// epoll or eventfd and is reported. Go before 1.21 used a pipe instead of
// the eventfd; pipes are not tolerated at all, because a forgotten pipe to a
// worker's stdin or stdout is the likeliest leak this check exists to catch,
// and go.mod requires a newer Go anyway.
//
// pidfds ("anon_inode:[pidfd]") are not tolerated either: the runtime keeps
// one per *os.Process only until Wait or Release (its probe for pidfd
// support closes its own at once), so one still open is a process that was
// never waited for or released. Use IgnoreFD where that is intended.
//
// What this check cannot see: a descriptor whose *os.File (or *os.Process)
// became unreachable is closed by a finalizer when the GC runs, which it may
// well do while check polls. Such a leak then goes unreported here; the
// process it belonged to, if any, is still reported by the process checks.
func newFDs(base, now map[int]string, o *options) []fd {
	runtimeFD := map[string]bool{epollTarget: true, eventfdTarget: true}
	for _, target := range base {
		if runtimeFD[target] {
			runtimeFD[target] = false // the runtime's is in the baseline
		}
	}
	nums := make([]int, 0, len(now))
	for n := range now {
		nums = append(nums, n)
	}
	// In increasing order, so that the report reads in order and, when two
	// descriptors of a runtime kind are new, the tolerated one is the lower,
	// which the runtime is likelier to have got first.
	slices.Sort(nums)
	var leaked []fd
	for _, n := range nums {
		target := now[n]
		if old, ok := base[n]; ok && old == target {
			continue
		}
		if ignoredFD(target, o) {
			continue
		}
		if runtimeFD[target] {
			runtimeFD[target] = false
			continue
		}
		leaked = append(leaked, fd{Num: n, Target: target})
	}
	return leaked
}

func ignoredFD(target string, o *options) bool {
	for _, p := range o.fdPrefixes {
		if strings.HasPrefix(target, p) {
			return true
		}
	}
	return false
}
