package isolate

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCPUGuardStaleSignal: a SIGXCPU raised between tasks but delivered
// after Begin armed the next task (late delivery on a loaded machine) is
// neither the task's crossing nor a reason to lift its limit. The old guard
// either blamed the new task or raised the soft limit to the hard one,
// leaving the task unlimited (seen as a CPUTime not enforced, 3 of 19 runs
// under load).
func TestCPUGuardStaleSignal(t *testing.T) {
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CPU, &orig); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_CPU, &orig)
	var fired atomic.Int32
	// An allowance far above what this test uses: no real crossing.
	g, err := NewCPUGuard(Spec{CPUTime: 1000 * time.Hour}, func() { fired.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.Begin()
	var armed unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_CPU, &armed)
	// Three sends into the 1-slot channel: the third waits until the
	// guard took the second, so the first two were handled.
	for range 3 {
		g.sig <- syscall.SIGXCPU
	}
	var now unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_CPU, &now)
	g.End()
	if n := fired.Load(); n != 0 {
		t.Errorf("a stale SIGXCPU was blamed on the running task (%d calls)", n)
	}
	if now.Cur != armed.Cur {
		t.Errorf("soft limit changed to %d while a task was armed with %d", now.Cur, armed.Cur)
	}
}
