package ipc_test

import (
	"context"
	"errors"
	"io"
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

// Large sends to a peer that never reads block once one large message is
// buffered, instead of each being copied when its context ends (review
// finding 1: 300 × 1 MiB grew the heap to 800 MiB).
func TestBigSendBackpressure(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true) // b never reads
	m := make([]byte, 1<<20)
	before := ipc.Detaches()
	accepted := 0
	for range 20 {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		err := a.SendBytes(sctx, m)
		cancel()
		switch {
		case err == nil:
			accepted++
		case !errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("SendBytes: %v, want nil or DeadlineExceeded", err)
		}
	}
	// The first one is written in part and copied; the rest wait for it.
	if accepted > 2 {
		t.Fatalf("%d of 20 large sends to a peer that never reads returned nil; want at most 2", accepted)
	}
	if d := ipc.Detaches() - before; d > 2 {
		t.Fatalf("%d large messages copied; want at most 2", d)
	}
	b.Close()
}

// Both peers sending many large messages before receiving still do not
// deadlock, also when their sends' contexts end (so a message is copied
// and the next large send waits for it).
func TestBigSendBothWaysManyMessages(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	const n = 20
	run := func(c *ipc.Conn, short bool) error {
		m := make([]byte, 1<<20)
		for i := range n {
			m[0] = byte(i)
			for {
				sctx, cancel := ctx, context.CancelFunc(func() {})
				if short {
					sctx, cancel = context.WithTimeout(ctx, 5*time.Millisecond)
				}
				err := c.SendBytes(sctx, m)
				cancel()
				if err == nil {
					break
				}
				if !short || !errors.Is(err, context.DeadlineExceeded) {
					return err
				}
			}
		}
		for i := range n {
			got, err := c.RecvBytes(ctx)
			if err != nil {
				return err
			}
			if len(got) != 1<<20 || got[0] != byte(i) {
				return errors.New("messages out of order or cut")
			}
		}
		return nil
	}
	for _, short := range []bool{false, true} {
		errc := make(chan error, 1)
		go func() { errc <- run(b, short) }()
		if err := run(a, short); err != nil {
			t.Fatalf("short=%v: a: %v", short, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("short=%v: b: %v", short, err)
		}
	}
}

// RecvBytesInto with a nil buffer receives an empty message (review
// finding 8; Python's recv_bytes_into(bytearray()) returns 0).
func TestRecvBytesIntoNilEmpty(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	a.SendBytes(ctx, nil)
	if n, err := b.RecvBytesInto(ctx, nil); n != 0 || err != nil {
		t.Fatalf("RecvBytesInto(nil) of an empty message = %d, %v; want 0, nil", n, err)
	}
}

// One-way Pipe misuse and Wait(nil) give typed errors (review finding 10).
func TestOneWayAndWaitErrors(t *testing.T) {
	ctx := testCtx(t)
	r, w := pipe(t, false)
	if err := r.SendBytes(ctx, []byte("x")); !errors.Is(err, ipc.ErrOneWay) {
		t.Fatalf("send on the receive-only end: %v, want ErrOneWay", err)
	}
	if _, err := w.RecvBytes(ctx); !errors.Is(err, ipc.ErrOneWay) {
		t.Fatalf("receive on the send-only end: %v, want ErrOneWay", err)
	}
	if _, err := ipc.Wait(ctx, w); !errors.Is(err, ipc.ErrOneWay) {
		t.Fatalf("Wait on the send-only end: %v, want ErrOneWay", err)
	}
	if _, err := ipc.Wait(ctx, r, nil); err == nil {
		t.Fatal("Wait with a nil Conn: no error")
	}
	w.Close()
	if _, err := w.RecvBytes(ctx); !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("receive on the closed send-only end: %v, want ErrClosed", err)
	}
}

// A send to a peer that closed its end matches io.ErrClosedPipe, and the
// sender's Close does not return it (review finding 10).
func TestSendToClosedPeer(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	b.Close()
	if _, err := a.RecvBytes(ctx); err != io.EOF {
		t.Fatalf("RecvBytes after the peer's Close: %v", err)
	}
	var err error
	for range 100 {
		if err = a.SendBytes(ctx, []byte("x")); err != nil {
			break
		}
		a.Flush(ctx)
	}
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("SendBytes to a closed peer: %v, want io.ErrClosedPipe", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close after the peer closed: %v", err)
	}
}
