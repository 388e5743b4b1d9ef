package ipc_test

import (
	"context"
	"errors"
	"io"
	"os"
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

// keepOpen uses the Conn and the file it is given and closes neither.
var keepOpen = multiproc.Register("ipctest.keepOpen", func(ctx context.Context, a struct {
	C *ipc.Conn
	F *os.File
}) (int, error) {
	if err := a.C.SendBytes(ctx, []byte("hi")); err != nil {
		return 0, err
	}
	if _, err := a.F.Write([]byte("x")); err != nil {
		return 0, err
	}
	return 1, nil
})

// giveBack returns the Conn it received.
var giveBack = multiproc.Register("ipctest.giveBack", func(ctx context.Context, c *ipc.Conn) (*ipc.Conn, error) {
	return c, nil
})

// A pool task's own resources (a Conn, a file) are closed by the worker
// once the task's result is sent, as CPython's garbage collection would:
// the Conn's peer sees io.EOF and the file's reader sees the end, with the
// worker still alive. A task that returns its Conn hands it back intact;
// each item of a Map chunk has its Conn closed after the chunk.
func TestPoolTaskResourcesClosed(t *testing.T) {
	ctx := testCtx(t)
	pool, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	a, b := pipe(t, true)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	arg := struct {
		C *ipc.Conn
		F *os.File
	}{a, w}
	if n, err := multiproc.Apply(ctx, pool, keepOpen, arg); n != 1 || err != nil {
		t.Fatalf("%d %v", n, err)
	}
	a.Close()
	w.Close()
	if m, err := b.RecvBytes(ctx); string(m) != "hi" || err != nil {
		t.Fatalf("%q %v", m, err)
	}
	if _, err := b.RecvBytes(ctx); err != io.EOF {
		t.Fatalf("peer after the task returned: %v, want io.EOF (the worker closes the task's Conn)", err)
	}
	got, err := io.ReadAll(r) // returns once every write end is closed
	if string(got) != "x" || err != nil {
		t.Fatalf("file: %q %v", got, err)
	}

	a2, b2 := pipe(t, true)
	back, err := multiproc.Apply(ctx, pool, giveBack, a2)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	a2.Close()
	if err := back.SendBytes(ctx, []byte("again")); err != nil {
		t.Fatal(err)
	}
	if m, err := b2.RecvBytes(ctx); string(m) != "again" || err != nil {
		t.Fatalf("through the returned Conn: %q %v", m, err)
	}

	var ends, peers []*ipc.Conn
	for range 4 {
		x, y := pipe(t, true)
		ends, peers = append(ends, x), append(peers, y)
	}
	if _, err := multiproc.Map(ctx, pool, hangUp, ends, multiproc.Chunksize(4)); err != nil {
		t.Fatal(err)
	}
	for _, e := range ends {
		e.Close()
	}
	for i, p := range peers {
		if m, _ := p.RecvBytes(ctx); string(m) != "up" {
			t.Fatalf("peer %d: %q", i, m)
		}
		if _, err := p.RecvBytes(ctx); err != io.EOF {
			t.Fatalf("peer %d after the chunks: %v, want io.EOF", i, err)
		}
	}
}

// hangUp sends "up" and leaves its Conn open.
var hangUp = multiproc.Register("ipctest.hangUp", func(ctx context.Context, c *ipc.Conn) (int, error) {
	return 1, c.SendBytes(ctx, []byte("up"))
})
