//go:build unix

package isolate

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Apply sets, in this process, what s asks of it: GOMAXPROCS, GOMEMLIMIT
// (s.GoMemLimit as resolved by [Spec.Append]: positive to set, -1 to leave
// as it is), core dumps off, the open files limit (soft and hard, so user
// code cannot raise it back), the lifetime CPU limit (hard RLIMIT_CPU) and
// nice on every thread. Call it once, early in a child's Main (the Go
// runtime has started: the descriptor limit it raised at start is lowered
// again here), before any user code runs. It stops at the first failure and
// says which limit failed and why.
func Apply(s Spec) error {
	if s.GoMaxProcs > 0 {
		runtime.GOMAXPROCS(s.GoMaxProcs)
	}
	if s.GoMemLimit > 0 {
		debug.SetMemoryLimit(s.GoMemLimit)
	}
	if s.NoCoreDumps {
		if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
			return &LimitError{Field: "NoCoreDumps", Problem: "setting RLIMIT_CORE to 0", Err: err}
		}
	}
	if s.OpenFiles > 0 {
		if err := applyOpenFiles(uint64(s.OpenFiles)); err != nil {
			return err
		}
	}
	if s.CPUTimeTotal > 0 {
		secs := uint64((s.CPUTimeTotal + time.Second - 1) / time.Second)
		if err := lower(unix.RLIMIT_CPU, secs, "CPUTimeTotal"); err != nil {
			return err
		}
	}
	if s.Nice != 0 {
		if err := niceAll(s.Nice); err != nil {
			return &LimitError{Field: "Nice", Problem: fmt.Sprintf("setting %d on every thread", s.Nice), Err: err}
		}
	}
	return nil
}

// lower sets both limits of resource to n. The hard limit can be lowered
// but, even by root here, never raised again: a limit above the current
// hard one fails with an error saying so ([Spec.Validate] catches it in
// the parent, whose hard limits the child inherits).
func lower(resource int, n uint64, field string) error {
	var rl unix.Rlimit
	if err := unix.Getrlimit(resource, &rl); err != nil {
		return &LimitError{Field: field, Problem: "reading the current limit", Err: err}
	}
	if rl.Max != unix.RLIM_INFINITY && n > rl.Max {
		return &LimitError{Field: field, Problem: fmt.Sprintf("%d is above this process's hard limit %d, which cannot be raised", n, rl.Max), Err: syscall.EPERM}
	}
	if err := unix.Setrlimit(resource, &unix.Rlimit{Cur: n, Max: n}); err != nil {
		return &LimitError{Field: field, Problem: fmt.Sprintf("setting %d", n), Err: err}
	}
	return nil
}

// checkHardLimits fails, in the parent, for an rlimit field above this
// process's hard limit: the child inherits it and could not raise it, so
// the worker would fail at its start instead of the pool at construction.
func checkHardLimits(s Spec) error {
	above := func(resource int, n uint64, field, unit string) error {
		var rl unix.Rlimit
		if unix.Getrlimit(resource, &rl) != nil || rl.Max == unix.RLIM_INFINITY || n <= rl.Max {
			return nil
		}
		return invalid(field, "%d%s is above this process's hard limit %d%s, which a child inherits and cannot raise (even as root)", n, unit, rl.Max, unit)
	}
	if s.OpenFiles > 0 {
		if err := above(unix.RLIMIT_NOFILE, uint64(s.OpenFiles), "OpenFiles", ""); err != nil {
			return err
		}
	}
	if s.CPUTimeTotal > 0 {
		if err := above(unix.RLIMIT_CPU, uint64((s.CPUTimeTotal+time.Second-1)/time.Second), "CPUTimeTotal", "s"); err != nil {
			return err
		}
	}
	return nil
}

// applyOpenFiles lowers the descriptor limit to n, unless the process
// already holds descriptors too close to it: numbers at or above the limit
// stay open but no new descriptor could be made, so the worker would fail
// at its first task instead of at its start.
func applyOpenFiles(n uint64) error {
	if top := highestFD(); top >= 0 && uint64(top)+16 > n {
		return &LimitError{Field: "OpenFiles", Problem: fmt.Sprintf("%d is too low: this worker already uses descriptors up to %d, and needs room above them", n, top)}
	}
	return lower(unix.RLIMIT_NOFILE, n, "OpenFiles")
}

// CPUGuard enforces a per-task CPU allowance with the soft RLIMIT_CPU.
// RLIMIT_CPU counts a process's whole life, and a lowered hard limit
// cannot be raised again, so before each task [CPUGuard.Begin] sets the
// soft limit to the CPU used so far plus the allowance (at most the hard
// limit), and [CPUGuard.End] lifts it back to the hard limit, so that the
// worker's own bookkeeping between tasks is never limited.
//
// The kernel does the stopping: the guard restores SIGXCPU's default
// action (terminate) beneath the Go runtime, with core dumps off, so a
// task past its allowance ends its process at once and the parent sees
// the signal. Nothing in the process has to run for that. A guard that
// waited for the signal on a goroutine (as it did before) hung: in a
// worker with GOMAXPROCS=1 a spinning task holds the only P, and the
// runtime preempts it only through its system monitor, which sleeps for
// up to a minute while the process looks idle and is woken by system
// calls made through the scheduler (TestIsolationCPULimit hung in 2 runs
// of 10 that way). Begin restores the default action before every task,
// so a signal.Ignore(SIGXCPU) in user code (which sets SIG_IGN; a later
// Notify then installs the runtime's handler again) disables the limit
// for at most the task that made it. signal.Notify alone does not touch
// the action: the runtime reinstalls its handler only for a signal it
// had stopped handling.
//
// Where the default action cannot be restored beneath the runtime (see
// sigdfl_other.go), the guard falls back to asking Go for SIGXCPU and
// calls onLimit on a goroutine during a task; that needs the scheduler to
// run it.
//
// Begin and End are called by the one goroutine that runs tasks.
type CPUGuard struct {
	allow uint64 // seconds per task
	hard  uint64 // the hard limit, seconds (RLIM_INFINITY for none)
	// kernel: SIGXCPU's default action ends the process; otherwise the
	// fallback below runs.
	kernel bool

	// The fallback's state.
	running atomic.Bool
	mu      sync.Mutex // serialises setrlimit and running between Begin/End and the signal goroutine
	stop    chan struct{}
	done    chan struct{}
	sig     chan os.Signal
}

