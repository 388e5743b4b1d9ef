package multiproc

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/multiproc-go/multiproc/internal/core"
)

// PoolOption configures a [Pool] or an [Executor]. Options that conflict
// or are out of range make NewPool fail.
type PoolOption func(*poolConfig) error

type poolConfig struct {
	core     core.Config
	progress io.Writer // nil: no progress bars
	autoBar  bool      // draw on stderr only when it is a terminal
}

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
		b, err := f.in.Append(nil, arg)
		if err != nil {
			return fmt.Errorf("multiproc: initializer argument: %w", err)
		}
		c.core.Init, c.core.InitArg = f.e, b
		return nil
	}
}

// MaxTasksPerChild replaces a worker after it has run n tasks (a chunk
// counts as one, as in Python), to bound what a leaky task can accumulate.
// Queued work is not lost and a replacement starts before the old worker
// leaves.
func MaxTasksPerChild(n int) PoolOption {
	return func(c *poolConfig) error {
		if n < 0 {
			return fmt.Errorf("multiproc: MaxTasksPerChild(%d): must not be negative", n)
		}
		c.core.MaxTasksPerChild = n
		return nil
	}
}

// MaxMemory replaces a worker once its resident memory exceeds bytes (read
// from /proc after its tasks; Linux only, ignored elsewhere). The task that
// grew it completes normally.
func MaxMemory(bytes uint64) PoolOption {
	return func(c *poolConfig) error { c.core.MaxMemory = bytes; return nil }
}

// MaxAge replaces a worker older than d, once it finishes its current tasks.
func MaxAge(d time.Duration) PoolOption {
	return func(c *poolConfig) error {
		if d < 0 {
			return fmt.Errorf("multiproc: MaxAge(%v): must not be negative", d)
		}
		c.core.MaxAge = d
		return nil
	}
}

// TaskTimeout sets the default time limit of every task (a chunk is one
// task). A task that exceeds it fails with an error matching [ErrTimeout];
// its worker gets SIGTERM, then SIGKILL after the grace period, and is
// replaced. [Timeout] overrides it per call.
func TaskTimeout(d time.Duration) PoolOption {
	return func(c *poolConfig) error {
		if d < 0 {
			return fmt.Errorf("multiproc: TaskTimeout(%v): must not be negative", d)
		}
		c.core.TaskTimeout = d
		return nil
	}
}

// Grace sets how long a worker has to stop after SIGTERM (on a timeout) or
// after its task's context is cancelled, before it is killed. Default 2s.
func Grace(d time.Duration) PoolOption {
	return func(c *poolConfig) error {
		if d <= 0 {
			return fmt.Errorf("multiproc: Grace(%v): must be positive", d)
		}
		c.core.Grace = d
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
		c.core.Retries = n
		if len(errs) > 0 {
			c.core.RetryOn = func(err error) bool {
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

// RestartIntensity lets n unplanned worker deaths happen within window
// before restarts back off exponentially (up to 5s), as Erlang/OTP
// supervisors do. Default: 2×size+2 within 10s.
func RestartIntensity(n int, window time.Duration) PoolOption {
	return func(c *poolConfig) error {
		if n <= 0 || window <= 0 {
			return fmt.Errorf("multiproc: RestartIntensity(%d, %v): both must be positive", n, window)
		}
		c.core.MaxRestarts, c.core.RestartWindow = n, window
		return nil
	}
}

// WorkerName sets the prefix of worker process names ("PoolWorker").
func WorkerName(prefix string) PoolOption {
	return func(c *poolConfig) error { c.core.Name = prefix; return nil }
}

// WorkerMaxProcs sets GOMAXPROCS in each worker (default 1). A pool has
// about one worker per CPU, so one P per worker uses the machine fully and
// keeps a worker's internal hand-offs on one thread, which roughly halves a
// small task's round trip. Raise it for tasks that parallelise internally
// with goroutines.
func WorkerMaxProcs(n int) PoolOption {
	return func(c *poolConfig) error {
		if n < 0 {
			return fmt.Errorf("multiproc: WorkerMaxProcs(%d): must not be negative", n)
		}
		c.core.MaxProcs = n
		return nil
	}
}

// Progress draws a progress bar on stderr for each Map, MapAsync, Starmap
// and Imap call, but only when stderr is a terminal.
func Progress() PoolOption {
	return func(c *poolConfig) error { c.autoBar = true; return nil }
}

// ProgressTo draws progress bars on w whatever it is (for logs, or tests).
func ProgressTo(w io.Writer) PoolOption {
	return func(c *poolConfig) error {
		if w == nil {
			return errors.New("multiproc: ProgressTo(nil)")
		}
		c.progress = w
		return nil
	}
}

// CallOption configures one call (Map, Imap, Apply, Submit...).
type CallOption func(*callConfig)

type callConfig struct {
	chunksize int
	timeout   time.Duration
	prefetch  int
}

// Chunksize sends items to workers in chunks of n, as Python's chunksize
// does: fewer, larger messages for small items. The default for Map is
// Python's (about four chunks per worker); for Imap it is 1.
func Chunksize(n int) CallOption { return func(c *callConfig) { c.chunksize = n } }

// Timeout limits each task of the call (a chunk is one task), overriding
// the pool's [TaskTimeout].
func Timeout(d time.Duration) CallOption { return func(c *callConfig) { c.timeout = d } }

// Prefetch bounds how many chunks Imap and ImapUnordered keep in flight
// ahead of the consumer (default 64 per worker): the input is read lazily,
// so an endless iterator works.
func Prefetch(n int) CallOption { return func(c *callConfig) { c.prefetch = n } }

func callOptions(opts []CallOption) callConfig {
	var c callConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}
