package core

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/multiproc-go/multiproc/internal/registry"
)

// Task is one unit of work: a registered function and its encoded
// argument (or slice of arguments, for a chunk).
type Task struct {
	Fn      *registry.Entry
	Chunk   bool   // Payload encodes a slice; the result is a slice
	Payload []byte // encoded argument(s)
	Items   int    // number of items (1 unless Chunk), for statistics
	// Ctx cancels the task: a queued task is dropped, a running one is
	// asked to stop (its context in the worker is cancelled) and its worker
	// is killed if it has not stopped within the pool's grace period.
	Ctx context.Context
	// Timeout, if positive, overrides the pool's default task timeout.
	Timeout time.Duration
	// Done is called exactly once with the outcome, from a pool goroutine;
	// it must not block. The Result's Data aliases a buffer that is reused
	// after Done returns.
	Done func(Result)
	// Sink, if set, is used instead of Done: a caller that embeds the Task
	// in its own state implements it without allocating a closure.
	Sink interface{ TaskDone(Result) }

	finished atomic.Bool
	stop     func() bool // stops a context watch of this task alone
	watched  bool        // in a shared context watch (p.mu)

	// Protected by the pool's mutex.
	w          *worker // worker holding the task, nil while queued
	attempts   int
	cancelled  bool // ctx ended: the caller was answered already
	timedOut   bool
	cancelSent bool
}

// Result is the outcome of a Task.
type Result struct {
	// Data is the encoded result for statusOK; for a chunk that failed part
	// way, the encoded slice of the N results before the failing item.
	Data []byte
	N    int
	// Err is nil on success; a *errs.RemoteError for the function's own
	// error or panic; otherwise an error matching ErrWorkerDied,
	// ErrTimeout, ErrPoolClosed, ErrPoolBroken or the context's error.
	Err error
	// Partial is set when a chunk failed part way (Data, N are valid).
	Partial bool
}

// finish delivers r unless the task was finished already.
func (t *Task) finish(p *Pool, r Result) {
	if !t.finished.CompareAndSwap(false, true) {
		return
	}
	if t.stop != nil {
		t.stop()
	}
	if t.Sink != nil {
		t.Sink.TaskDone(r)
	} else {
		t.Done(r)
	}
	p.taskDone(t)
}
