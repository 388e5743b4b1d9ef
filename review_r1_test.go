package multiproc_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// startBlocker occupies the only worker of w with a task that runs until
// the test ends, and returns once it runs.
func startBlocker(t *testing.T, w multiproc.Workers) {
	t.Helper()
	bctx, bcancel := context.WithCancel(ctxT(t))
	t.Cleanup(bcancel)
	marker := filepath.Join(t.TempDir(), "started")
	multiproc.ApplyAsync(bctx, w, block, blockArg{Marker: marker})
	testutil.WaitFor(t, deadline, func() bool { _, err := os.Stat(marker); return err == nil }, "blocker started")
}

// TestReviewQueuedExcludesCancelled: Stats counts each task once, under its
// final outcome, and Queued is "tasks waiting for a worker". Queued tasks
// whose context was cancelled are counted Cancelled at once but stayed in
// Queued until a worker freed up, so Done+...+Cancelled+Queued counted them
// twice and a caller polling Queued == 0 to see the pool drained waited for
// the busy worker.
func TestReviewQueuedExcludesCancelled(t *testing.T) {
	p := newPool(t, 1)
	ctx := ctxT(t)
	startBlocker(t, p)
	qctx, qcancel := context.WithCancel(ctx)
	var rs []*multiproc.AsyncResult[int]
	for i := range 3 {
		rs = append(rs, multiproc.ApplyAsync(qctx, p, square, i))
	}
	qcancel()
	for i, r := range rs {
		if _, err := r.Get(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("task %d: %v, want context.Canceled", i, err)
		}
	}
	testutil.WaitFor(t, deadline, func() bool { return p.Stats().Cancelled == 3 }, "3 tasks cancelled")
	if s := p.Stats(); s.Queued != 0 {
		t.Fatalf("Stats: Cancelled %d and Queued %d: the cancelled tasks are counted twice (want Queued 0)", s.Cancelled, s.Queued)
	}
}

// TestReviewWaitFirstExceptionIgnoresCancelled: Python's wait with
// FIRST_EXCEPTION returns when a future raised, not when one was cancelled
// (CPython: "not f.cancelled() and f.exception() is not None"). Wait
// returned at once because a cancelled future counted as failed.
func TestReviewWaitFirstExceptionIgnoresCancelled(t *testing.T) {
	ctx := ctxT(t)
	ex, err := multiproc.NewExecutor(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.ShutdownContext(context.Background(), true) })
	startBlocker(t, ex)
	running := multiproc.Submit(ctx, ex, square, 2) // queued behind the blocker
	cancelled := multiproc.Submit(ctx, ex, square, 3)
	if !cancelled.Cancel() {
		t.Fatal("Cancel of a queued future returned false")
	}
	wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer wcancel()
	done, notDone, err := multiproc.Wait(wctx, []*multiproc.Future[int]{running, cancelled}, multiproc.FirstException)
	if err == nil {
		t.Fatalf("Wait(FirstException) returned (done %d, not done %d) because a future was cancelled; want it to wait (no future raised)", len(done), len(notDone))
	}
	if !errors.Is(err, context.DeadlineExceeded) || len(done) != 1 || len(notDone) != 1 {
		t.Fatalf("Wait: done %d, not done %d, %v; want 1, 1, DeadlineExceeded", len(done), len(notDone), err)
	}
}

// TestReviewResultTooLargeAs: ErrTooLarge's doc says "errors that carry
// the sizes are *TooLargeError" and TooLargeError's says "Get one with
// errors.As". A result over MaxMessageSize (detected in the worker) gives
// an error that carries the sizes in its text but errors.As finds no
// *TooLargeError, and the text names an internal type
// ("*errs.TooLargeError").
func TestReviewResultTooLargeAs(t *testing.T) {
	const limit = 4096
	p := newPool(t, 1, multiproc.MaxMessageSize(limit))
	ctx := ctxT(t)
	_, err := multiproc.Apply(ctx, p, poolBigResult, limit+1)
	if !errors.Is(err, multiproc.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	var tl *multiproc.TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("errors.As(%q, *TooLargeError) = false", err)
	}
	if tl.What != "result" || tl.Limit != limit || tl.Size <= limit {
		t.Fatalf("TooLargeError %+v, want What result, Limit %d, Size > limit", *tl, limit)
	}
	if strings.Contains(err.Error(), "errs.") {
		t.Fatalf("error %q names an internal type", err)
	}
}

