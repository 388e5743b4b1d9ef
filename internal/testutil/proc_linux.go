//go:build linux

package testutil

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat is the part of /proc/PID/stat the checks use.
type procStat struct {
	pid   int
	ppid  int
	state byte
	comm  string
	// start is the process's start time in clock ticks after boot. Together
	// with pid it names a process uniquely: a pid that was reused during the
	// tests has a different start time and so is not mistaken for a process
	// of the baseline.
	start uint64
}

// procKey identifies a process across pid reuse.
type procKey struct {
	pid   int
	start uint64
}

func (s procStat) key() procKey { return procKey{s.pid, s.start} }

// readStat parses /proc/PID/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name is in parentheses and may itself contain spaces and
	// parentheses ("(sd-pam)", "(a) b)"), so the fields after it start at
	// the last ')'.
	lp, rp := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if lp < 0 || rp < lp {
		return procStat{}, fmt.Errorf("testutil: malformed /proc/%d/stat", pid)
	}
	// fields[0] is field 3 of proc(5), state; ppid is field 4 and
	// starttime field 22.
	fields := strings.Fields(string(b[rp+1:]))
	if len(fields) < 20 || len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("testutil: malformed /proc/%d/stat", pid)
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return procStat{}, fmt.Errorf("testutil: /proc/%d/stat: ppid: %w", pid, err)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("testutil: /proc/%d/stat: starttime: %w", pid, err)
	}
	return procStat{pid: pid, ppid: ppid, state: fields[0][0], comm: string(b[lp+1 : rp]), start: start}, nil
}

// scanProcs reads the stat of every process in /proc. Processes that exit
// while it reads are left out: a process that is gone cannot leak.
func scanProcs() ([]procStat, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("testutil: listing processes: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("testutil: listing processes: %w", err)
	}
	procs := make([]procStat, 0, len(names))
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue // not a process: /proc/self, /proc/meminfo, ...
		}
		if s, err := readStat(pid); err == nil {
			procs = append(procs, s)
		}
	}
	return procs, nil
}

// Children returns the pids of the direct children of process pid, zombies
// included, read from the ppid field of every /proc/PID/stat. The answer is
// a snapshot: children may start or be reaped while it is read.
func Children(pid int) ([]int, error) {
	procs, err := scanProcs()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, p := range procs {
		if p.ppid == pid {
			pids = append(pids, p.pid)
		}
	}
	return pids, nil
}

// ProcessState returns the state letter of process pid from /proc/PID/stat
// ('R' running, 'S' sleeping, 'D' disk sleep, 'Z' zombie, 'T' stopped, ...),
// and ok false if there is no such process, which is the case once a child
// has been waited for.
func ProcessState(pid int) (state byte, ok bool) {
	s, err := readStat(pid)
	if err != nil {
		return 0, false
	}
	return s.state, true
}

// ProcessAlive reports whether process pid exists and is neither a zombie
// nor dead: a child that was killed but not yet waited for is not alive.
func ProcessAlive(pid int) bool {
	s, ok := ProcessState(pid)
	return ok && s != 'Z' && s != 'X'
}

// cmdline returns the arguments of process p joined by spaces, or its
// command name in brackets when it has none, as for zombies and kernel
// threads whose memory is gone.
func cmdline(p procStat) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/cmdline")
	b = bytes.TrimRight(b, "\x00")
	if err != nil || len(b) == 0 {
		return "[" + p.comm + "]"
	}
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}

func describe(p procStat) proc {
	return proc{PID: p.pid, PPID: p.ppid, State: p.state, Cmdline: cmdline(p)}
}

// setMarker adds this process to markerEnv so that the processes it starts
// from now on inherit it. Children started with an explicit environment that
// drops it are still found by their executable, if it is ours.
func setMarker() error {
	self := strconv.Itoa(os.Getpid())
	v := os.Getenv(markerEnv)
	for p := range strings.SplitSeq(v, ",") {
		if p == self {
			return nil
		}
	}
	if v != "" {
		v += ","
	}
	if err := os.Setenv(markerEnv, v+self); err != nil {
		return fmt.Errorf("testutil: setting %s: %w", markerEnv, err)
	}
	return nil
}

// ownership says whether a process descends from this one.
type ownership int

const (
	unknown ownership = iota // unreadable: a zombie, a kernel thread, another user's
	ours
	foreign
)

// owner decides whether process pid descends from this process after it may
// have been reparented, so that its ppid no longer says. A process whose
// environment carries markerEnv is ours if the list names us and foreign
// otherwise (another test binary's, even one running this same executable).
// Without the variable, a process running exe, this process's executable, is
// taken to be ours: the library re-executes its own binary, and no other
// program runs a test binary while its tests run.
func owner(pid int, exe string) ownership {
	dir := "/proc/" + strconv.Itoa(pid)
	env, err := os.ReadFile(dir + "/environ")
	if err != nil {
		return unknown // another user's process
	}
	if roots, found := lookupEnv(env, markerEnv); found {
		self := strconv.Itoa(os.Getpid())
		for p := range strings.SplitSeq(roots, ",") {
			if p == self {
				return ours
			}
		}
		return foreign
	}
	target, err := os.Readlink(dir + "/exe")
	if err != nil {
		// Zombies and kernel threads have no executable (and an empty
		// environment), so nothing tells whose they are.
		return unknown
	}
	if target == exe {
		return ours
	}
	return foreign
}

// lookupEnv finds key in the NUL-separated environment block of
// /proc/PID/environ.
func lookupEnv(env []byte, key string) (string, bool) {
	prefix := []byte(key + "=")
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		if v, found := bytes.CutPrefix(kv, prefix); found {
			return string(v), true
		}
	}
	return "", false
}

// selfExe returns the link target of /proc/self/exe, the executable this
// process runs, to compare with other processes'.
func selfExe() (string, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return "", fmt.Errorf("testutil: reading own executable: %w", err)
	}
	return exe, nil
}
