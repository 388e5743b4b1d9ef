package ipc_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/wire"
	"github.com/multiproc-go/multiproc/ipc"
)

// export encodes c as a transport would, without sending it.
func export(t *testing.T, c *ipc.Conn) *wire.Outgoing {
	t.Helper()
	out := &wire.Outgoing{}
	if _, err := wire.AppendOut(wire.For[*ipc.Conn](), nil, c, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A Conn whose export was never delivered is still this process's: its
// Close tells the peer (io.EOF), whether the export failed before or after
// the Close. One that was delivered lives on elsewhere: its Close does not.
func TestConnExportOutcome(t *testing.T) {
	ctx := testCtx(t)
	t.Run("refused task", func(t *testing.T) {
		a, b := pipe(t, true)
		pool, err := multiproc.NewPool(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		pool.Close()
		if _, err := multiproc.Apply(ctx, pool, echo, a); err == nil {
			t.Fatal("Apply on a closed pool succeeded")
		}
		a.Close()
		if _, err := b.RecvBytes(ctx); err != io.EOF {
			t.Fatalf("peer's receive after the refused hand-off and Close: %v, want io.EOF", err)
		}
	})
	t.Run("fails after Close", func(t *testing.T) {
		a, b := pipe(t, true)
		out := export(t, a)
		a.Close() // the export's outcome is not known yet
		if ok, _ := b.Poll(50 * time.Millisecond); ok {
			t.Fatal("the peer saw the end while the export was in flight")
		}
		out.Close() // not delivered
		if _, err := b.RecvBytes(ctx); err != io.EOF {
			t.Fatalf("peer's receive: %v, want io.EOF", err)
		}
	})
	t.Run("fails before Close", func(t *testing.T) {
		a, b := pipe(t, true)
		export(t, a).Close()
		a.Close()
		if _, err := b.RecvBytes(ctx); err != io.EOF {
			t.Fatalf("peer's receive: %v, want io.EOF", err)
		}
	})
	t.Run("delivered", func(t *testing.T) {
		a, b := pipe(t, true)
		out := export(t, a)
		a.Close()
		out.Finish(true) // the receiver got it (and, here, dropped it at once)
		_, err := b.RecvBytes(ctx)
		if !errors.Is(err, ipc.ErrPeerDied) {
			t.Fatalf("peer's receive: %v, want ErrPeerDied (the end lives on elsewhere; no close message from here)", err)
		}
	})
}
