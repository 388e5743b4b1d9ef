package multiproc

import (
	"errors"
	"fmt"
	"github.com/multiproc-go/multiproc/internal/wire"
	"io"
	"log/slog"
	"math"
	"time"

	eng "github.com/multiproc-go/multiproc/internal/engine"
	"github.com/multiproc-go/multiproc/internal/isolate"
)

// PoolOption configures a [Pool] or an [Executor] (and a pool on another
// backend, such as the cluster's, which reads the same settings). Every
// option validates its arguments: an out-of-range value, or options that
// conflict, make NewPool or NewExecutor return an error naming the option.
// A nil PoolOption panics. This package's options are the only ones that
// can be written outside it (the parameter type is internal).
type PoolOption func(*eng.Config) error

// poolConfig is the engine's configuration under the name this package's
// options use.
type poolConfig = eng.Config

// Initializer runs f(ctx, arg) once in each worker before it takes tasks,
// like Python's initializer/initargs: typically to set up package-level
// state (a connection, a cache) that later tasks in that worker use. If it
// fails in any worker, NewPool returns the error; a replacement worker whose
// initializer fails counts as a failed start (see [ErrPoolBroken]).
func Initializer[In, Out any](f Func[In, Out], arg In) PoolOption {
	return func(c *poolConfig) error {
		if err := f.check(); err != nil {
			return err
		}
		var res wire.Outgoing
		b, err := wire.AppendOut(f.in, nil, arg, &res)
		if err != nil {
			return fmt.Errorf("multiproc: initializer argument: %w", err)
		}
		closeSent(c.InitRes) // an earlier Initializer option's
		c.Init, c.InitArg, c.InitRes = f.e, b, res.Res
		return nil
	}
}

// MaxTasksPerChild replaces a worker after it has run n tasks (a chunk
// counts as one, as in Python), to bound what a leaky task can accumulate.
// Queued work is not lost; the replacement starts once the old worker has
// exited, so the pool never has more than its size of worker processes.
func MaxTasksPerChild(n int) PoolOption {
	return func(c *poolConfig) error {
		if n < 0 {
			return fmt.Errorf("multiproc: MaxTasksPerChild(%d): must not be negative", n)
		}
		c.MaxTasksPerChild = n
		return nil
	}
}

// RecycleMemory replaces a worker once its resident memory exceeds bytes
// (read from /proc after its tasks; Linux only, ignored elsewhere): a
// recycling threshold, not a cap. The task that grew it completes
// normally. 0 means no threshold. For a hard cap, which kills the worker
// in the middle of a task that goes past it, see [Limits].Memory.
func RecycleMemory(bytes uint64) PoolOption {
	return func(c *poolConfig) error { c.MaxMemory = bytes; return nil }
}

// MaxMemory is the former name of [RecycleMemory].
//
// Deprecated: the name read like a cap; use RecycleMemory for the
// recycling threshold or [Limits].Memory for a hard cap.
func MaxMemory(bytes uint64) PoolOption { return RecycleMemory(bytes) }

// MaxMessageSize bounds, in bytes, one task's encoded argument and one
// result (a Map chunk's arguments or results count as one message). The
// default is 256 MiB; it can be raised up to 4 GiB - 1, what a frame header
// carries. An argument over the limit fails the call at once; a result over
// it fails the task with an error matching [ErrTooLarge] (the worker
// detects it before sending, and lives on).
func MaxMessageSize(n int) PoolOption {
	return func(c *poolConfig) error {
		if n <= 0 || uint64(n) > math.MaxUint32 {
			return fmt.Errorf("multiproc: MaxMessageSize(%d): must be between 1 and %d", n, uint64(math.MaxUint32))
		}
		c.MaxMessageSize = n
		return nil
	}
}

