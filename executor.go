package multiproc

import (
	"context"
	"fmt"
	"iter"
	"reflect"
	"sync"

	"github.com/multiproc-go/multiproc/internal/core"
	eng "github.com/multiproc-go/multiproc/internal/engine"
)

// Executor is Python's concurrent.futures.ProcessPoolExecutor: submit work,
// get [Future]s. It runs on the same worker core as [Pool] (so the same
// guarantees hold: a dead worker fails only its task and is replaced, where
// Python's executor breaks for good) and accepts the same options. Submit
// with [Submit]; Python's executor.map is [Imap] (lazy, bounded prefetch).
type Executor struct {
	e        *engine
	shutOnce sync.Once
	shutErr  error         // written before shutDone is closed
	shutDone chan struct{} // closed when the background close returned
}

func (x *Executor) engine() *engine { return x.e }

// NewExecutor starts an executor with n worker processes (0 means
// [CPUCount]); see [NewPool] for the start-up contract.
func NewExecutor(ctx context.Context, n int, opts ...PoolOption) (*Executor, error) {
	e, err := newEngine(ctx, n, opts)
	if err != nil {
		return nil, err
	}
	e.closedErr = errShutDown
	return &Executor{e: e, shutDone: make(chan struct{})}, nil
}

// Shutdown stops the executor from taking work, like Python's shutdown. With
// cancelFutures, futures not yet handed to a worker process are cancelled
// (see [Future.Running]). With wait, it returns once all running work has
// finished, the workers have exited and the pending done callbacks have
// run; without, the shutdown goes on in the background and a later
// Shutdown(true, ...) waits for it. Called with wait from a done callback
// (see [Future.AddDoneCallback]), it waits for the work and the workers
// but not for that callback or those queued behind it, which run once it
// returns. Submit after Shutdown fails with an error saying the executor
// was shut down that matches [ErrPoolClosed]. It is safe to call more than
// once, and concurrently.
func (x *Executor) Shutdown(wait, cancelFutures bool) error {
	x.startShutdown(cancelFutures)
	if !wait {
		return nil
	}
	if x.e.cb.onLoop() {
		// The background close waits for every callback, this one
		// included: wait for the work and workers here instead (close is
		// idempotent and, called from a callback, skips the callbacks).
		return x.e.close()
	}
	<-x.shutDone
	return x.shutErr
}

// ShutdownContext is Shutdown(true, cancelFutures) bounded by ctx: if ctx
// ends before the running work is done, it proceeds as a Pool's Terminate
// (unfinished futures fail with an error matching [ErrPoolClosed], the
// workers are killed and reaped) and returns an error wrapping ctx.Err().
func (x *Executor) ShutdownContext(ctx context.Context, cancelFutures bool) error {
	x.startShutdown(cancelFutures)
	return x.e.closeContext(ctx)
}

// startShutdown stops intake, cancels what no worker has if asked, and
// starts the background close once.
func (x *Executor) startShutdown(cancelFutures bool) {
	// Submit fails from here on, so nothing slips in between the refusal
	// and the cancellation below.
	x.e.core.StartClose()
	if cancelFutures {
		x.e.core.CancelPending(fmt.Errorf("multiproc: executor shut down: %w", context.Canceled))
	}
	x.shutOnce.Do(func() {
		go func() {
			x.shutErr = x.e.close()
			close(x.shutDone)
		}()
	})
}

// errShutDown is the error of work submitted to an executor after its
// Shutdown: it says so in the executor's terms, and matches ErrPoolClosed
// like the error of a closed pool, so one errors.Is serves both.
var errShutDown error = shutDownError{}

type shutDownError struct{}

func (shutDownError) Error() string { return "multiproc: executor shut down" }
func (shutDownError) Unwrap() error { return ErrPoolClosed }

// Close is Shutdown(true, false), so an Executor can be deferred like a Pool.
func (x *Executor) Close() error { return x.Shutdown(true, false) }

// Stats returns a snapshot of the executor's counters.
func (x *Executor) Stats() Stats { return statsOf(x.e.core.Stats()) }

// Future is the pending result of [Submit]: Python's concurrent.futures.Future.
// Its methods are safe for concurrent use.
type Future[T any] struct {
	p    *promise[T]
	t    *core.Task
	core eng.Engine
}

// Submit schedules f(arg) on w and returns its Future: Python's
// executor.submit. It never blocks on the work; an argument that cannot be
// encoded, an unregistered function or a closed executor make the future
// fail at once (after [Executor.Shutdown], with an error saying so that
// matches [ErrPoolClosed]). Cancelling ctx cancels the task, like [Future.Cancel].
func Submit[In, Out any](ctx context.Context, w Workers, f Func[In, Out], arg In, opts ...CallOption) *Future[Out] {
	e := w.engine()
	a := new(struct {
		f Future[Out]
		c call[Out]
	})
	a.f = Future[Out]{p: &a.c.p, t: &a.c.t, core: e.core}
	startCall(&a.c, ctx, e, f, arg, callOptions(opts), false)
	return &a.f
}

// ID is the task's id on a backend that keeps results by id (a cluster
// pool's results bucket, see the cluster module); empty on a local pool and
// for a future that failed before it was submitted.
func (f *Future[T]) ID() string { return f.t.ID }

// Result waits for the outcome and returns it. A cancelled future returns an
// error matching context.Canceled. If ctx ends first it returns an error
// wrapping ctx.Err() and the task goes on.
func (f *Future[T]) Result(ctx context.Context) (T, error) { return f.p.get(ctx) }

