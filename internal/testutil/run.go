package testutil

import (
	"fmt"
	"io"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Run runs the tests of m and exits the process: with m.Run's exit code, or
// with 1 if the tests passed but left something behind. It never returns.
//
// Before the tests it records a baseline: the goroutines, open file
// descriptors, /dev/shm entries whose name contains "multiproc" (in any
// case), and processes that already exist. After a passing run it polls,
// until every check passes or the deadline expires, for
//
//   - goroutines not in the baseline, other than the testing package's own;
//   - child processes of this process, running or zombie (not waited for);
//   - orphans: processes not in the baseline that descend from this process
//     (they carry its pid in MULTIPROC_TESTUTIL_ROOT) or, when they have no
//     such variable, run this same executable;
//   - file descriptors not in the baseline;
//   - new /dev/shm entries with "multiproc" in their name;
//   - cgroups left behind ("multiproc-PID-START" directories beside its
//     own cgroup in every hierarchy, v1 and v2, and in
//     MULTIPROC_CGROUP_PARENT): this process's own, and new ones whose
//     maker no longer runs (a killed helper's, which no start swept).
//
// The report of whatever is still there at the deadline goes to stderr. A
// failing run is not checked: its leaks are most likely the failure's
// consequence, and it fails anyway.
//
// Call Run from TestMain after multiproc.Main, so that a re-executed worker
// never gets here. Run is not safe to call twice or concurrently.
func Run(m *testing.M, opts ...Option) {
	// A race-enabled child sleeps a second at exit by default, so that
	// reports can be printed; every worker a test stops would cost that.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(run(m, os.Stderr, opts...))
}

// runner is what run needs of a *testing.M, so that tests can drive run
// with a fake one and read its exit code instead of exiting.
type runner interface {
	Run() int
}

func run(m runner, stderr io.Writer, opts ...Option) int {
	o := newOptions(opts)
	b, err := snapshot()
	if err != nil {
		// Running the tests without a baseline would either skip the checks
		// silently or blame the tests for what was already there.
		fmt.Fprintln(stderr, err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		return code
	}
	if r := check(b, o); !r.empty() {
		fmt.Fprintf(stderr, "testutil: leak check failed (still there after %v):\n%s", o.deadline, r)
		return 1
	}
	return 0
}

// markerEnv names the environment variable through which descendants are
// recognised after they are reparented: its value is the comma-separated
// pids of the processes that ran Run, outermost first. A list rather than
// one pid so that a test binary run by another test binary's test marks its
// own descendants without unmarking them for the outer one.
const markerEnv = "MULTIPROC_TESTUTIL_ROOT"

// baseline is what existed before the tests, against which check compares.
type baseline struct {
	// goroutines ignores the goroutines alive at the snapshot: whatever
	// package initialisation or TestMain started is not the tests' leak.
	goroutines goleak.Option
	sys        sysBaseline
}

func snapshot() (*baseline, error) {
	sys, err := sysSnapshot()
	if err != nil {
		return nil, err
	}
	return &baseline{goroutines: goleak.IgnoreCurrent(), sys: sys}, nil
}

// check polls until nothing leaked compared with b, or o.deadline passes,
// and returns the last report, which is empty when nothing leaked.
func check(b *baseline, o *options) *report {
	var r *report
	poll(o.deadline, maxCheckBackoff, func() bool {
		r = collect(b, o)
		return r.empty()
	})
	return r
}

// spawnerFunc is multiproc's child-starting goroutine: one per process that
// started a child, alive until the process exits, by design (the parent-death
// signal follows the thread that forked, so that thread must never exit).
const spawnerFunc = "github.com/multiproc-go/multiproc/internal/boot.spawner"

// robustFunc is internal/futex's robust-list thread: one per process that
// made a robust mutex, alive until the process exits, by design (the
// kernel walks its robust list when it exits, i.e. when the process dies).
const robustFunc = "github.com/multiproc-go/multiproc/internal/futex.robustThread"

// collect looks once at everything check cares about.
func collect(b *baseline, o *options) *report {
	r := new(report)
	sysCollect(b.sys, o, r)
	gopts := append([]goleak.Option{b.goroutines, goleak.IgnoreTopFunction(spawnerFunc), goleak.IgnoreTopFunction(robustFunc)}, o.goleak...)
	// goleak.Find retries by itself for up to about half a second before it
	// reports; that is a floor on one round of a failing check, not a cost on
	// a passing one.
	if err := goleak.Find(gopts...); err != nil {
		r.Goroutines = err.Error()
	}
	return r
}
