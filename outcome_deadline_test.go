package multiproc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
)

// TestFutureCancelledByDeadline: a future whose context passed its deadline
// was cancelled (Python's Future.cancelled() is true for it too), so
// Cancelled must agree with the engine's outcome and the Cancelled counter,
// not only with errors.Is(err, context.Canceled).
func TestFutureCancelledByDeadline(t *testing.T) {
	ctx := ctxT(t)
	x, err := multiproc.NewExecutor(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Shutdown(true, true)
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	f := multiproc.Submit(dctx, x, block, blockArg{})
	if _, err := f.Result(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	if !f.Cancelled() {
		t.Fatal("Cancelled() = false after the context's deadline, want true")
	}
	if s := x.Stats(); s.Cancelled != 1 || s.Failed != 0 {
		t.Fatalf("Stats: Cancelled %d, Failed %d; want 1, 0", s.Cancelled, s.Failed)
	}
}
