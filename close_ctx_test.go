package multiproc_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// TestCloseContextTerminates guards item 17: a bounded close whose context
// ends proceeds as Terminate (the stubborn task fails with ErrPoolClosed,
// the worker is killed and reaped) and returns an error wrapping ctx.Err().
func TestCloseContextTerminates(t *testing.T) {
	p := newPool(t, 1)
	ctx := ctxT(t)
	marker := t.TempDir() + "/started"
	r := multiproc.ApplyAsync(ctx, p, block, blockArg{Marker: marker, Stubborn: true})
	waitForFile(t, marker)
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := p.CloseContext(cctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CloseContext = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if _, err := r.Get(ctx); !errors.Is(err, multiproc.ErrPoolClosed) {
		t.Errorf("the running task got %v, want ErrPoolClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close after CloseContext: %v", err)
	}
}

// TestCloseContextInTime: with time enough, CloseContext is Close.
func TestCloseContextInTime(t *testing.T) {
	p := newPool(t, 2)
	ctx := ctxT(t)
	r := multiproc.ApplyAsync(ctx, p, square, 9)
	if err := p.CloseContext(ctx); err != nil {
		t.Fatalf("CloseContext: %v", err)
	}
	if v, err := r.Get(ctx); err != nil || v != 81 {
		t.Errorf("task = %d, %v; want 81, nil", v, err)
	}
}

// TestShutdownContext: the executor's bounded shutdown behaves the same
// way, and its errors still say "executor shut down" for new work.
func TestShutdownContext(t *testing.T) {
	x := newExecutor(t, 1)
	ctx := ctxT(t)
	marker := t.TempDir() + "/started"
	f := multiproc.Submit(ctx, x, block, blockArg{Marker: marker, Stubborn: true})
	waitForFile(t, marker)
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := x.ShutdownContext(cctx, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ShutdownContext = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if err := f.Exception(ctx); !errors.Is(err, multiproc.ErrPoolClosed) {
		t.Errorf("running future got %v, want ErrPoolClosed", err)
	}
	g := multiproc.Submit(ctx, x, square, 2)
	if err := g.Exception(ctx); !errors.Is(err, multiproc.ErrPoolClosed) || err.Error() != "multiproc: executor shut down" {
		t.Errorf("Submit after ShutdownContext: %v, want \"multiproc: executor shut down\" matching ErrPoolClosed", err)
	}
	r := multiproc.ApplyAsync(ctx, x, square, 2)
	if _, err := r.Get(ctx); err == nil || err.Error() != "multiproc: executor shut down" {
		t.Errorf("ApplyAsync on a shut-down executor: %v, want the executor's words", err)
	}
	if err := x.Shutdown(true, false); err != nil {
		t.Errorf("Shutdown after ShutdownContext: %v", err)
	}
}

// waitForFile waits until a task has written its marker file.
func waitForFile(t *testing.T, path string) {
	t.Helper()
	testutil.WaitFor(t, deadline, func() bool { _, err := os.Stat(path); return err == nil }, "task started")
}
