package isolate

import (
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/multiproc-go/multiproc/internal/errs"
)

// Facts are what a parent knows about a child's death, once it reaped it:
// its exit status, what the child recorded before exiting on its own,
// its crash report and captured output, its cgroup's counters and its
// limits. A pool worker and a Process both have them (a Process has no
// exit record or captured output), and [Explain] turns them into the same
// cause and reason text for both.
type Facts struct {
	Code int            // exit status (0 when killed)
	Sig  syscall.Signal // the signal that killed it, 0 if it exited
	// Runs names what the child runs, for the reason text: "task" for a
	// pool worker, "target" for a Process.
	Runs string
	// LibraryExit: the child recorded an exit of the library's own (its
	// codes, 2 and 3, collide with users'); CPULimitExit: it recorded
	// that a task crossed its CPU allowance (only where the CPUGuard falls
	// back to a goroutine; elsewhere the kernel ends the worker with
	// SIGXCPU). A Process records neither.
	LibraryExit, CPULimitExit bool
	// Stopped is who sent the signal, if the parent itself did ("the
	// pool", "Process.Terminate or Kill"); empty if not.
	Stopped string
	Report  string // the crash report written through SetCrashOutput
	Output  string // captured output, when there is any
	// Captured is how many bytes the task had printed into the output
	// capture when it died: they are charged to its cgroup's memory.
	Captured int64
	// Grouped: the child had a cgroup; OOMKills and PidsHits are its
	// counters (memory OOM kills, pids.max refusals).
	Grouped            bool
	OOMKills, PidsHits uint64
	Limits             Spec
	CPUUsed            time.Duration // CPU the child published having used (a pool worker with CPUTimeTotal)
}

// Explain says why the child of f died: the cause (CauseUnknown when
// nothing more is known, including a death the parent caused itself) and
// the reason text for ExitError.Reason (empty if there is nothing to add).
// The order matters: a recorded CPU limit and a counted OOM kill are
// facts; the crash report is read next; a bare signal last.
func Explain(f Facts) (errs.DeathCause, string) {
	crash := Classify(f.Report)
	if crash == Fatal && strings.Contains(f.Output, "runtime: out of memory") {
		crash = OutOfMemory // the runtime's own line, caught by output capture
	}
	// pids.max refused a thread or a fork at some point; with cgo, a
	// refused thread is a SIGABRT whose report says nothing more.
	threads := crash == ThreadLimit || (crash != NoCrash && ThreadLimitText(f.Output)) ||
		(f.PidsHits > 0 && Aborted(f.Report))
	l := f.Limits
	switch {
	case f.CPULimitExit:
		return errs.CauseCPULimit, fmt.Sprintf("the %s used more than its %v of CPU time", f.Runs, l.CPUTime)
	case f.OOMKills > 0:
		why := fmt.Sprintf("its cgroup's OOM killer killed it (memory cap %d bytes)", l.Memory)
		if f.Captured > 0 && l.Memory > 0 && uint64(f.Captured) >= l.Memory/8 {
			// The capture file's pages count against the cap (see
			// CaptureOutput): say so when they are a real part of it.
			why += fmt.Sprintf("; the task had printed %d bytes into the output capture, which count against the cap while the task runs", f.Captured)
		}
		return errs.CauseOutOfMemory, why
	case crash == OutOfMemory:
		return errs.CauseOutOfMemory, "the Go runtime ran out of memory"
	case threads:
		return errs.CauseProcessLimit, threadLimitWhy(l.Processes, f.PidsHits > 0)
	case crash == GoroutinePanic:
		return errs.CauseGoroutinePanic, fmt.Sprintf("a goroutine the %s started panicked: %s", f.Runs, Headline(f.Report))
	case crash == CgoFault:
		return errs.CauseCgoFault, "a fault in C code called through cgo: " + Headline(f.Report)
	case crash == Fatal:
		return errs.CauseFatal, "Go runtime fatal error: " + Headline(f.Report)
	case f.Sig == syscall.SIGXCPU && l.CPUTime > 0:
		// SIGXCPU's default action, restored by the CPUGuard: the soft
		// limit armed for the task (a Process: its whole target) was
		// crossed. A lifetime limit alone sets soft = hard, where the
		// kernel sends SIGKILL instead.
		return errs.CauseCPULimit, fmt.Sprintf("the %s used more than its %v of CPU time", f.Runs, l.CPUTime)
	case f.Sig == syscall.SIGXCPU || (f.Sig == syscall.SIGKILL && l.CPUTimeTotal > 0 && f.CPUUsed+time.Second >= l.CPUTimeTotal):
		return errs.CauseCPULimit, fmt.Sprintf("it reached its lifetime CPU limit of %v", l.CPUTimeTotal)
	case f.Sig != 0 && f.Stopped != "":
		return errs.CauseUnknown, "stopped by " + f.Stopped
	case f.Sig != 0:
		return errs.CauseKilled, fmt.Sprintf("killed by signal %d (%v) from outside", int(f.Sig), f.Sig)
	case f.LibraryExit:
		// The library's own exit: the parent went, a protocol error, EXIT.
		return errs.CauseUnknown, ""
	}
	// No record, no signal, no crash: user code called os.Exit (0
	// included: a worker never exits 0 mid-task on its own).
	return errs.CauseExit, fmt.Sprintf("user code called os.Exit(%d)", f.Code)
}

// threadLimitWhy is the reason of a death by a refused thread, with the
// child's Limits.Processes (0 for none) and whether its cgroup counted
// the refusal.
func threadLimitWhy(processes int, counted bool) string {
	if processes > 0 {
		how := "the runtime could not create a thread"
		if counted {
			how = "its cgroup refused a new thread"
		}
		return fmt.Sprintf("%s: it reached its process/thread limit (Limits.Processes %d: pids.max counts threads)", how, processes)
	}
	return "the Go runtime could not create a thread (a process/thread limit of the system: RLIMIT_NPROC, threads-max, an outer pids.max)"
}
