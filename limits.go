package multiproc

import (
	"fmt"
	"time"

	"github.com/multiproc-go/multiproc/internal/isolate"
)

// Limits bounds what each worker (or a [Process]) may use, so that a task
// that leaks memory, spins, exhausts descriptors or forks without end is
// contained and its failure explained (see the death causes such as
// [ErrOutOfMemory]) instead of taking the program down. Give it to
// [NewPool] or [NewExecutor] with [WorkerLimits], or set [Process].Limits
// before Start. Every zero field means "no limit" (or "unchanged"); invalid
// values fail at construction (NewPool, NewExecutor, Process.Start) with an
// error that names the field and matches [ErrInvalidLimits].
//
// Limits are applied in the child before any task (or initializer, or
// Process target) runs. The memory cap, CPU quota and process limit are a
// cgroup's, one per worker (v1 here, or v2 in a delegated subtree; see
// docs/ISOLATION.md): with any of them set and no usable cgroup, NewPool
// fails with an error that names the missing controller and what cgroup
// v2 needs. On macOS only the rlimit and runtime fields work (the cgroup
// ones fail at NewPool with an error matching errors.ErrUnsupported).
type Limits struct {
	// Memory is a hard cap on the worker's memory, in bytes (its cgroup's
	// memory.limit_in_bytes or memory.max; at least 16 MiB): past it the
	// kernel's OOM killer kills the worker and its task fails with an
	// error matching [ErrOutOfMemory]. RLIMIT_AS is not used: an idle Go
	// process maps about 1.2 GB of address space.
	Memory uint64
	// Swap is how much swap the worker may use beyond Memory (0: none,
	// where the kernel accounts swap). It needs Memory.
	Swap uint64
	// CPUs is a CPU bandwidth quota (cgroup cpu.max / cfs quota) in CPUs:
	// 0.5 lets the worker run half of one CPU's time. Not a limit on total
	// CPU time (see CPUTime).
	CPUs float64
	// CPUTime limits the CPU time each task may use (user plus system, all
	// the worker's threads), rounded up to whole seconds, the kernel's
	// unit: a task gets between CPUTime and CPUTime+1s. A task past it
	// kills its worker and fails with an error matching [ErrCPULimit];
	// the worker is replaced. The kernel does the killing (SIGXCPU through
	// the soft RLIMIT_CPU, set before each task and lifted after it, with
	// the signal's default action restored and the soft core-dump limit
	// at 0 for the worker's life), so on Linux it works whatever the task
	// does, even when it never yields the CPU (elsewhere a goroutine
	// receives the signal and needs the scheduler to run). A
	// worker with CPUTime owns SIGXCPU: signal.Ignore(SIGXCPU) in a task
	// (or Ignore then Notify) turns the limit off until the next task
	// begins; signal.Notify alone leaves it on (measured: the worker is
	// still killed, and the channel gets nothing).
	CPUTime time.Duration
	// CPUTimeTotal is a lifetime backstop: the worker's hard RLIMIT_CPU
	// (at least one second, not below CPUTime). The pool recycles a worker
	// before a task's allowance would reach it.
	CPUTimeTotal time.Duration
	// OpenFiles caps the worker's descriptors (RLIMIT_NOFILE, soft and
	// hard, at least 64). It is applied in the worker after the Go runtime
	// started (which raises the soft limit to the hard one). A task that
	// runs out gets EMFILE: its error matches [ErrFDLimit] and
	// syscall.EMFILE, and the worker lives on.
	OpenFiles int
	// Processes caps the worker's tasks, threads included (cgroup
	// pids.max): at least 16 + GOMAXPROCS, what a Go worker needs to
	// start. A fork past it fails in the task (EAGAIN) and the worker
	// lives; a thread the Go runtime cannot create kills the worker, and
	// its task fails with an error matching [ErrProcessLimit].
	// RLIMIT_NPROC is not used: it counts per user and does not bind root.
	Processes int
	// NoCoreDumps turns core dumps off (RLIMIT_CORE 0).
	NoCoreDumps bool
	// Nice lowers (1 to 19) or raises (-20 to -1, which needs privilege)
	// the worker's scheduling priority, on every one of its threads (nice
	// is per thread on Linux).
	Nice int
	// GoMemLimit is the Go runtime's soft memory limit (GOMEMLIMIT) in
	// bytes. 0 means nine tenths of Memory when Memory is set (so the
	// garbage collector works harder before the cap kills), otherwise
	// unchanged; -1 leaves it unchanged even with Memory.
	GoMemLimit int64
	// GoMaxProcs is GOMAXPROCS in the worker; 0 keeps the default (1 for
	// pool workers, see [WorkerMaxProcs]; the machine's CPUs for a
	// Process).
	GoMaxProcs int
	// CgroupParent is, for cgroup v2, the directory of a delegated cgroup
	// with no processes of its own under which worker cgroups are made
	// (v2 forbids controllers in a cgroup that holds processes, and the
	// calling process is never moved). Empty means this process's own
	// cgroup, which works on v1 and on a v2 root.
	CgroupParent string
}

