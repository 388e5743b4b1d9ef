package testutil

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// cgroupParentEnv names a delegated v2 cgroup the tests make their groups
// under (internal/cgroup's real tests and Limits.CgroupParent read it): its
// groups are checked as well as those beside the process's own cgroups.
const cgroupParentEnv = "MULTIPROC_CGROUP_PARENT"

// cgroupParents are the directories in which multiproc makes the groups of
// a process running where this one runs: its own cgroup in every mounted
// hierarchy (v1 memory, cpu, pids and the rest, v2), and the delegated
// parent named by MULTIPROC_CGROUP_PARENT. It parses /proc/self/cgroup and
// /proc/self/mountinfo itself, because internal/cgroup's own tests use
// this package.
func cgroupParents() []string {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	dirs := ownDirs(string(self), string(mi))
	if d := os.Getenv(cgroupParentEnv); d != "" {
		dirs = append(dirs, d)
	}
	return dirs
}

// listCgroups returns every "multiproc-PID-START" directory under the
// cgroup parents.
func listCgroups() map[string]bool {
	found := map[string]bool{}
	for _, dir := range cgroupParents() {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if _, _, ok := parseCgroupName(e.Name()); e.IsDir() && ok {
				found[path.Join(dir, e.Name())] = true
			}
		}
	}
	return found
}

// leakedCgroups lists the cgroup directories left behind, in any hierarchy
// (internal/cgroup names them "multiproc-PID-START", beside the process's
// own cgroup): those of this process, which a pool removes as its workers
// are reaped (and the process's directory with the last one), and those
// that were not there at the baseline and whose maker no longer runs. The
// latter are a SIGKILLed descendant's groups (a helper program killed on
// purpose) that no later start swept: every start with cgroup limits must
// sweep every hierarchy. (A concurrent, unrelated test run killed during
// these tests would show up too; it goes away at the next limited start.)
func leakedCgroups(base map[string]bool) []string {
	self := os.Getpid()
	var found []string
	for dir := range listCgroups() {
		pid, start, _ := parseCgroupName(path.Base(dir))
		switch {
		case pid == self:
			found = append(found, dir)
		case base[dir]:
		default:
			if st, err := readStat(pid); err != nil || st.start != start {
				found = append(found, dir+" (made by process "+strconv.Itoa(pid)+", which no longer runs: not swept)")
			}
		}
	}
	slices.Sort(found)
	return found
}

// parseCgroupName parses "multiproc-PID-START".
func parseCgroupName(name string) (pid int, start uint64, ok bool) {
	rest, found := strings.CutPrefix(name, "multiproc-")
	if !found {
		return 0, 0, false
	}
	p, st, found := strings.Cut(rest, "-")
	if !found {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(p)
	start, err2 := strconv.ParseUint(st, 10, 64)
	return pid, start, err1 == nil && err2 == nil && pid > 0
}

// ownCgroups lists this process's own cgroup directories that still exist.
func ownCgroups() []string {
	prefix := fmt.Sprintf("multiproc-%d-", os.Getpid())
	var found []string
	for dir := range listCgroups() {
		if strings.HasPrefix(path.Base(dir), prefix) {
			found = append(found, dir)
		}
	}
	slices.Sort(found)
	return found
}

// ownDirs is the directory of this process's cgroup in each mounted
// hierarchy.
func ownDirs(self, mountinfo string) []string {
	v1 := map[string]string{} // controller -> cgroup path
	v2 := ""
	for _, line := range strings.Split(self, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			v1[c] = parts[2]
		}
	}
	var dirs []string
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 1 {
			continue
		}
		root, point := f[3], f[4]
		var cg string
		switch g[0] {
		case "cgroup2":
			cg = v2
		case "cgroup":
			if len(g) < 3 {
				continue
			}
			for _, o := range strings.Split(g[2], ",") {
				if p, ok := v1[o]; ok {
					cg = p
				}
			}
		}
		if cg == "" {
			continue
		}
		rel := path.Clean("/" + cg)
		if r := path.Clean(root); r != "/" {
			rel = strings.TrimPrefix(rel, r)
		}
		dirs = append(dirs, path.Join(point, rel))
	}
	return dirs
}
