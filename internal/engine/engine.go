// Package engine is the contract between multiproc's typed API (the root
// package) and whatever runs tasks: the local worker-process engine
// (internal/core) or a remote one (the cluster backend, which lives in a
// module of its own and plugs in through [Config.New] without the root ever
// importing it).
//
// The contract is untyped: a [Task] is a registered function, its encoded
// argument and, for arguments that hold resources, the descriptors that
// travel beside the bytes; a [Result] is encoded bytes or an error. The
// root encodes, decodes, chunks, draws progress and runs callbacks; an
// engine schedules, delivers, retries and reports [Stats].
//
// What this package deliberately does not do: run anything. It holds types
// and the interface only, so that both sides can depend on it.
package engine

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/multiproc-go/multiproc/internal/isolate"
	"github.com/multiproc-go/multiproc/internal/registry"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Engine runs tasks. All methods are safe for concurrent use.
//
// Every Task given to Submit is settled exactly once (Task.Settle), with
// its final outcome, whatever happens: success, the function's error, a
// lost worker, a timeout, cancellation or a shutdown.
type Engine interface {
	// Submit queues tasks, in order. It fails without settling any of them
	// if the engine is closed (an error matching ErrPoolClosed) or broken
	// (ErrPoolBroken).
	Submit(ts ...*Task) error
	// Cancel settles t with err (which wraps context.Canceled or a
	// context's error) and stops it wherever it is. It reports whether t
	// was still unfinished.
	Cancel(t *Task, err error) bool
	// CancelPending cancels, with err, every task no worker has received.
	CancelPending(err error)
	// Running reports whether t has been handed to a worker and has not
	// finished.
	Running(t *Task) bool
	// StartClose stops intake without waiting: Submit fails from its
	// return on; queued and running tasks go on.
	StartClose()
	// Close stops intake, waits for queued and running tasks, then stops
	// the workers and waits for them. If ctx ends first it proceeds as
	// Terminate and returns an error wrapping ctx.Err().
	Close(ctx context.Context) error
	// Terminate settles every unfinished task with ErrPoolClosed, stops the
	// workers at once and waits for them.
	Terminate() error
	// Join waits until a Close or Terminate has finished; it fails if
	// neither was called.
	Join(ctx context.Context) error
	// Stats returns a snapshot of the engine's counters.
	Stats() Stats
	// Size returns the number of workers the engine keeps.
	Size() int
	// CanTransfer reports whether tasks may carry resources with
	// descriptors (Task.Res). An engine that cannot (a remote one) is given
	// none: the root encodes arguments for it with
	// wire.Outgoing.NoDescriptors, so such an argument fails with
	// ErrNotTransferable, naming where the resource is, before submitting.
	CanTransfer() bool
}

// Factory builds an engine from the pool's configuration. The root calls
// the local engine's unless [Config.New] names another.
type Factory func(ctx context.Context, cfg Config) (Engine, error)

