package multiproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

var panics = multiproc.Register("test.panics", func(context.Context, int) (int, error) { panic("task panics") })

// outcomes are the terminal-outcome counters of Stats, plus Retried.
type outcomes struct{ Done, Failed, Died, TimedOut, Cancelled, Retried int64 }

func outcomesOf(s multiproc.Stats) outcomes {
	return outcomes{s.Done, s.Failed, s.Died, s.TimedOut, s.Cancelled, s.Retried}
}

func (o outcomes) settled() int64 { return o.Done + o.Failed + o.Died + o.TimedOut + o.Cancelled }

// quiet reports whether s shows no work left anywhere: nothing queued and
// nothing held by a worker, so no late reply (a cancelled task's answer,
// say) can still change the counters.
func quiet(s multiproc.Stats) bool {
	for _, w := range s.PerWorker {
		if w.Holding > 0 {
			return false
		}
	}
	return s.Queued == 0
}

// waitStarted waits until a block task with this marker runs in a worker.
func waitStarted(t *testing.T, marker string) {
	t.Helper()
	testutil.WaitFor(t, deadline, func() bool { _, err := os.Stat(marker); return err == nil }, "task started")
}

// TestOneOutcomePerTask guards the accounting rule: every task ends with
// exactly one terminal outcome, its error says the same, and Stats counts
// it once, under that outcome (a retry counts in Retried only). Before, a
// task cancelled while running counted as both Failed (its worker's reply)
// and Cancelled, and a death or timeout that was retried counted as an
// outcome as well as a retry.
func TestOneOutcomePerTask(t *testing.T) {
	grace := multiproc.Grace(100 * time.Millisecond)
	for _, tc := range []struct {
		name  string
		size  int
		opts  []multiproc.PoolOption
		tasks int64 // submitted
		run   func(t *testing.T, ctx context.Context, p *multiproc.Pool) error
		is    error // what the (last) task's error matches; nil: success
		want  outcomes
	}{
		{name: "done", tasks: 1, want: outcomes{Done: 1},
			run: func(t *testing.T, ctx context.Context, p *multiproc.Pool) error {
				_, err := multiproc.Apply(ctx, p, square, 3)
				return err
			}},
		{name: "error", tasks: 1, is: errTest, want: outcomes{Failed: 1},
			run: func(t *testing.T, ctx context.Context, p *multiproc.Pool) error {
				_, err := multiproc.Apply(ctx, p, fail, 3)
				return err
			}},
		{name: "panic", tasks: 1, want: outcomes{Failed: 1},
			run: func(t *testing.T, ctx context.Context, p *multiproc.Pool) error {
				_, err := multiproc.Apply(ctx, p, panics, 0)
				var re *multiproc.RemoteError
				if !errors.As(err, &re) {
					return fmt.Errorf("got %w, want a *RemoteError", err)
				}
				return nil
			}},
		{name: "died", tasks: 1, is: multiproc.ErrWorkerDied, want: outcomes{Died: 1},
			run: func(t *testing.T, ctx context.Context, p *multiproc.Pool) error {
				_, err := multiproc.Apply(ctx, p, die, "exit")
				return err
			}},
		{name: "died, retried, done", tasks: 1, opts: []multiproc.PoolOption{multiproc.Retries(1, multiproc.ErrWorkerDied)},
			want: outcomes{Done: 1, Retried: 1},
			run: func(t *testing.T, ctx context.Context, p *multiproc.Pool) error {
				_, err := multiproc.Apply(ctx, p, dieOnce, filepath.Join(t.TempDir(), "m"))
				return err
			}},
		{name: "timed out", tasks: 1, opts: []multiproc.PoolOption{grace}, is: multiproc.ErrTimeout, want: outcomes{TimedOut: 1},
			run: func(t *testing.T, ctx context.Context, p *multiproc.Pool) error {
				_, err := multiproc.Apply(ctx, p, block, blockArg{Stubborn: true}, multiproc.Timeout(50*time.Millisecond))
				return err
			}},
		{name: "timed out twice", tasks: 1, opts: []multiproc.PoolOption{grace, multiproc.Retries(1, multiproc.ErrTimeout), multiproc.TaskTimeout(50 * time.Millisecond)},
			is: multiproc.ErrTimeout, want: outcomes{TimedOut: 1, Retried: 1},
			run: func(t *testing.T, ctx context.Context, p *multiproc.Pool) error {
				_, err := multiproc.Apply(ctx, p, block, blockArg{})
				return err
			}},
		{name: "cancelled while running", tasks: 1, opts: []multiproc.PoolOption{grace}, is: context.Canceled, want: outcomes{Cancelled: 1},
			run: func(t *testing.T, ctx context.Context, p *multiproc.Pool) error {
				// The task returns ctx.Err() when told: that reply must not
				// count as a failure.
				marker := filepath.Join(t.TempDir(), "started")
				cctx, cancel := context.WithCancel(ctx)
				r := multiproc.ApplyAsync(cctx, p, block, blockArg{Marker: marker})
				waitStarted(t, marker)
				cancel()
				_, err := r.Get(ctx)
				return err
			}},
		{name: "cancelled, stubborn", tasks: 1, opts: []multiproc.PoolOption{grace}, is: context.Canceled, want: outcomes{Cancelled: 1},
			run: func(t *testing.T, ctx context.Context, p *multiproc.Pool) error {
				// Killed after the grace period: not a death of its own.
				marker := filepath.Join(t.TempDir(), "started")
				cctx, cancel := context.WithCancel(ctx)
				r := multiproc.ApplyAsync(cctx, p, block, blockArg{Marker: marker, Stubborn: true})
				waitStarted(t, marker)
				cancel()
				_, err := r.Get(ctx)
				testutil.WaitFor(t, deadline, func() bool { return p.Stats().Restarts == 1 }, "the stubborn worker replaced")
				return err
			}},
		{name: "deadline while running", tasks: 1, is: context.DeadlineExceeded, want: outcomes{Cancelled: 1},
			run: func(t *testing.T, ctx context.Context, p *multiproc.Pool) error {
				dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				defer cancel()
				_, err := multiproc.Apply(dctx, p, block, blockArg{})
				return err
			}},
		{name: "deadline while queued", tasks: 2, is: context.DeadlineExceeded, want: outcomes{Cancelled: 2},
			run: func(t *testing.T, ctx context.Context, p *multiproc.Pool) error {
				marker := filepath.Join(t.TempDir(), "started")
				bctx, stop := context.WithCancel(ctx)
				defer stop()
				blocker := multiproc.ApplyAsync(bctx, p, block, blockArg{Marker: marker})
				waitStarted(t, marker)
				dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
				_, err := multiproc.Apply(dctx, p, touch, filepath.Join(t.TempDir(), "never"))
				// Apply returns at the deadline; the pool's own watch of the
				// context cancels the task a moment later. Keep the worker
				// busy until it has, or the task could run first.
				testutil.WaitFor(t, deadline, func() bool { return p.Stats().Cancelled == 1 }, "the queued task cancelled")
				stop()
				blocker.Wait(ctx)
				return err
			}},
		{name: "terminated", tasks: 1, is: multiproc.ErrPoolClosed, want: outcomes{Cancelled: 1},
			run: func(t *testing.T, ctx context.Context, p *multiproc.Pool) error {
				marker := filepath.Join(t.TempDir(), "started")
				r := multiproc.ApplyAsync(ctx, p, block, blockArg{Marker: marker, Stubborn: true})
				waitStarted(t, marker)
				p.Terminate()
				_, err := r.Get(ctx)
				return err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, 1, tc.opts...)
			ctx := ctxT(t)
			err := tc.run(t, ctx, p)
			if tc.is == nil && err != nil || tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("task error %v, want %v", err, tc.is)
			}
			var got outcomes
			testutil.WaitFor(t, deadline, func() bool {
				s := p.Stats()
				got = outcomesOf(s)
				return got.settled() >= tc.tasks && quiet(s)
			}, "every task settled")
			if got != tc.want {
				t.Fatalf("Stats outcomes %+v, want %+v", got, tc.want)
			}
			if got.settled() != tc.tasks {
				t.Fatalf("Done+Failed+Died+TimedOut+Cancelled = %d, want %d (tasks submitted)", got.settled(), tc.tasks)
			}
		})
	}
}