// Exception waits for the outcome and returns only its error (nil on
// success), like Python's Future.exception.
func (f *Future[T]) Exception(ctx context.Context) error {
	if err := f.p.wait(ctx); err != nil {
		return err
	}
	return f.p.err
}

// Done reports whether the future has an outcome (result, error or cancelled).
func (f *Future[T]) Done() bool { return f.p.ready() }

// Running reports whether the task has been handed to a worker process and
// has not finished: it runs, or waits in that worker's pipeline (CPython's
// executor likewise calls the tasks in its call queue running).
func (f *Future[T]) Running() bool { return f.t.Fn != nil && f.core.Running(f.t) }

// Cancel cancels the task unless it already finished (or already ran and
// its result is on the way), and reports whether it did. Unlike Python's, it also stops a running task: its context in the
// worker is cancelled, and the worker is killed if it has not stopped
// within the pool's grace period. The future then fails with an error
// matching context.Canceled.
func (f *Future[T]) Cancel() bool {
	if f.t.Fn == nil || f.p.ready() {
		return false // never submitted, or finished
	}
	return f.core.Cancel(f.t, fmt.Errorf("multiproc: future of %q cancelled: %w", f.t.Fn.Name, context.Canceled))
}

// Cancelled reports whether the future was cancelled (by Cancel, its
// context, or a Shutdown that cancelled futures).
func (f *Future[T]) Cancelled() bool {
	if !f.p.ready() {
		return false
	}
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	return f.p.cancelled
}

// AddDoneCallback arranges for fn to run with the future once it is done
// (at once if it is), on the pool's callback goroutine: callbacks run one
// at a time, in completion order, after the outcome is ready (so fn may
// call f.Result). fn may call [Executor.Shutdown]; a panic in fn is logged
// and the other callbacks still run (see [AsyncResult.OnResult]).
func (f *Future[T]) AddDoneCallback(fn func(*Future[T])) { f.p.then(func() { fn(f) }) }

func (f *Future[T]) doneChan() <-chan struct{} { return f.p.doneChan() }
func (f *Future[T]) failed() bool              { return f.p.failed() }

// Awaitable is a pending outcome that [AsCompleted] and [Wait] can watch:
// a *Future[T] or an *AsyncResult[T] of any T.
type Awaitable interface {
	doneChan() <-chan struct{}
	failed() bool
}

// AsCompleted yields the given futures as they complete, in completion
// order: Python's as_completed. A future given more than once is yielded
// once. If ctx ends first it yields (zero, err) with err wrapping ctx.Err()
// and stops.
func AsCompleted[F Awaitable](ctx context.Context, fs ...F) iter.Seq2[F, error] {
	return func(yield func(F, error) bool) {
		left := distinct(fs)
		for len(left) > 0 {
			i, err := waitAny(ctx, left)
			if err != nil {
				var zero F
				yield(zero, fmt.Errorf("multiproc: as completed: %w", err))
				return
			}
			f := left[i]
			left = append(left[:i], left[i+1:]...)
			if !yield(f, nil) {
				return
			}
		}
	}
}

// distinct returns a copy of fs without repeats, in first-seen order, as
// CPython's wait and as_completed treat their argument as a set. F need
// not be comparable, so a future is known by its done channel, which is
// its own.
func distinct[F Awaitable](fs []F) []F {
	out := make([]F, 0, len(fs))
	seen := make(map[<-chan struct{}]bool, len(fs))
	for _, f := range fs {
		if d := f.doneChan(); !seen[d] {
			seen[d] = true
			out = append(out, f)
		}
	}
	return out
}

// waitAny returns the index of a done entry, waiting for one.
func waitAny[F Awaitable](ctx context.Context, fs []F) (int, error) {
	for i, f := range fs {
		select {
		case <-f.doneChan():
			return i, nil
		default:
		}
	}
	cases := make([]reflect.SelectCase, 0, len(fs)+1)
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
	for _, f := range fs {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(f.doneChan())})
	}
	i, _, _ := reflect.Select(cases)
	if i == 0 {
		return -1, ctx.Err()
	}
	return i - 1, nil
}

// WaitCondition says when [Wait] returns.
type WaitCondition int

const (
	// AllCompleted: when every future is done.
	AllCompleted WaitCondition = iota
	// FirstCompleted: when any future is done.
	FirstCompleted
	// FirstException: when any future fails, or all are done. As in
	// Python, a cancelled future is done but has not failed.
	FirstException
)

// Wait waits for the futures under the condition and returns them split in
// done and not done: Python's concurrent.futures.wait. Each distinct
// future appears once, in the order first given, however often fs holds
// it. If ctx ends first it returns the split at that moment and an error
// wrapping ctx.Err().
func Wait[F Awaitable](ctx context.Context, fs []F, cond WaitCondition) (done, notDone []F, err error) {
	fs = distinct(fs)
	split := func() {
		done, notDone = done[:0], notDone[:0]
		for _, f := range fs {
			select {
			case <-f.doneChan():
				done = append(done, f)
			default:
				notDone = append(notDone, f)
			}
		}
	}
	for {
		split()
		switch {
		case len(notDone) == 0:
			return done, notDone, nil
		case cond == FirstCompleted && len(done) > 0:
			return done, notDone, nil
		case cond == FirstException:
			for _, f := range done {
				if f.failed() {
					return done, notDone, nil
				}
			}
		}
		if _, werr := waitAny(ctx, notDone); werr != nil {
			split()
			return done, notDone, fmt.Errorf("multiproc: wait: %w", werr)
		}
	}
}