// Config is everything the root's pool options set. An engine honours what
// applies to it and documents what does not.
type Config struct {
	// New builds the engine; nil means the local worker-process engine.
	// A remote backend sets it through its own pool option.
	New Factory

	Workers int // number of workers, positive

	// Init, if set, runs once in each worker before it takes tasks, with
	// InitArg as its encoded argument and InitRes as its resources (owned
	// by the engine from NewEngine on, success or failure). A worker keeps
	// the resources its initializer received for its whole life.
	Init    *registry.Entry
	InitArg []byte
	InitRes []wire.Sent

	MaxTasksPerChild int           // retire a worker after that many tasks; 0: never
	MaxMemory        uint64        // retire a worker above this resident size; 0: never
	MaxAge           time.Duration // retire a worker older than this; 0: never
	TaskTimeout      time.Duration // default per-task limit; 0: none
	Grace            time.Duration // time to stop politely before the next step; default 2s

	// Retries re-runs a task whose worker died or timed out; RetryOn
	// (default: ErrWorkerDied or ErrTimeout) selects which failures.
	Retries int
	RetryOn func(error) bool

	// MaxRestarts deaths without a task within RestartWindow are taken
	// without delay; beyond that restarts back off. Defaults: 2×Workers+2
	// within 10s.
	MaxRestarts   int
	RestartWindow time.Duration

	Name     string // worker name prefix; default "PoolWorker"
	MaxProcs int    // GOMAXPROCS of each worker; default 1

	// MaxMessageSize bounds one task's argument or result in bytes;
	// 0 means the wire default (256 MiB).
	MaxMessageSize int

	// Limits are each worker's resource limits (multiproc.Limits),
	// validated; the zero value sets none. Limits.GoMaxProcs, when set,
	// equals MaxProcs.
	Limits isolate.Spec
	// PrefixOutput prefixes each line a worker prints on stdout or stderr
	// with "[name] ". CaptureOutput, if positive, captures each task's
	// output (fds 1 and 2 while it runs) and attaches its last
	// CaptureOutput bytes to the task's error.
	PrefixOutput  bool
	CaptureOutput int

	// Logger receives the engine's own diagnostics (rate-limited); never
	// nil once the root has built the Config.
	Logger *slog.Logger

	// Progress, if set, receives progress bars of Map and Imap calls;
	// AutoProgress draws them on stderr when it is a terminal. The root
	// draws them; they are here so that every engine sees one Config.
	Progress     io.Writer
	AutoProgress bool
}

// Task is one unit of work: a registered function and its encoded argument
// (or slice of arguments, for a chunk).
type Task struct {
	Fn      *registry.Entry
	Chunk   bool   // Payload encodes a slice; the result is a slice
	Payload []byte // encoded argument(s)
	// Res are the resources of the argument (wire.Outgoing's table, to
	// which the payload refers by index). The engine sends their
	// descriptors beside the payload: a resource with an ID once per
	// worker, which keeps the imported object for later tasks. Submit
	// takes over the entries' owned descriptors, success or failure; the
	// engine keeps what it needs (one duplicate per resource, shared by
	// the tasks that use it) until the task's final outcome. Set only if
	// the engine reports CanTransfer.
	Res   []wire.Sent
	Items int // number of items (1 unless Chunk), for statistics
	// Ctx cancels the task: a queued task is dropped, a running one is
	// asked to stop, and its worker is stopped if it does not. Its deadline,
	// if any, travels to the worker as a relative budget.
	Ctx context.Context
	// Timeout, if positive, overrides the engine's default task timeout.
	Timeout time.Duration
	// Done is called exactly once with the outcome, from an engine
	// goroutine; it must not block. The Result's Data aliases a buffer that
	// is reused after Done returns.
	Done func(Result)
	// Sink, if set, is used instead of Done: a caller that embeds the Task
	// in its own state implements it without allocating a closure.
	Sink interface{ TaskDone(Result) }
	// Awaited promises that the submitter calls the engine's Await
	// (Awaiter) for this task as soon as Submit returns, as a synchronous
	// Apply does: an engine may then leave the reply to that call to read,
	// instead of having it watched meanwhile. Ignored by an engine without
	// Await.
	Awaited bool

	// ID is set by an engine that keeps results by task id (a remote
	// engine's result store) in Submit, before it returns; empty locally.
	ID string

	finished atomic.Bool

	// Sched is the bookkeeping of the engine that accepted the task. Only
	// that engine touches it, under its own lock.
	Sched Sched
}

// Sched is an engine's per-task bookkeeping, kept in the Task so that a
// submission costs one allocation.
type Sched struct {
	Owner      any         // where the task is (the local engine: its worker), nil while queued
	Stop       func() bool // stops a context watch of this task alone
	Attempts   int
	Watched    bool // in a shared context watch
	Cancelled  bool // settled as cancelled already
	TimedOut   bool
	CancelSent bool
	// Delivered: a frame carrying the task's resources was written to a
	// worker at least once; Writing counts the writes of such frames under
	// way. Their hooks (wire.Sent.Done) are settled at the final outcome
	// with Delivered, once no write is under way.
	Delivered bool
	Writing   int
}

