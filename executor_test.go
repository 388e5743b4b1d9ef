package multiproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

var panicky = multiproc.Register("test.panicky", func(_ context.Context, x int) (int, error) {
	if x < 0 {
		var m map[string]int
		m["boom"] = x // a nil-map write: a runtime panic
	}
	return x, nil
})

func newExecutor(t *testing.T, n int, opts ...multiproc.PoolOption) *multiproc.Executor {
	t.Helper()
	ex, err := multiproc.NewExecutor(ctxT(t), n, opts...)
	if err != nil {
		t.Fatalf("NewExecutor: %v", err)
	}
	t.Cleanup(func() { ex.Shutdown(true, true) })
	return ex
}

func TestSubmitAndPanic(t *testing.T) {
	ex := newExecutor(t, 2)
	ctx := ctxT(t)
	ok := multiproc.Submit(ctx, ex, panicky, 5)
	bad := multiproc.Submit(ctx, ex, panicky, -1)
	if v, err := ok.Result(ctx); err != nil || v != 5 {
		t.Fatalf("ok: %v %v", v, err)
	}
	err := bad.Exception(ctx)
	var re *multiproc.RemoteError
	if !errors.As(err, &re) || !re.Panic || !strings.Contains(re.Message, "assignment to entry in nil map") {
		t.Fatalf("panic: got %v", err)
	}
	if !strings.Contains(re.Stack, "executor_test.go") {
		t.Fatalf("remote stack does not show the panicking function:\n%s", re.Stack)
	}
	if !ok.Done() || !bad.Done() || ok.Cancelled() || ok.Cancel() {
		t.Fatal("done futures: wrong Done/Cancelled/Cancel")
	}
}

func TestFutureCancel(t *testing.T) {
	ex := newExecutor(t, 1, multiproc.Grace(100*time.Millisecond))
	ctx := ctxT(t)
	marker := filepath.Join(t.TempDir(), "started")
	running := multiproc.Submit(ctx, ex, block, blockArg{Marker: marker})
	queued := multiproc.Submit(ctx, ex, square, 3)
	testutil.WaitFor(t, deadline, func() bool { _, err := os.Stat(marker); return err == nil }, "task started")
	testutil.WaitFor(t, deadline, running.Running, "future running")
	if queued.Running() {
		t.Fatal("queued future reports Running")
	}
	if !queued.Cancel() || !queued.Cancelled() {
		t.Fatal("cancelling a queued future failed")
	}
	if !running.Cancel() {
		t.Fatal("cancelling a running future failed")
	}
	if _, err := running.Result(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled running future: %v", err)
	}
	// The executor goes on.
	if v, err := multiproc.Submit(ctx, ex, square, 4).Result(ctx); err != nil || v != 16 {
		t.Fatalf("after cancel: %v %v", v, err)
	}
}

func TestWaitConditions(t *testing.T) {
	ex := newExecutor(t, 2)
	ctx := ctxT(t)
	blocker, stop := context.WithCancel(ctx)
	defer stop()
	slow := multiproc.Submit(blocker, ex, block, blockArg{})
	fast := multiproc.Submit(ctx, ex, square, 2)
	failing := multiproc.Submit(ctx, ex, fail, 3)
	fs := []*multiproc.Future[int]{slow, fast, failing}

	done, notDone, err := multiproc.Wait(ctx, fs, multiproc.FirstCompleted)
	if err != nil || len(done) == 0 || len(done)+len(notDone) != 3 {
		t.Fatalf("FirstCompleted: %d done, %d not, %v", len(done), len(notDone), err)
	}
	done, notDone, err = multiproc.Wait(ctx, fs, multiproc.FirstException)
	if err != nil || !failing.Done() || len(notDone) == 0 {
		t.Fatalf("FirstException: %d done, %d not, %v", len(done), len(notDone), err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, notDone, err = multiproc.Wait(short, fs, multiproc.AllCompleted)
	if !errors.Is(err, context.DeadlineExceeded) || len(notDone) != 1 || notDone[0] != slow {
		t.Fatalf("AllCompleted with a deadline: %v, not done %d", err, len(notDone))
	}
	stop()
	done, notDone, err = multiproc.Wait(ctx, fs, multiproc.AllCompleted)
	if err != nil || len(done) != 3 || len(notDone) != 0 {
		t.Fatalf("AllCompleted: %d done, %v", len(done), err)
	}
}

func TestShutdown(t *testing.T) {
	ex := newExecutor(t, 1)
	ctx := ctxT(t)
	marker := filepath.Join(t.TempDir(), "started")
	first := multiproc.Submit(ctx, ex, block, blockArg{Marker: marker, Stubborn: false})
	var later []*multiproc.Future[int]
	for i := range 5 {
		later = append(later, multiproc.Submit(ctx, ex, square, i))
	}
	testutil.WaitFor(t, deadline, func() bool { _, err := os.Stat(marker); return err == nil }, "first task started")
	var calls atomic.Int32
	later[0].AddDoneCallback(func(f *multiproc.Future[int]) { calls.Add(1) })
	if err := ex.Shutdown(false, true); err != nil { // cancels the queued ones
		t.Fatal(err)
	}
	for i, f := range later {
		if _, err := f.Result(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("queued future %d after Shutdown(cancelFutures): %v", i, err)
		}
	}
	if f := multiproc.Submit(ctx, ex, square, 1); !errors.Is(f.Exception(ctx), multiproc.ErrPoolClosed) {
		t.Fatalf("submit after shutdown: %v", f.Exception(ctx))
	}
	first.Cancel() // let the running task end so the shutdown can finish
	if err := ex.Shutdown(true, false); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("done callback ran %d times, want 1", calls.Load())
	}
}

func TestImapOnExecutor(t *testing.T) {
	ex := newExecutor(t, 2)
	ctx := ctxT(t)
	n := 0
	for v, err := range multiproc.Imap(ctx, ex, square, func(yield func(int) bool) {
		for i := range 1000 {
			if !yield(i) {
				return
			}
		}
	}, multiproc.Chunksize(100)) {
		if err != nil || v != n*n {
			t.Fatalf("item %d: %v %v", n, v, err)
		}
		n++
	}
	if n != 1000 {
		t.Fatalf("got %d results", n)
	}
}

// TestCallbackReadsOwnResult guards against a deadlock: a done callback
// that reads its own future (the usual concurrent.futures idiom) must see
// the result, and Close must not hang behind it.
func TestCallbackReadsOwnResult(t *testing.T) {
	ex := newExecutor(t, 1)
	ctx := ctxT(t)
	marker := filepath.Join(t.TempDir(), "started")
	blocker, stop := context.WithCancel(ctx)
	f := multiproc.Submit(blocker, ex, block, blockArg{Marker: marker})
	got := make(chan error, 1)
	f.AddDoneCallback(func(f *multiproc.Future[int]) {
		_, err := f.Result(ctx)
		got <- err
	})
	testutil.WaitFor(t, deadline, func() bool { _, err := os.Stat(marker); return err == nil }, "task started")
	stop()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("callback read %v, want the future's context.Canceled", err)
	}
	if err := ex.Close(); err != nil {
		t.Fatal(err)
	}
}