// Logger sets where the pool logs what it notices on its own (a worker
// that broke the protocol, restarts backing off, a panic in a callback).
// Lines that repeat are rate-limited. The default is slog.Default() as it is
// when the pool is created.
func Logger(l *slog.Logger) PoolOption {
	return func(c *poolConfig) error {
		if l == nil {
			return errors.New("multiproc: Logger(nil)")
		}
		c.Logger = l
		return nil
	}
}

// MaxAge replaces a worker older than d, once it finishes its current tasks.
func MaxAge(d time.Duration) PoolOption {
	return func(c *poolConfig) error {
		if d < 0 {
			return fmt.Errorf("multiproc: MaxAge(%v): must not be negative", d)
		}
		c.MaxAge = d
		return nil
	}
}

// TaskTimeout sets the default time limit of every task (a chunk is one
// task); 0 means none. The limit travels to the worker as a relative
// budget: the task's context there ends with context.DeadlineExceeded when
// it runs out. At the deadline the caller is answered at once with an error
// matching [ErrTimeout] that names the function and the limit. A task that
// returns within the [Grace] period keeps its worker; otherwise the worker
// gets SIGTERM, then SIGKILL after another Grace period, and is replaced.
// [Timeout] overrides it per call.
func TaskTimeout(d time.Duration) PoolOption {
	return func(c *poolConfig) error {
		if d < 0 {
			return fmt.Errorf("multiproc: TaskTimeout(%v): must not be negative", d)
		}
		c.TaskTimeout = d
		return nil
	}
}

// Grace sets the steps of stopping a task that overran or was cancelled
// (default 2s): a timed-out task has Grace to return after its deadline
// before its worker gets SIGTERM, and another Grace before SIGKILL; a
// cancelled task has Grace to return after its context is cancelled before
// its worker is killed. d must be positive.
func Grace(d time.Duration) PoolOption {
	return func(c *poolConfig) error {
		if d <= 0 {
			return fmt.Errorf("multiproc: Grace(%v): must be positive", d)
		}
		c.Grace = d
		return nil
	}
}

// Retries runs a task again, up to n more times, when its worker died or it
// timed out (delivery failures). With errs given, only failures matching one
// of them (errors.Is) are retried, e.g. Retries(2, ErrWorkerDied). Errors
// that the function itself returns are never retried: a delivery may be
// repeated, a decision is not. Retried tasks may run more than once, so
// they should be idempotent.
func Retries(n int, errs ...error) PoolOption {
	return func(c *poolConfig) error {
		if n < 0 {
			return fmt.Errorf("multiproc: Retries(%d): must not be negative", n)
		}
		c.Retries = n
		if len(errs) > 0 {
			c.RetryOn = func(err error) bool {
				for _, e := range errs {
					if errors.Is(err, e) {
						return true
					}
				}
				return false
			}
		}
		return nil
	}
}

// RestartIntensity lets n worker failures that no task explains (a worker
// that died idle, a start or an Initializer that failed) happen within
// window before restarts back off exponentially (up to 5s), as Erlang/OTP
// supervisors do; the pool logs one warning when back-off starts, and
// [Stats].Backoff shows the delay. A worker that died running a task is
// that task's failure and is replaced at once, whatever the count.
// Default: 2×size+2 within 10s.
func RestartIntensity(n int, window time.Duration) PoolOption {
	return func(c *poolConfig) error {
		if n <= 0 || window <= 0 {
			return fmt.Errorf("multiproc: RestartIntensity(%d, %v): both must be positive", n, window)
		}
		c.MaxRestarts, c.RestartWindow = n, window
		return nil
	}
}

// WorkerName sets the prefix of worker process names ("PoolWorker").
func WorkerName(prefix string) PoolOption {
	return func(c *poolConfig) error {
		if prefix == "" {
			return errors.New("multiproc: WorkerName(\"\"): the prefix must not be empty")
		}
		c.Name = prefix
		return nil
	}
}

