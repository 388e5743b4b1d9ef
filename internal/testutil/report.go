package testutil

import (
	"fmt"
	"strings"
)

// report lists what one round of checks found. The zero report, with every
// field empty, means nothing leaked.
type report struct {
	Goroutines string   // goleak's description of the leaked goroutines, with stacks
	Children   []proc   // direct children still running or not waited for
	Orphans    []proc   // descendants no longer our children, still running
	FDs        []fd     // descriptors open now that were not in the baseline
	Shm        []string // /dev/shm paths created since the baseline
	Cgroups    []string // cgroup directories left behind: this process's, or a dead maker's not swept
	Errors     []string // checks that could not run, and why
}

// proc describes a leaked process.
type proc struct {
	PID     int
	PPID    int
	State   byte   // as in /proc/PID/stat: 'R', 'S', 'Z', ...
	Cmdline string // arguments joined by spaces, or "[comm]" when it has none (zombies)
}

// fd describes a leaked file descriptor.
type fd struct {
	Num    int
	Target string // link target in /proc/self/fd: a path, "pipe:[ino]", "anon_inode:[...]"
}

func (r *report) empty() bool {
	return r.Goroutines == "" && len(r.Children) == 0 && len(r.Orphans) == 0 &&
		len(r.FDs) == 0 && len(r.Shm) == 0 && len(r.Cgroups) == 0 && len(r.Errors) == 0
}

// String formats r for a human reading a failed test run: one section per
// check that failed, one line per leaked resource.
func (r *report) String() string {
	var b strings.Builder
	section := func(title string) { fmt.Fprintf(&b, "--- %s:\n", title) }
	if len(r.Errors) > 0 {
		section("checks that could not run")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "\t%s\n", e)
		}
	}
	if len(r.Children) > 0 {
		section("child processes still running or never waited for")
		for _, p := range r.Children {
			fmt.Fprintf(&b, "\t%s\n", p)
		}
	}
	if len(r.Orphans) > 0 {
		section("orphaned descendants (reparented, still running)")
		for _, p := range r.Orphans {
			fmt.Fprintf(&b, "\t%s\n", p)
		}
	}
	if len(r.FDs) > 0 {
		section("file descriptors opened during the tests and never closed")
		for _, f := range r.FDs {
			fmt.Fprintf(&b, "\tfd %d -> %s\n", f.Num, f.Target)
		}
	}
	if len(r.Cgroups) > 0 {
		section("cgroups left behind (multiproc-PID-START directories of this process, or of a dead one that no start swept)")
		for _, d := range r.Cgroups {
			fmt.Fprintf(&b, "\t%s\n", d)
		}
	}
	if len(r.Shm) > 0 {
		section("shared memory created during the tests and never unlinked")
		for _, name := range r.Shm {
			fmt.Fprintf(&b, "\t%s\n", name)
		}
	}
	if r.Goroutines != "" {
		section("goroutines")
		b.WriteString(r.Goroutines)
		b.WriteString("\n")
	}
	return b.String()
}

func (p proc) String() string {
	return fmt.Sprintf("pid %d (ppid %d) state %c (%s): %s", p.PID, p.PPID, p.State, stateName(p.State), p.Cmdline)
}

// stateName spells out the state letters of proc(5).
func stateName(s byte) string {
	switch s {
	case 'R':
		return "running"
	case 'S':
		return "sleeping"
	case 'D':
		return "disk sleep"
	case 'Z':
		return "zombie: exited, never waited for"
	case 'T':
		return "stopped"
	case 't':
		return "tracing stop"
	case 'X':
		return "dead"
	case 'I':
		return "idle"
	}
	return "unknown"
}