// NewCPUGuard starts a guard for s (nil if s has no CPUTime). onLimit is
// called, on the guard's goroutine, only where the kernel cannot end the
// process itself (see [CPUGuard]); it must end the process.
func NewCPUGuard(s Spec, onLimit func()) (*CPUGuard, error) {
	if s.CPUTime <= 0 {
		return nil, nil
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CPU, &rl); err != nil {
		return nil, &LimitError{Field: "CPUTime", Problem: "reading RLIMIT_CPU", Err: err}
	}
	g := &CPUGuard{allow: s.CPUSeconds(), hard: rl.Max}
	if canDefaultAction {
		// SIGXCPU's default action also dumps core: a worker's image
		// written to disk on every limit crossing would be slow and
		// unwanted. Only the soft limit is lowered, so user code may
		// raise it back if it wants cores.
		var core unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_CORE, &core); err != nil {
			return nil, &LimitError{Field: "CPUTime", Problem: "reading RLIMIT_CORE", Err: err}
		}
		if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: core.Max}); err != nil {
			return nil, &LimitError{Field: "CPUTime", Problem: "turning core dumps off (SIGXCPU's default action dumps core)", Err: err}
		}
		g.kernel = true
		return g, nil
	}
	g.stop, g.done, g.sig = make(chan struct{}), make(chan struct{}), make(chan os.Signal, 1)
	signal.Notify(g.sig, syscall.SIGXCPU)
	go func() {
		defer close(g.done)
		for {
			select {
			case <-g.sig:
				// A signal raised between tasks may be delivered late (a
				// loaded machine), after Begin armed the next task: the
				// between-tasks reset below must then not lift the new
				// task's limit, so running is read and the limit reset
				// under mu, which Begin holds while it arms.
				g.mu.Lock()
				if g.running.Load() {
					g.mu.Unlock()
					onLimit()
					continue
				}
				// Between tasks: the worker's own bookkeeping crossed a
				// limit set for a task that ended.
				unix.Setrlimit(unix.RLIMIT_CPU, &unix.Rlimit{Cur: g.hard, Max: g.hard})
				g.mu.Unlock()
			case <-g.stop:
				return
			}
		}
	}()
	return g, nil
}

// Used is the CPU time this process has used (user and system, all
// threads).
func Used() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Begin arms the allowance for the task about to run and returns the CPU
// used so far. Three system calls, none through the scheduler.
func (g *CPUGuard) Begin() time.Duration {
	used := Used()
	soft := uint64((used+time.Second-1)/time.Second) + g.allow
	if g.hard != unix.RLIM_INFINITY {
		soft = min(soft, g.hard)
	}
	if g.kernel {
		defaultAction(syscall.SIGXCPU)
		unix.Setrlimit(unix.RLIMIT_CPU, &unix.Rlimit{Cur: soft, Max: g.hard})
		return used
	}
	g.mu.Lock()
	unix.Setrlimit(unix.RLIMIT_CPU, &unix.Rlimit{Cur: soft, Max: g.hard})
	g.running.Store(true)
	g.mu.Unlock()
	return used
}

// End marks the task over and lifts the soft limit to the hard one: from
// now on nothing is the task's. A task that crossed its allowance just
// before End may still be ended by it (it did use the allowance).
func (g *CPUGuard) End() {
	if g.kernel {
		unix.Setrlimit(unix.RLIMIT_CPU, &unix.Rlimit{Cur: g.hard, Max: g.hard})
		return
	}
	g.mu.Lock()
	g.running.Store(false)
	g.mu.Unlock()
}

// Close stops the guard's goroutine and its signal delivery (the
// fallback's); a kernel guard leaves the limit lifted, as End does.
func (g *CPUGuard) Close() {
	if g == nil {
		return
	}
	if g.kernel {
		g.End()
		return
	}
	signal.Stop(g.sig)
	close(g.stop)
	<-g.done
}

// DieOf ends this process with sig's default action, so that its parent
// sees that signal in its wait status (Go handles or ignores most signals,
// so raising one is not enough): the handler is reset and core dumps are
// turned off first (SIGXCPU's default action would dump core).
func DieOf(sig syscall.Signal) {
	unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	signal.Reset(sig)
	// signal.Reset keeps the runtime's own handler, which ignores most
	// signals: the default action has to be restored below the runtime.
	defaultAction(sig)
	syscall.Kill(os.Getpid(), sig)
	// The signal is pending for this thread or another; if it has not
	// ended the process in a moment, exit plainly.
	time.Sleep(time.Second)
	os.Exit(2)
}