// WorkerMaxProcs sets GOMAXPROCS in each worker (default 1). A pool has
// about one worker per CPU, so one P per worker uses the machine fully and
// keeps a worker's internal hand-offs on one thread, which roughly halves a
// small task's round trip. Raise it for tasks that parallelise internally
// with goroutines. It is the same setting as [Limits].GoMaxProcs: giving
// both with different values fails at construction.
func WorkerMaxProcs(n int) PoolOption {
	return func(c *poolConfig) error {
		if n < 0 {
			return fmt.Errorf("multiproc: WorkerMaxProcs(%d): must not be negative", n)
		}
		if g := c.Limits.GoMaxProcs; g > 0 && n != g {
			return &isolate.LimitError{Field: "GoMaxProcs", Problem: fmt.Sprintf("%d (WorkerLimits) conflicts with WorkerMaxProcs(%d)", g, n)}
		}
		c.MaxProcs = n
		return nil
	}
}

// Progress draws a progress bar on stderr for each Map, MapAsync and
// Starmap call, but only when stderr is a terminal.
func Progress() PoolOption {
	return func(c *poolConfig) error { c.AutoProgress = true; return nil }
}

// ProgressTo reports the progress of each Map, MapAsync and Starmap call on
// w, whatever it is: live bars if w is a terminal; otherwise plain lines
// `name done/total pct%`, at most one per tenth of the work and per second,
// then the final line once (ending in " failed" if the call failed), so a
// log file gets no cursor codes.
func ProgressTo(w io.Writer) PoolOption {
	return func(c *poolConfig) error {
		if w == nil {
			return errors.New("multiproc: ProgressTo(nil)")
		}
		c.Progress = w
		return nil
	}
}

// CallOption configures one call (Map, Imap, Apply, Submit...). Options
// validate their arguments: with an invalid one, Map and Apply return the
// error, and ApplyAsync, MapAsync, Submit and Imap return an already-failed
// result (or yield the error) and submit nothing. A nil CallOption panics.
type CallOption func(*callConfig) error

type callConfig struct {
	chunksize int
	timeout   time.Duration
	prefetch  int
	err       error // the first invalid option
}

// Chunksize sends items to workers in chunks of n, as Python's chunksize
// does: fewer, larger messages for small items. The default (n == 0) for
// Map is Python's (about four chunks per worker, capped at 32768 items);
// for Imap it is 1. n must not be negative.
func Chunksize(n int) CallOption {
	return func(c *callConfig) error {
		if n < 0 {
			return fmt.Errorf("multiproc: Chunksize(%d): must not be negative", n)
		}
		c.chunksize = n
		return nil
	}
}

// Timeout limits each task of the call (a chunk is one task), overriding
// the pool's [TaskTimeout]; 0 keeps the pool's. d must not be negative.
func Timeout(d time.Duration) CallOption {
	return func(c *callConfig) error {
		if d < 0 {
			return fmt.Errorf("multiproc: Timeout(%v): must not be negative", d)
		}
		c.timeout = d
		return nil
	}
}

// Prefetch bounds how many chunks Imap and ImapUnordered keep in flight
// ahead of the consumer (default, n == 0: 64 per worker): the input is read
// lazily, so an endless iterator works. n must not be negative.
func Prefetch(n int) CallOption {
	return func(c *callConfig) error {
		if n < 0 {
			return fmt.Errorf("multiproc: Prefetch(%d): must not be negative", n)
		}
		c.prefetch = n
		return nil
	}
}

// callOptions applies opts; an invalid one is kept in the result's err,
// which every entry point checks before submitting anything.
func callOptions(opts []CallOption) callConfig {
	if len(opts) == 0 {
		// Spares the allocation below: c escapes through the options'
		// calls, once per ApplyAsync.
		return callConfig{}
	}
	var c callConfig
	for _, o := range opts {
		if o == nil {
			panic("multiproc: nil CallOption")
		}
		if err := o(&c); err != nil && c.err == nil {
			c.err = err
		}
	}
	return c
}
