package ipc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/ipc"
)

// Regression tests for the review of the connections half (issue 11).

// A receive waiting for another receive on the same Conn honours its own
// context (review finding 2).
func TestRecvCtxWhileAnotherRecvWaits(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	first := make(chan error, 1)
	go func() {
		_, err := a.RecvBytes(ctx)
		first <- err
	}()
	// Whichever of the two receives gets the receive side first, the
	// other waits for it: both orders test the same thing.
	for _, recv := range []func(context.Context) error{
		func(c context.Context) error { _, err := a.RecvBytes(c); return err },
		func(c context.Context) error { _, err := ipc.Recv[int](c, a); return err },
		func(c context.Context) error { _, err := ipc.Wait(c, a); return err },
	} {
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- recv(rctx) }()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("second receive: %v, want DeadlineExceeded", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("second receive ignored its context")
		}
		cancel()
	}
	if ok, err := a.Poll(10 * time.Millisecond); ok || err != nil {
		t.Fatalf("Poll while a receive waits = %v, %v; want false, nil", ok, err)
	}
	b.SendBytes(ctx, []byte("x"))
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}
