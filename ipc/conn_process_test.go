package ipc_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/ipc"
)

// echo receives typed items and byte messages on its end and answers each
// until the parent closes.
var echo = multiproc.Register("ipctest.echo", func(ctx context.Context, c *ipc.Conn) (int, error) {
	defer c.Close()
	n := 0
	for {
		v, err := ipc.Recv[item](ctx, c)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		v.I++
		if err := ipc.Send(ctx, c, v); err != nil {
			return n, err
		}
		n++
	}
})

// hang waits on its end until it is killed.
var hang = multiproc.Register("ipctest.hang", func(ctx context.Context, c *ipc.Conn) (int, error) {
	defer c.Close()
	if err := c.SendBytes(ctx, []byte("ready")); err != nil {
		return 0, err
	}
	_, err := c.RecvBytes(ctx)
	return 0, err
})

func TestConnToProcess(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	p := multiproc.NewProcess(echo, b)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	for i := range 1000 {
		if err := ipc.Send(ctx, a, item{i, "hello", 3.14}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		got, err := ipc.Recv[item](ctx, a)
		if err != nil || got != (item{i + 1, "hello", 3.14}) {
			t.Fatalf("Recv = %v, %v", got, err)
		}
	}
	a.Close()
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := multiproc.Result[int](p); n != 1000 || err != nil {
		t.Fatalf("child answered %d, %v", n, err)
	}
}

func TestPeerKilled(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	p := multiproc.NewProcess(hang, b)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if m, err := a.RecvBytes(ctx); err != nil || string(m) != "ready" {
		t.Fatalf("RecvBytes = %q, %v", m, err)
	}
	p.Kill()
	p.Join(ctx)
	if _, err := a.RecvBytes(ctx); !errors.Is(err, ipc.ErrPeerDied) {
		t.Fatalf("RecvBytes from a killed peer: %v, want ErrPeerDied", err)
	}
}

func TestConnToPoolTask(t *testing.T) {
	ctx := testCtx(t)
	pool, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for i := range 3 {
		a, b := pipe(t, true)
		res := multiproc.ApplyAsync(ctx, pool, echo, b)
		b.Close()
		if err := ipc.Send(ctx, a, item{I: i}); err != nil {
			t.Fatal(err)
		}
		got, err := ipc.Recv[item](ctx, a)
		if err != nil || got.I != i+1 {
			t.Fatalf("task %d: Recv = %v, %v", i, got, err)
		}
		a.Close()
		if n, err := res.Get(ctx); n != 1 || err != nil {
			t.Fatalf("task %d: %d, %v", i, n, err)
		}
	}

}

// sendAndReturn sends without closing its end: the child's exit must still
// deliver the messages (boot.OnExit flushes them).
var sendAndReturn = multiproc.Register("ipctest.send_and_return", func(ctx context.Context, c *ipc.Conn) (int, error) {
	for i := range 1000 {
		if err := ipc.Send(ctx, c, i); err != nil {
			return 0, err
		}
	}
	return 0, nil
})

func TestChildExitFlushes(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	p := multiproc.NewProcess(sendAndReturn, b)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	for i := range 1000 {
		if v, err := ipc.Recv[int](ctx, a); err != nil || v != i {
			t.Fatalf("Recv %d = %d, %v", i, v, err)
		}
	}
	// The child never closed: its exit is the end without a close.
	if _, err := ipc.Recv[int](ctx, a); !errors.Is(err, ipc.ErrPeerDied) {
		t.Fatalf("after the child's exit: %v, want ErrPeerDied", err)
	}
	p.Join(ctx)
}

func TestSendToKilledPeer(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	p := multiproc.NewProcess(hang, b)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	a.RecvBytes(ctx) // ready
	p.Kill()
	p.Join(ctx)
	big := make([]byte, 4<<20)
	var err error
	for range 10 {
		if err = a.SendBytes(ctx, big); err == nil {
			err = a.Flush(ctx)
		}
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ipc.ErrPeerDied) {
		t.Fatalf("sending to a killed peer: %v, want ErrPeerDied", err)
	}
}

// TestTLSConnToProcess: a TLS Conn cannot be exported, and as a Process
// argument fails Start with an error matching ErrNotTransferable that says
// why, and starts nothing.
func TestTLSConnToProcess(t *testing.T) {
	srv, cli := tlsConfigs(t)
	key := []byte("k")
	l, err := ipc.Listen("tcp", "127.0.0.1:0", key, ipc.TLS(srv), ipc.Logger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := testCtx(t)
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		if c, err := l.Accept(ctx); err == nil {
			c.RecvBytes(ctx)
			c.Close()
		}
	}()
	c, err := ipc.Dial(ctx, "tcp", l.Addr().String(), key, ipc.TLS(cli))
	if err != nil {
		t.Fatal(err)
	}
	if err := exportErr(c); !errors.Is(err, errNotTransferable) {
		t.Fatalf("exporting a TLS Conn: %v", err)
	}
	p := multiproc.NewProcess(echo, c)
	err = p.Start(ctx)
	if err == nil {
		p.Kill()
		p.Join(ctx)
		t.Fatal("a Process started with a TLS Conn argument")
	}
	if !errors.Is(err, multiproc.ErrNotTransferable) || !strings.Contains(err.Error(), "TLS") || strings.Contains(err.Error(), "engine") {
		t.Fatalf("Start: %v; want ErrNotTransferable saying the Conn uses TLS", err)
	}
	t.Logf("Start: %v", err)
	p.Close()
	// The Conn still works here.
	if err := c.SendBytes(ctx, []byte("x")); err != nil {
		t.Fatalf("the Conn after the refused Start: %v", err)
	}
	c.Close()
	<-accepted
}
