package multiproc_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
)

// Tasks that depend on the Go scheduler inside a worker (GOMAXPROCS=1 by
// default), and on the kernel where the scheduler cannot help.

var (
	// schedYield starts a goroutine and spins until it has run: with one
	// P, only preemption of the spinning task lets it run.
	schedYield = multiproc.Register("sched.yield", multiproc.Plain(func(struct{}) int {
		var ran atomic.Bool
		go ran.Store(true)
		n := 0
		for !ran.Load() {
			n++
		}
		return n & 1
	}))
)

// waitMonitorAsleep waits until no thread of process pid is in nanosleep,
// the system call the Go runtime's system monitor makes between its
// checks: it has gone into its deep sleep (a futex wait of up to a
// minute), which it does once it sees every P idle. Only linux/amd64's
// system call number is known here.
func waitMonitorAsleep(t *testing.T, ctx context.Context, pid int) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("the nanosleep system call number is known here for amd64 only")
	}
	const sysNanosleep = "35 "
	quiet := 0
	for quiet < 3 { // three clean looks in a row, a millisecond apart
		if ctx.Err() != nil {
			t.Fatalf("worker %d's system monitor never went into its deep sleep", pid)
		}
		dir := filepath.Join("/proc", itoa(pid), "task")
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		clean := true
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, e.Name(), "syscall"))
			if errors.Is(err, fs.ErrPermission) {
				t.Skipf("cannot read %s (ptrace policy): %v", dir, err)
			}
			if err != nil {
				continue // a thread that ended
			}
			if s := string(b); strings.HasPrefix(s, sysNanosleep) || strings.HasPrefix(s, "running") {
				clean = false
				break
			}
		}
		if clean {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(time.Millisecond) // a polling interval, not a synchronisation
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestWorkerPreemptsAfterIdle: a task that arrives at an idle worker is
// preempted like any goroutine, so a goroutine it starts runs while it
// spins. The worker used to read tasks with raw system calls only, which
// never wake the runtime's system monitor from the deep sleep it enters
// while the worker is idle; the monitor is what preempts a long runner,
// so a spinning task kept the only P for up to a minute (and the CPU
// guard's goroutine with it: TestIsolationCPULimit hung in 2 runs of 10).
func TestWorkerPreemptsAfterIdle(t *testing.T) {
	p := newPool(t, 1)
	ctx := ctxT(t)
	pid, err := multiproc.Apply(ctx, p, isoPid, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		waitMonitorAsleep(t, ctx, pid)
		tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := multiproc.Apply(tctx, p, schedYield, struct{}{})
		cancel()
		if err != nil {
			t.Fatalf("a spinning task's goroutine never ran (no preemption in the worker): %v", err)
		}
	}
}

// TestIsolationCPULimitNoPreemption: the CPU limit ends a task that cannot
// be preempted at all (asynchronous preemption off, a loop without calls,
// one P), so no goroutine of its worker can run: the kernel does it.
func TestIsolationCPULimitNoPreemption(t *testing.T) {
	t.Setenv("GODEBUG", "asyncpreemptoff=1") // the workers inherit it
	p := newPool(t, 1, multiproc.WorkerLimits(multiproc.Limits{CPUTime: time.Second}))
	ctx, cancel := context.WithTimeout(ctxT(t), 30*time.Second)
	defer cancel()
	_, err := multiproc.Apply(ctx, p, isoSpin, struct{}{})
	ee := deathOf(t, err, multiproc.ErrCPULimit)
	if !strings.Contains(ee.Reason, "1s of CPU time") {
		t.Errorf("reason %q does not name the task's allowance", ee.Reason)
	}
	mustServe(t, p)
}

// TestIsolationCPULimitAtTotal: a task whose allowance is capped by the
// worker's lifetime limit (CPUTime = CPUTimeTotal) dies of the kernel's
// SIGKILL at the hard limit, before the worker could publish its CPU use;
// the parent tells it from an outside kill by the CPU time the reap
// reports (it read "killed by signal 9 from outside": ErrKilled).
func TestIsolationCPULimitAtTotal(t *testing.T) {
	p := newPool(t, 1, multiproc.WorkerLimits(multiproc.Limits{CPUTime: 2 * time.Second, CPUTimeTotal: 2 * time.Second}))
	ctx, cancel := context.WithTimeout(ctxT(t), 40*time.Second)
	defer cancel()
	_, err := multiproc.Apply(ctx, p, isoSpin, struct{}{})
	ee := deathOf(t, err, multiproc.ErrCPULimit)
	if !strings.Contains(ee.Reason, "lifetime CPU limit of 2s") {
		t.Errorf("reason %q does not name the lifetime limit", ee.Reason)
	}
	mustServe(t, p)
}
