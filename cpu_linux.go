package multiproc

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/multiproc-go/multiproc/internal/cgroup"
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
// is none or it cannot be read (internal/cgroup parses them).
func quotaCPUs() int { return cgroup.CPULimit(os.ReadFile) }
