package multiproc

import "runtime"

// CPUCount returns the number of CPUs this process may actually use: the
// smallest of the CPUs the machine has, the CPUs its affinity mask allows
// (sched_getaffinity, what taskset and cpusets restrict) and, on Linux, the
// CPU quota of its cgroup (v2 cpu.max or v1 cpu.cfs_quota_us over
// cpu.cfs_period_us, rounded up, the tightest along the cgroup's ancestors).
// It is never less than 1. [NewPool] and [NewExecutor] size themselves with
// it when given 0.
//
// It differs on purpose from Python's os.cpu_count, which reports the
// machine's CPUs and ignores quotas: a container limited to 2 CPUs on a
// 64-CPU host gets 64 workers from a default CPython Pool, and they spend
// their time being throttled. Go's runtime.NumCPU honours affinity but not
// quotas either.
//
// CPUCount reads the kernel's current settings on every call (a few small
// files on Linux), so a changed quota is seen; it is safe for concurrent use.
func CPUCount() int {
	n := runtime.NumCPU()
	if a := affinityCPUs(); a > 0 && a < n {
		n = a
	}
	if q := quotaCPUs(); q > 0 && q < n {
		n = q
	}
	return max(n, 1)
}
