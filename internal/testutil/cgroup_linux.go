package testutil

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// ownCgroups lists the cgroup directories this process made (internal/
// cgroup names them "multiproc-PID-START", next to the process's own cgroup
// in every hierarchy) that still exist: a pool removes its workers' groups
// as they are reaped, and the process's directory with the last one. It
// parses /proc/self/cgroup and /proc/self/mountinfo itself, because
// internal/cgroup's own tests use this package.
func ownCgroups() []string {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	prefix := fmt.Sprintf("multiproc-%d-", os.Getpid())
	seen := map[string]bool{}
	var found []string
	for _, dir := range ownDirs(string(self), string(mi)) {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
				found = append(found, path.Join(dir, e.Name()))
			}
		}
	}
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