// ErrInvalidLimits matches the error of a [Limits] value that cannot be
// used, which makes NewPool, NewExecutor or Process.Start fail: a field out
// of range ("Limits.Memory: 1048576 is below the 16777216 bytes a Go worker
// needs to start"), fields that contradict each other (GoMemLimit above
// Memory, CPUTimeTotal below CPUTime, GoMaxProcs against WorkerMaxProcs),
// an rlimit above this process's hard limit (OpenFiles, CPUTimeTotal: a
// child inherits the hard limit and cannot raise it, even as root), or a
// limit the child could not apply (a negative Nice without privilege). The
// message names the field. A missing cgroup controller is not this error
// (it wraps the cgroup package's own "no usable cgroup controller").
var ErrInvalidLimits = isolate.ErrInvalidLimits

// spec converts l to the internal twin (identical fields).
func (l Limits) spec() isolate.Spec { return isolate.Spec(l) }

// WorkerLimits applies l to every worker of the pool (see [Limits]). It
// fails at construction, with an error matching [ErrInvalidLimits], if a
// field is out of range, or if l.GoMaxProcs conflicts with
// [WorkerMaxProcs].
func WorkerLimits(l Limits) PoolOption {
	return func(c *poolConfig) error {
		s := l.spec()
		procs := c.MaxProcs
		if s.GoMaxProcs > 0 {
			if c.MaxProcs > 0 && c.MaxProcs != s.GoMaxProcs {
				return &isolate.LimitError{Field: "GoMaxProcs", Problem: fmt.Sprintf("%d conflicts with WorkerMaxProcs(%d)", s.GoMaxProcs, c.MaxProcs)}
			}
			procs = s.GoMaxProcs
			c.MaxProcs = s.GoMaxProcs
		}
		if procs == 0 {
			procs = 1 // the pool's default
		}
		if err := s.Validate(procs); err != nil {
			return err
		}
		c.Limits = s
		return nil
	}
}

// PrefixOutput makes every line a worker prints on stdout or stderr start
// with its name in brackets ("[PoolWorker-3] "), as docker compose does,
// so interleaved output says who wrote it. Without it (the default) the
// workers' output passes through untouched. Lines are copied by a reader
// in the parent; a line longer than 64 KiB is cut into several.
func PrefixOutput() PoolOption {
	return func(c *poolConfig) error { c.PrefixOutput = true; return nil }
}

// CaptureOutput captures what each task prints: the worker points its
// fds 1 and 2 at an in-memory file while the task runs, so everything the
// process writes there (fmt.Print, log, os.Stderr, C code) is caught. If
// the task fails, its error carries the last maxBytes of it
// ([RemoteError].Output; [ExitError].Output if the worker died); if it
// succeeds, the output is written to the worker's stdout once the task
// returned (so lines of one task stay together). Output from goroutines
// that outlive their task goes to whichever task runs when they write, or
// to the worker's stdout between tasks. maxBytes must be positive.
//
// The in-memory file holds all of a task's output while the task runs,
// not only maxBytes, and its pages count against the worker's
// [Limits].Memory cap (a memory file's pages are charged to the cgroup of
// the process that writes them, whoever created the file): measured here,
// a task printing 64 MiB under CaptureOutput(4096) had 64 MiB more charged
// to its worker's cgroup, and one printing 128 MiB under a 64 MiB cap was
// OOM-killed ([ErrOutOfMemory]). The file is emptied, and its pages freed,
// as soon as the task returns. Leave room in Memory for what a task may
// print, or do not capture the output of chatty tasks.
func CaptureOutput(maxBytes int) PoolOption {
	return func(c *poolConfig) error {
		if maxBytes <= 0 {
			return fmt.Errorf("multiproc: CaptureOutput(%d): must be positive", maxBytes)
		}
		c.CaptureOutput = maxBytes
		return nil
	}
}