// TestOneOutcomePerFuture is TestOneOutcomePerTask for an Executor's ways
// of cancelling: Future.Cancel and a Shutdown that cancels futures.
func TestOneOutcomePerFuture(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(x *multiproc.Executor, queued []*multiproc.Future[string])
	}{
		{"Future.Cancel", func(_ *multiproc.Executor, queued []*multiproc.Future[string]) {
			for _, f := range queued {
				f.Cancel()
			}
		}},
		{"Shutdown cancelling futures", func(x *multiproc.Executor, _ []*multiproc.Future[string]) {
			x.Shutdown(false, true)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			x, err := multiproc.NewExecutor(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { x.Shutdown(true, true) })
			dir := t.TempDir()
			marker := filepath.Join(dir, "started")
			bctx, stopBlocker := context.WithCancel(ctx)
			defer stopBlocker()
			blocker := multiproc.Submit(bctx, x, block, blockArg{Marker: marker})
			waitStarted(t, marker)
			var queued []*multiproc.Future[string]
			for i := range 3 {
				queued = append(queued, multiproc.Submit(ctx, x, touch, filepath.Join(dir, fmt.Sprint(i))))
			}
			tc.stop(x, queued)
			for i, f := range queued {
				if _, err := f.Result(ctx); !errors.Is(err, context.Canceled) || !f.Cancelled() {
					t.Fatalf("queued future %d: %v (Cancelled() %v), want cancelled", i, err, f.Cancelled())
				}
			}
			stopBlocker()
			if _, err := blocker.Result(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("blocker: %v, want context.Canceled", err)
			}
			const tasks = 4
			var got outcomes
			testutil.WaitFor(t, deadline, func() bool {
				s := x.Stats()
				got = outcomesOf(s)
				return got.settled() >= tasks && quiet(s)
			}, "every task settled")
			if want := (outcomes{Cancelled: tasks}); got != want {
				t.Fatalf("Stats outcomes %+v, want %+v", got, want)
			}
		})
	}
}
