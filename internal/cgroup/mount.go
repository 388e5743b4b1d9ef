package cgroup

import (
	"path"
	"strconv"
	"strings"
)

// Mount is where a cgroup hierarchy is mounted (Point) and which of its
// directories the mount shows there (Root, "/" unless the mount is a bind
// mount of a sub-cgroup, as in containers). Controllers lists a v1
// hierarchy's controllers; it is empty for v2.
type Mount struct {
	Point       string
	Root        string
	Controllers []string
}

// has reports whether a v1 mount carries controller c.
func (m Mount) has(c string) bool {
	for _, x := range m.Controllers {
		if x == c {
			return true
		}
	}
	return false
}

// dir is the directory of cgroup path cgPath under m: the path is taken
// relative to the mount's root; a path outside it (the cgroup is not
// visible in this mount namespace) is the mount point itself.
func (m Mount) dir(cgPath string) string {
	rel := path.Clean("/" + cgPath)
	root := path.Clean("/" + m.Root)
	switch {
	case root == "/":
	case rel == root:
		rel = "/"
	case strings.HasPrefix(rel, root+"/"):
		rel = rel[len(root):]
	default:
		rel = "/"
	}
	return path.Join(path.Clean(m.Point), rel)
}

// walk calls fn with the directory of cgroup path under m and each of its
// ancestors up to the mount point, innermost first: a quota on any
// ancestor limits the process too.
func (m Mount) walk(cgPath string, fn func(dir string)) {
	point := path.Clean(m.Point)
	for dir := m.dir(cgPath); ; dir = path.Dir(dir) {
		fn(dir)
		if dir == point || len(dir) <= len(point) {
			return
		}
	}
}

// parseProcCgroup parses /proc/self/cgroup (lines "id:controllers:path")
// and returns the path of the v2 cgroup ("0::path", empty if absent) and,
// for each v1 controller, the path of the cgroup holding it.
func parseProcCgroup(data string) (v2 string, v1 map[string]string) {
	v1 = map[string]string{}
	for line := range strings.SplitSeq(data, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c != "" {
				v1[c] = parts[2]
			}
		}
	}
	return v2, v1
}

// parseMountinfo finds the first cgroup2 mount and the cgroup v1 mounts in
// /proc/self/mountinfo, whose lines read
//
//	36 35 98:0 /root /mnt/point rw,noatime master:1 - cgroup cgroup rw,cpu,cpuacct
//
// (mount id, parent id, device, root, mount point, options, optional
// fields, a "-", file system type, source, super options). Of several v1
// mounts of one controller the first wins.
func parseMountinfo(data string) (v2 Mount, v1 []Mount) {
	seen := map[string]bool{}
	for line := range strings.SplitSeq(data, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		m := Mount{Root: unescapeMount(f[3]), Point: unescapeMount(f[4])}
		switch g[0] {
		case "cgroup2":
			if v2.Point == "" {
				v2 = m
			}
		case "cgroup":
			if len(g) < 3 {
				continue
			}
			for o := range strings.SplitSeq(g[2], ",") {
				if knownV1[o] && !seen[o] {
					seen[o] = true
					m.Controllers = append(m.Controllers, o)
				}
			}
			if len(m.Controllers) > 0 {
				v1 = append(v1, m)
			}
		}
	}
	return v2, v1
}

// knownV1 are the v1 controllers a mount's super options may name; other
// options (rw, noprefix, name=systemd) are not controllers.
var knownV1 = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "pids": true,
	"blkio": true, "devices": true, "freezer": true, "net_cls": true, "net_prio": true,
	"perf_event": true, "hugetlb": true, "rdma": true, "misc": true,
}

// unescapeMount undoes the octal escapes (\040 for a space) the kernel
// writes in mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseKeyed returns the value of key in a flat keyed file such as
// memory.events or memory.oom_control ("key value" per line).
func parseKeyed(data, key string) (uint64, bool) {
	for line := range strings.SplitSeq(data, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