// TestReviewDeadlineWhileRunningIsCancelled: a task whose context reaches
// its deadline while it runs is cancelled (Future.Cancelled true, Stats
// Cancelled), whichever comes first: the parent's context timer, or the
// worker's answer (the deadline travels to the worker as a budget, so a
// task that honours its context returns DeadlineExceeded at about the same
// moment). When the answer won, claimResultLocked saw ctx.Err() == nil and
// counted the task Failed (TestOneOutcomePerTask/deadline_while_running is
// flaky for this reason; the skipped TestFutureCancelledByDeadline too).
func TestReviewDeadlineWhileRunningIsCancelled(t *testing.T) {
	ctx := ctxT(t)
	x, err := multiproc.NewExecutor(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.ShutdownContext(context.Background(), true) })
	const rounds = 20
	for i := range rounds {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		f := multiproc.Submit(dctx, x, block, blockArg{})
		_, err := f.Result(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("round %d: got %v, want context.DeadlineExceeded", i, err)
		}
		if !f.Cancelled() {
			t.Fatalf("round %d: Cancelled() = false after the context's deadline (error %q), want true", i, err)
		}
	}
	if s := x.Stats(); s.Cancelled != rounds || s.Failed != 0 {
		t.Fatalf("Stats: Cancelled %d, Failed %d; want %d, 0", s.Cancelled, s.Failed, rounds)
	}
}

// TestReviewImapYieldsWhileInputWaits: Imap "yields the results in order
// as they become available", and Python's imap feeds its input from
// another thread, so a result is delivered while the input iterator waits.
// Here a result is yielded only after the next input item arrives, so an
// input that waits for the consumer (a feedback loop: the next request
// depends on the last answer, or a channel fed by whoever reads the
// results) deadlocks. The input below gives up after 3s instead of hanging.
func TestReviewImapYieldsWhileInputWaits(t *testing.T) {
	p := newPool(t, 1)
	ctx := ctxT(t)
	got := make(chan int, 1)
	timedOut := false
	seq := func(yield func(int) bool) {
		for i := 1; i <= 3; i++ {
			if !yield(i) {
				return
			}
			select {
			case <-got: // the consumer saw the result of i
			case <-time.After(3 * time.Second):
				timedOut = true
				return
			}
		}
	}
	var out []int
	for v, err := range multiproc.Imap(ctx, p, square, seq) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
		got <- v
	}
	if timedOut {
		t.Fatalf("the input waited 3s for a result Imap had but did not yield (got %v so far)", out)
	}
	if len(out) != 3 {
		t.Fatalf("got %v, want [1 4 9]", out)
	}
}

