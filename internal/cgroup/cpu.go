package cgroup

import (
	"math"
	"strconv"
	"strings"
)

// CPULimit finds this process's cgroups through /proc/self/cgroup and
// /proc/self/mountinfo and returns the tightest CPU quota along them and
// their ancestors, rounded up to whole CPUs; 0 means unlimited or unknown.
// readFile is os.ReadFile except in tests.
//
// The mount table matters: inside a container without a cgroup namespace,
// /proc/self/cgroup names the cgroup as the host sees it ("/docker/<id>")
// while the container's /sys/fs/cgroup is mounted from that very
// directory, so the path must be taken relative to the mount's root. On
// hybrid hosts the v2 hierarchy is mounted at /sys/fs/cgroup/unified and
// the v1 cpu controller at /sys/fs/cgroup/cpu (or cpu,cpuacct); both are
// read and the smaller limit wins.
func CPULimit(readFile func(string) ([]byte, error)) int {
	self, err := readFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	v2Path, v1Paths := parseProcCgroup(string(self))
	v2Mount := Mount{Point: "/sys/fs/cgroup", Root: "/"}
	var v1Mount Mount
	if mi, err := readFile("/proc/self/mountinfo"); err == nil {
		m2, m1 := parseMountinfo(string(mi))
		if m2.Point != "" {
			v2Mount = m2
		}
		for _, m := range m1 {
			if m.has("cpu") {
				v1Mount = m
			}
		}
	}
	limit := 0
	tighten := func(n int) {
		if n > 0 && (limit == 0 || n < limit) {
			limit = n
		}
	}
	if v2Path != "" {
		v2Mount.walk(v2Path, func(dir string) {
			if b, err := readFile(dir + "/cpu.max"); err == nil {
				if q, p, ok := parseCPUMax(string(b)); ok {
					tighten(quotaToCPUs(q, p))
				}
			}
		})
	}
	if v1Path := v1Paths["cpu"]; v1Path != "" && v1Mount.Point != "" {
		v1Mount.walk(v1Path, func(dir string) {
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