// Finished reports whether the task has been settled.
func (t *Task) Finished() bool { return t.finished.Load() }

// Settle delivers r unless the task was settled already, and reports
// whether this call did. It stops the task's own context watch first.
func (t *Task) Settle(r Result) bool {
	if !t.finished.CompareAndSwap(false, true) {
		return false
	}
	if t.Sched.Stop != nil {
		t.Sched.Stop()
	}
	if t.Sink != nil {
		t.Sink.TaskDone(r)
	} else {
		t.Done(r)
	}
	return true
}

// Result is the outcome of a Task.
type Result struct {
	// Data is the encoded result on success; for a chunk that failed part
	// way, the encoded slice of the N results before the failing item.
	Data []byte
	N    int
	// Res are the resources that came back with Data (a result holding
	// resources), for its decoder; the receiver must Close it. Nil when
	// there are none.
	Res *wire.Files
	// Err is nil on success; a *RemoteError for the function's own error or
	// panic; otherwise an error matching ErrWorkerDied, ErrTimeout,
	// ErrTooLarge, ErrPoolClosed, ErrPoolBroken or a context's error.
	Err error
	// Partial is set when a chunk failed part way (Data, N are valid).
	Partial bool
	// Outcome classifies the result; the engine's Stats count each task
	// once, under this outcome.
	Outcome Outcome
}

// Outcome is a task's terminal outcome.
type Outcome uint8

// The outcomes. Exactly one describes each settled task.
const (
	Done      Outcome = iota // the function returned a result
	Failed                   // the function returned an error or panicked, or the result could not be delivered (too large)
	Died                     // its worker died while running it
	TimedOut                 // it exceeded its time limit
	Cancelled                // Cancel, the caller's context (cancelled or past its deadline), or a shutdown
)

var outcomeNames = [...]string{"done", "failed", "died", "timed out", "cancelled"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Stats is a snapshot of an engine's counters. Each task is counted once,
// under its final outcome: Done, Failed, Died, TimedOut or Cancelled.
type Stats struct {
	Workers   int   // live workers
	Done      int64 // tasks (chunks count once) that succeeded
	Items     int64 // items in succeeded tasks
	Failed    int64 // the function returned an error or panicked
	Died      int64 // lost with their worker
	TimedOut  int64 // exceeded their time limit
	Cancelled int64 // cancelled (Cancel, a context, a shutdown)
	Retried   int64 // re-runs after a death or timeout (not outcomes)
	Restarts  int64 // workers started after the engine's start
	Recycled  int64 // workers retired by task count, memory or age
	Queued    int   // tasks waiting for a worker
	// Backoff is the current delay before the next worker start, non-zero
	// while worker starts back off after a crash loop.
	Backoff time.Duration
	// Duplicates counts results that arrived for tasks already settled
	// (a remote engine's redeliveries); zero locally.
	Duplicates int64
	PerWorker  []WorkerStats
	// PerHost is a remote engine's per-host counts; nil locally.
	PerHost []HostStats
}

// WorkerStats describes one live worker.
type WorkerStats struct {
	Name    string
	Pid     int
	Host    string        // empty for local workers
	Tasks   int64         // tasks answered
	Busy    time.Duration // time spent running tasks, as measured by the worker
	Age     time.Duration
	Holding int    // tasks assigned and not yet answered
	RSS     uint64 // resident bytes (0 where it cannot be read)
}

// HostStats describes one host of a remote engine.
type HostStats struct {
	Host    string
	Workers int
	Done    int64
	Failed  int64
	Died    int64
}
