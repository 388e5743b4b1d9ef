package multiproc

import (
	"math"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// affinityCPUs counts the CPUs in this process's affinity mask, or returns
// 0 if it cannot be read. runtime.NumCPU reads the mask once at start-up;
// reading it again sees a taskset applied since.
func affinityCPUs() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0
	}
	return set.Count()
}

// quotaCPUs returns the CPU limit of this process's cgroups, or 0 if there
// is none or it cannot be read.
func quotaCPUs() int { return cgroupCPUs(os.ReadFile) }

// cgroupCPUs finds this process's cgroups through /proc/self/cgroup and
// /proc/self/mountinfo and returns the tightest CPU quota along them and
// their ancestors, rounded up to whole CPUs; 0 means unlimited or unknown.
// readFile is os.ReadFile except in tests.
//
// The mount table matters: inside a container without a cgroup namespace,
// /proc/self/cgroup names the cgroup as the host sees it
// ("/docker/<id>") while the container's /sys/fs/cgroup is mounted from that
// very directory, so the path must be taken relative to the mount's root.
// On hybrid hosts the v2 hierarchy is mounted at /sys/fs/cgroup/unified and
// the v1 cpu controller at /sys/fs/cgroup/cpu (or cpu,cpuacct); both are read
// and the smaller limit wins.
func cgroupCPUs(readFile func(string) ([]byte, error)) int {
	self, err := readFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	v2Path, v1Path := parseProcCgroup(string(self))
	v2Mount := cgroupMount{Point: "/sys/fs/cgroup", Root: "/"}
	var v1Mount cgroupMount
	if mi, err := readFile("/proc/self/mountinfo"); err == nil {
		m2, m1 := parseMountinfo(string(mi))
		if m2.Point != "" {
			v2Mount = m2
		}
		v1Mount = m1
	}
	limit := 0
	tighten := func(n int) {
		if n > 0 && (limit == 0 || n < limit) {
			limit = n
		}
	}
	if v2Path != "" {
		walkCgroup(v2Mount, v2Path, func(dir string) {
			if b, err := readFile(dir + "/cpu.max"); err == nil {
				if q, p, ok := parseCPUMax(string(b)); ok {
					tighten(quotaToCPUs(q, p))
				}
			}
		})
	}
	if v1Path != "" && v1Mount.Point != "" {
		walkCgroup(v1Mount, v1Path, func(dir string) {
			q, err1 := readFile(dir + "/cpu.cfs_quota_us")
			p, err2 := readFile(dir + "/cpu.cfs_period_us")
			if err1 == nil && err2 == nil {
				if q, p, ok := parseCFS(string(q), string(p)); ok {
					tighten(quotaToCPUs(q, p))
				}
			}
		})
	}
	return limit
}

// cgroupMount is where a cgroup hierarchy is mounted (Point) and which of
// its directories the mount shows there (Root, "/" unless the mount is a
// bind mount of a sub-cgroup, as in containers).
type cgroupMount struct {
	Point string
	Root  string
}

// walkCgroup calls fn with the directory of cgroup path under m and each of
// its ancestors up to the mount point, innermost first: a quota on any
// ancestor limits the process too. A path outside the mount's root (the
// cgroup is not visible in this mount namespace) walks the mount point only.
func walkCgroup(m cgroupMount, cgPath string, fn func(dir string)) {
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
	point := path.Clean(m.Point)
	for dir := path.Join(point, rel); ; dir = path.Dir(dir) {
		fn(dir)
		if dir == point || len(dir) <= len(point) {
			return
		}
	}
}

// parseProcCgroup parses /proc/self/cgroup (lines "id:controllers:path")
// and returns the path of the v2 cgroup ("0::path") and that of the v1
// hierarchy holding the cpu controller; either is empty if absent.
func parseProcCgroup(data string) (v2, v1cpu string) {
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
			if c == "cpu" {
				v1cpu = parts[2]
			}
		}
	}
	return v2, v1cpu
}

// parseMountinfo finds the cgroup2 mount and the cgroup v1 mount holding
// the cpu controller in /proc/self/mountinfo, whose lines read
//
//	36 35 98:0 /root /mnt/point rw,noatime master:1 - cgroup cgroup rw,cpu,cpuacct
//
// (mount id, parent id, device, root, mount point, options, optional
// fields, a "-", file system type, source, super options).
func parseMountinfo(data string) (v2, v1cpu cgroupMount) {
	for line := range strings.SplitSeq(data, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		m := cgroupMount{Root: unescapeMount(f[3]), Point: unescapeMount(f[4])}
		switch g[0] {
		case "cgroup2":
			if v2.Point == "" {
				v2 = m
			}
		case "cgroup":
			if len(g) < 3 || v1cpu.Point != "" {
				continue
			}
			for o := range strings.SplitSeq(g[2], ",") {
				if o == "cpu" {
					v1cpu = m
				}
			}
		}
	}
	return v2, v1cpu
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

// parseCPUMax parses a cgroup v2 cpu.max file: "$MAX $PERIOD", where $MAX
// is "max" when there is no limit. ok is false for no limit or bad input.
func parseCPUMax(data string) (quota, period int64, ok bool) {
	f := strings.Fields(data)
	if len(f) == 0 || len(f) > 2 || f[0] == "max" {
		return 0, 0, false
	}
	quota, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	period = 100000 // the kernel's default, used when only $MAX is given
	if len(f) == 2 {
		if period, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return quota, period, quota > 0 && period > 0
}

// parseCFS parses cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us; a
// quota of -1 means no limit, reported as ok == false.
func parseCFS(quotaData, periodData string) (quota, period int64, ok bool) {
	quota, err1 := strconv.ParseInt(strings.TrimSpace(quotaData), 10, 64)
	period, err2 := strconv.ParseInt(strings.TrimSpace(periodData), 10, 64)
	if err1 != nil || err2 != nil || quota <= 0 || period <= 0 {
		return 0, 0, false
	}
	return quota, period, true
}

// quotaToCPUs rounds a quota up to whole CPUs: 150000/100000 allows one
// and a half CPUs of time per period, which two processes can use.
func quotaToCPUs(quota, period int64) int {
	if quota <= 0 || period <= 0 {
		return 0
	}
	n := quota / period
	if quota%period != 0 {
		n++
	}
	return int(min(n, math.MaxInt32))
}
