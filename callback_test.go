package multiproc_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// These tests guard the callbacks that call their own pool's Close,
// Terminate, Join or Shutdown: before the fix those waited for the pending
// callbacks, the caller among them, and never returned. Each waits with a
// deadline so that a regression fails the test instead of hanging the suite.

// newHangPool is newPool for tests whose failure may leave the pool stuck in
// a callback: the cleanup's Terminate would then hang too, so it is skipped
// once the test has failed.
func newHangPool(t *testing.T, n int) *multiproc.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	p, err := multiproc.NewPool(ctx, n)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			p.Terminate()
		}
	})
	return p
}

// recv returns the next value from ch, failing the test if none arrives
// within the deadline.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("%s: nothing within %v (deadlock?)", what, deadline)
		panic("unreachable")
	}
}

func TestCloseFromCallback(t *testing.T) {
	p := newHangPool(t, 1)
	ctx := ctxT(t)
	var order []string // callbacks run one at a time: no lock needed
	closed := make(chan error, 1)
	laterRan := make(chan struct{})
	first := multiproc.ApplyAsync(ctx, p, square, 2)
	second := multiproc.ApplyAsync(ctx, p, square, 3) // one worker: finishes after first
	first.OnResult(func(int) {
		err := p.Close()
		order = append(order, fmt.Sprintf("close returned, second ready: %v", second.Ready()))
		closed <- err
	})
	second.OnResult(func(int) {
		order = append(order, "second's callback")
		close(laterRan)
	})
	if err := recv(t, closed, "Close called from a callback"); err != nil {
		t.Fatalf("Close from a callback: %v", err)
	}
	recv(t, laterRan, "the callback queued after the one that closed")
	want := []string{"close returned, second ready: true", "second's callback"}
	if !slices.Equal(order, want) {
		t.Fatalf("got %q, want %q", order, want)
	}
	if err := errOf(ctx, multiproc.ApplyAsync(ctx, p, square, 4)); !errors.Is(err, multiproc.ErrPoolClosed) {
		t.Fatalf("apply after Close from a callback: got %v, want ErrPoolClosed", err)
	}
	if err := p.Close(); err != nil { // from the test goroutine: waits for any callback left
		t.Fatal(err)
	}
}

func errOf[T any](ctx context.Context, r *multiproc.AsyncResult[T]) error {
	_, err := r.Get(ctx)
	return err
}

func TestTerminateFromCallback(t *testing.T) {
	p := newHangPool(t, 1)
	ctx := ctxT(t)
	terminated := make(chan error, 1)
	stuckErr := make(chan error, 1)
	first := multiproc.ApplyAsync(ctx, p, square, 2)
	stuck := multiproc.ApplyAsync(ctx, p, block, blockArg{Stubborn: true})
	first.OnResult(func(int) {
		terminated <- p.Terminate()
	})
	stuck.OnError(func(err error) { stuckErr <- err })
	if err := recv(t, terminated, "Terminate called from a callback"); err != nil {
		t.Fatalf("Terminate from a callback: %v", err)
	}
	if err := recv(t, stuckErr, "the error callback queued after the one that terminated"); !errors.Is(err, multiproc.ErrPoolClosed) {
		t.Fatalf("task at terminate: got %v, want ErrPoolClosed", err)
	}
}

func TestJoinFromCallback(t *testing.T) {
	p := newHangPool(t, 1)
	ctx := ctxT(t)
	inCallback, proceed := make(chan struct{}), make(chan struct{})
	joined, closed := make(chan error, 1), make(chan error, 1)
	multiproc.ApplyAsync(ctx, p, square, 2).OnResult(func(int) {
		close(inCallback)
		<-proceed
		joined <- p.Join(ctx)
	})
	recv(t, inCallback, "callback start")
	go func() { closed <- p.Close() }()
	// Join fails at once unless a Close has begun: wait until the pool
	// refuses work, which it does from the start of Close.
	testutil.WaitFor(t, deadline, func() bool {
		r := multiproc.ApplyAsync(ctx, p, square, 0)
		return r.Ready() && errors.Is(errOf(ctx, r), multiproc.ErrPoolClosed)
	}, "pool refusing work after Close")
	close(proceed)
	if err := recv(t, joined, "Join called from a callback"); err != nil {
		t.Fatalf("Join from a callback: %v", err)
	}
	if err := recv(t, closed, "Close in another goroutine"); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestShutdownFromDoneCallback(t *testing.T) {
	ctx := ctxT(t)
	ex, err := multiproc.NewExecutor(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			ex.Shutdown(true, true)
		}
	})
	var order []string // callbacks run one at a time: no lock needed
	shut := make(chan error, 1)
	laterRan := make(chan struct{})
	first := multiproc.Submit(ctx, ex, square, 2)
	second := multiproc.Submit(ctx, ex, square, 3)
	first.AddDoneCallback(func(*multiproc.Future[int]) {
		err := ex.Shutdown(true, false)
		order = append(order, fmt.Sprintf("shutdown returned, second done: %v", second.Done()))
		shut <- err
	})
	second.AddDoneCallback(func(*multiproc.Future[int]) {
		order = append(order, "second's callback")
		close(laterRan)
	})
	if err := recv(t, shut, "Shutdown(true, false) called from a done callback"); err != nil {
		t.Fatalf("Shutdown from a callback: %v", err)
	}
	recv(t, laterRan, "the callback queued after the one that shut down")
	want := []string{"shutdown returned, second done: true", "second's callback"}
	if !slices.Equal(order, want) {
		t.Fatalf("got %q, want %q", order, want)
	}
	if err := ex.Shutdown(true, false); err != nil { // from the test goroutine: waits for callbacks
		t.Fatal(err)
	}
}

// TestCallbackPanicIsLogged guards the callback goroutine: a panic in a
// user callback used to end the program; now it is logged through the
// logger the pool captured at construction (slog.Default() here) and the
// callbacks after it still run.
func TestCallbackPanicIsLogged(t *testing.T) {
	var buf syncBuffer
	// SetDefault also redirects package log, and setting the old logger
	// back does not undo that: restore log's output and flags by hand.
	p := func() *multiproc.Pool {
		old, oldOut, oldFlags := slog.Default(), log.Writer(), log.Flags()
		defer func() { // the pool keeps the logger it was built with
			slog.SetDefault(old)
			log.SetOutput(oldOut)
			log.SetFlags(oldFlags)
		}()
		slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
		return newPool(t, 1)
	}()
	ctx := ctxT(t)
	after := make(chan int, 1)
	multiproc.ApplyAsync(ctx, p, square, 2).OnResult(func(int) { panic("callback bug") })
	multiproc.ApplyAsync(ctx, p, square, 3).OnResult(func(v int) { after <- v })
	if v := recv(t, after, "the callback after a panicking one"); v != 9 {
		t.Fatalf("got %d, want 9", v)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"multiproc: callback panicked", "callback bug", "callback_test.go"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log %q lacks %q", out, want)
		}
	}
}