// TestReviewCloseContextBoundsCallbacks: CloseContext is "Close bounded by
// ctx", Join "returns an error wrapping ctx.Err()" if ctx ends first, and
// ShutdownContext is bounded by ctx; but all three wait for pending
// callbacks without looking at ctx, so one slow callback makes them block
// past their deadline.
func TestReviewCloseContextBoundsCallbacks(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(ctx context.Context, w multiproc.Workers) error
	}{
		{"Pool.CloseContext", func(ctx context.Context, w multiproc.Workers) error { return w.(*multiproc.Pool).CloseContext(ctx) }},
		{"Pool.Join", func(ctx context.Context, w multiproc.Workers) error {
			p := w.(*multiproc.Pool)
			go p.Close()
			for { // Join needs the Close under way: wait until intake stopped
				if _, err := multiproc.Apply(ctx, p, square, 1); errors.Is(err, multiproc.ErrPoolClosed) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			return p.Join(ctx)
		}},
		{"Executor.ShutdownContext", func(ctx context.Context, w multiproc.Workers) error {
			return w.(*multiproc.Executor).ShutdownContext(ctx, false)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			var w multiproc.Workers
			if strings.HasPrefix(tc.name, "Pool") {
				w = newPool(t, 1)
			} else {
				x, err := multiproc.NewExecutor(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				w = x
			}
			release := make(chan struct{})
			entered := make(chan struct{})
			defer close(release) // let the callback go, so the pool can be reaped
			multiproc.ApplyAsync(ctx, w, square, 2).OnResult(func(int) {
				close(entered)
				select {
				case <-release:
				case <-time.After(deadline):
				}
			})
			<-entered
			sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			res := make(chan error, 1)
			go func() { res <- tc.stop(sctx, w) }()
			select {
			case err := <-res:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("returned %v, want an error wrapping context.DeadlineExceeded", err)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("still waiting for the callback 3s after its ctx's 200ms deadline")
			}
		})
	}
}

// goexit ends its goroutine in the worker the way t.FailNow or a helper
// that calls runtime.Goexit would.
var goexit = multiproc.Register("test.review.goexit", func(context.Context, int) (int, error) {
	runtime.Goexit()
	return 0, nil
})

// TestReviewGoexitInTask: a task that calls runtime.Goexit never answered:
// the worker's loop ended with it, the worker lived on, and Apply without
// a deadline waited forever (here it gives up after 5s). The worker must
// exit so that the task fails with ErrWorkerDied like any other death.
func TestReviewGoexitInTask(t *testing.T) {
	p := newPool(t, 1)
	ctx, cancel := context.WithTimeout(ctxT(t), 5*time.Second)
	defer cancel()
	_, err := multiproc.Apply(ctx, p, goexit, 1)
	if !errors.Is(err, multiproc.ErrWorkerDied) {
		t.Fatalf("got %v, want ErrWorkerDied", err)
	}
	if v, err := multiproc.Apply(ctxT(t), p, square, 3); err != nil || v != 9 {
		t.Fatalf("next task: %d, %v", v, err)
	}
}

// TestReviewGoexitInProcess: a Process whose target calls runtime.Goexit
// (on the child's main goroutine) never ended: the child lived on, Join
// without a deadline waited forever. It must end and Join report it.
func TestReviewGoexitInProcess(t *testing.T) {
	p := multiproc.NewProcess(goexit, 1)
	if err := p.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	defer func() { p.Kill(); p.Join(context.Background()) }()
	ctx, cancel := context.WithTimeout(ctxT(t), 5*time.Second)
	defer cancel()
	err := p.Join(ctx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Join: %v; want the child to end with an error", err)
	}
	if !strings.Contains(err.Error(), "Goexit") {
		t.Fatalf("Join: %v; want it to say the target called runtime.Goexit", err)
	}
}

// TestReviewGoexitInInitializer: an initializer that calls runtime.Goexit
// left its worker alive and silent, so NewPool waited for its whole ctx.
func TestReviewGoexitInInitializer(t *testing.T) {
	ctx, cancel := context.WithTimeout(ctxT(t), deadline)
	defer cancel()
	p, err := multiproc.NewPool(ctx, 1, multiproc.Initializer(goexit, 1))
	if err == nil {
		p.Terminate()
		t.Fatal("NewPool succeeded with an initializer that never returned")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NewPool: %v; want it to fail when the worker ends, not at the deadline", err)
	}
}

// TestReviewBrokenPoolNoBackoff: Stats.Backoff is "the delay before the
// next worker start"; a broken pool starts no worker any more, yet it kept
// reporting the last back-off.
func TestReviewBrokenPoolNoBackoff(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "fail-from-now-on")
	p := newPool(t, 2, multiproc.Initializer(setInit, marker))
	ctx := ctxT(t)
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, w := range p.Stats().PerWorker {
		syscall.Kill(w.Pid, syscall.SIGKILL)
	}
	testutil.WaitFor(t, deadline, func() bool {
		_, err := multiproc.Apply(ctx, p, square, 1)
		return errors.Is(err, multiproc.ErrPoolBroken)
	}, "the pool broken")
	if s := p.Stats(); s.Backoff != 0 {
		t.Fatalf("broken pool: Stats.Backoff = %v, want 0 (no start is coming)", s.Backoff)
	}
}