var (
	// bigThenDie returns a large result and, the first time, kills its own
	// worker while the result is being sent.
	bigThenDie = multiproc.Register("test.bigThenDie", func(_ context.Context, marker string) ([]byte, error) {
		if _, err := os.Stat(marker); err == nil {
			return []byte("second attempt"), nil
		}
		os.WriteFile(marker, nil, 0o600)
		go func() {
			time.Sleep(time.Millisecond) // workload: let the write begin
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}()
		return make([]byte, 32<<20), nil
	})
)

// TestRetryResultLostInTransit guards the completion counter: a worker that
// dies while sending a result has not completed the task, so Retries runs
// it again instead of failing it.
func TestRetryResultLostInTransit(t *testing.T) {
	p := newPool(t, 1, multiproc.Retries(1))
	v, err := multiproc.Apply(ctxT(t), p, bigThenDie, filepath.Join(t.TempDir(), "m"))
	if err != nil {
		t.Fatalf("got %v; a result lost with its worker must be retried", err)
	}
	if string(v) != "second attempt" && len(v) != 32<<20 {
		t.Fatalf("got %d bytes", len(v))
	}
}

// TestShutdownCancelsOnlyUnstarted guards Shutdown(cancelFutures): a future
// it cancels never ran, and one that ran is never reported cancelled.
func TestShutdownCancelsOnlyUnstarted(t *testing.T) {
	ex := newExecutor(t, 1)
	ctx := ctxT(t)
	for i := range 200 { // let the pool learn that tasks are tiny: a wide window
		multiproc.Submit(ctx, ex, square, i).Result(ctx)
	}
	dir := t.TempDir()
	fs := make([]*multiproc.Future[string], 3000)
	for i := range fs {
		fs[i] = multiproc.Submit(ctx, ex, touch, filepath.Join(dir, fmt.Sprint(i)))
	}
	if err := ex.Shutdown(true, true); err != nil {
		t.Fatal(err)
	}
	cancelled := 0
	for i, f := range fs {
		_, statErr := os.Stat(filepath.Join(dir, fmt.Sprint(i)))
		ran := statErr == nil
		switch {
		case f.Cancelled() && ran:
			t.Fatalf("future %d reported cancelled, but its function ran", i)
		case !f.Cancelled() && !ran:
			t.Fatalf("future %d neither cancelled nor run: %v", i, f.Exception(ctx))
		case f.Cancelled():
			cancelled++
		}
	}
	t.Logf("%d of %d cancelled", cancelled, len(fs))
}

// TestSubmitAfterShutdownSaysExecutor guards the wording of a refused
// Submit: it matches ErrPoolClosed, like a closed pool's, but speaks of the
// executor the caller used, not of a pool it never made.
func TestSubmitAfterShutdownSaysExecutor(t *testing.T) {
	ex := newExecutor(t, 1)
	ctx := ctxT(t)
	if err := ex.Shutdown(true, false); err != nil {
		t.Fatal(err)
	}
	f := multiproc.Submit(ctx, ex, square, 1)
	err := f.Exception(ctx)
	if !errors.Is(err, multiproc.ErrPoolClosed) || err.Error() != "multiproc: executor shut down" {
		t.Fatalf("submit after shutdown: got %v, want %q matching ErrPoolClosed", err, "multiproc: executor shut down")
	}
	if !f.Done() || f.Running() || f.Cancel() || f.Cancelled() {
		t.Fatal("refused future: wrong Done/Running/Cancel/Cancelled")
	}
}
