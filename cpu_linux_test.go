package multiproc

import (
	"runtime"
	"testing"
)

// TestCPUCountBounds checks the real machine: at least one CPU, never more
// than the runtime sees, never more than the affinity mask or the quota.
func TestCPUCountBounds(t *testing.T) {
	n := CPUCount()
	if n < 1 || n > runtime.NumCPU() {
		t.Fatalf("CPUCount() = %d, want between 1 and runtime.NumCPU() = %d", n, runtime.NumCPU())
	}
	if a := affinityCPUs(); a > 0 && n > a {
		t.Errorf("CPUCount() = %d exceeds the affinity mask's %d CPUs", n, a)
	}
	if q := quotaCPUs(); q > 0 && n > q {
		t.Errorf("CPUCount() = %d exceeds the cgroup quota's %d CPUs", n, q)
	}
}
