package ipc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/ipc"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func pipe(t *testing.T, duplex bool) (*ipc.Conn, *ipc.Conn) {
	t.Helper()
	a, b, err := ipc.Pipe(duplex)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestPipeBytes(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	for _, m := range []string{"hello", "", "hello, too"} {
		if err := a.SendBytes(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"hello", "", "hello, too"} {
		got, err := b.RecvBytes(ctx)
		if err != nil || string(got) != want {
			t.Fatalf("RecvBytes = %q, %v; want %q", got, err, want)
		}
	}
	if err := b.SendBytes(ctx, []byte("back")); err != nil {
		t.Fatal(err)
	}
	if got, err := a.RecvBytes(ctx); err != nil || string(got) != "back" {
		t.Fatalf("RecvBytes = %q, %v", got, err)
	}
}

func TestPipeEOFAfterClose(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	if err := a.SendBytes(ctx, []byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := b.RecvBytes(ctx); err != nil || string(got) != "last" {
		t.Fatalf("RecvBytes = %q, %v", got, err)
	}
	for range 2 {
		if _, err := b.RecvBytes(ctx); err != io.EOF {
			t.Fatalf("RecvBytes after close: %v, want io.EOF", err)
		}
	}
	if err := a.SendBytes(ctx, []byte("x")); !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("SendBytes after Close: %v, want ErrClosed", err)
	}
}

func TestRecvBytesInto(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	a.SendBytes(ctx, []byte("0123456789"))
	a.SendBytes(ctx, []byte("abc"))
	buf := make([]byte, 4)
	_, err := b.RecvBytesInto(ctx, buf)
	var short *ipc.BufferTooShortError
	if !errors.As(err, &short) || !errors.Is(err, ipc.ErrBufferTooShort) || string(short.Message) != "0123456789" {
		t.Fatalf("RecvBytesInto short: %v", err)
	}
	n, err := b.RecvBytesInto(ctx, buf)
	if err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("RecvBytesInto = %q, %v", buf[:n], err)
	}
}

func TestPipeLargeBothWays(t *testing.T) {
	// Both ends send 8 MiB before receiving: far more than a socket
	// buffer holds, so this deadlocks unless a stalled large send lets go.
	ctx := testCtx(t)
	a, b := pipe(t, true)
	big := bytes.Repeat([]byte("x"), 8<<20)
	errc := make(chan error, 1)
	go func() {
		if err := b.SendBytes(ctx, big); err != nil {
			errc <- err
			return
		}
		got, err := b.RecvBytes(ctx)
		if err == nil && !bytes.Equal(got, big) {
			err = errors.New("b received other bytes")
		}
		errc <- err
	}()
	if err := a.SendBytes(ctx, big); err != nil {
		t.Fatal(err)
	}
	got, err := a.RecvBytes(ctx)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("a: %d bytes, %v", len(got), err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestPoll(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	if ok, err := b.Poll(0); ok || err != nil {
		t.Fatalf("Poll on empty = %v, %v", ok, err)
	}
	if ok, err := b.Poll(10 * time.Millisecond); ok || err != nil {
		t.Fatalf("Poll(10ms) on empty = %v, %v", ok, err)
	}
	a.SendBytes(ctx, []byte("x"))
	if ok, err := b.Poll(30 * time.Second); !ok || err != nil {
		t.Fatalf("Poll with a message = %v, %v", ok, err)
	}
	b.Close()
	if _, err := b.Poll(0); !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("Poll after Close: %v", err)
	}
}

func TestRecvContext(t *testing.T) {
	a, b := pipe(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.RecvBytes(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RecvBytes: %v, want DeadlineExceeded", err)
	}
	// Unchanged: a later message arrives.
	a.SendBytes(testCtx(t), []byte("after"))
	if got, err := b.RecvBytes(testCtx(t)); err != nil || string(got) != "after" {
		t.Fatalf("RecvBytes = %q, %v", got, err)
	}
}

func TestListenDial(t *testing.T) {
	ctx := testCtx(t)
	key := []byte("secret")
	for _, nw := range []string{"unix", "tcp"} {
		t.Run(nw, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if nw == "unix" {
				addr = filepath.Join(t.TempDir(), "s")
			}
			l, err := ipc.Listen(nw, addr, key)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			done := make(chan error, 1)
			go func() {
				c, err := l.Accept(ctx)
				if err != nil {
					done <- err
					return
				}
				defer c.Close()
				m, err := c.RecvBytes(ctx)
				if err == nil {
					err = c.SendBytes(ctx, append(m, ", too"...))
				}
				if err == nil && !c.SameBuild() {
					err = errors.New("server: not the same build")
				}
				done <- err
			}()
			c, err := ipc.Dial(ctx, nw, l.Addr().String(), key)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.SendBytes(ctx, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			got, err := c.RecvBytes(ctx)
			if err != nil || string(got) != "hello, too" {
				t.Fatalf("RecvBytes = %q, %v", got, err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if _, err := ipc.Dial(ctx, nw, l.Addr().String(), []byte("wrong")); !errors.Is(err, ipc.ErrAuth) || !errors.Is(err, ipc.ErrHandshake) {
				t.Fatalf("Dial with a wrong key: %v, want ErrAuth", err)
			}
		})
	}
}

type item struct {
	I int
	S string
	F float64
}

func TestSendRecvTyped(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	for i := range 100 {
		if err := ipc.Send(ctx, a, item{i, "hello", 3.14}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		got, err := ipc.Recv[item](ctx, b)
		if err != nil || got != (item{i, "hello", 3.14}) {
			t.Fatalf("Recv = %v, %v", got, err)
		}
	}
	ipc.Send(ctx, a, 42)
	if _, err := ipc.Recv[string](ctx, b); !errors.Is(err, ipc.ErrMessageType) {
		t.Fatalf("Recv of another type: %v", err)
	}
	ipc.Send(ctx, a, map[string]int{"a": 1})
	if m, err := ipc.Recv[map[string]int](ctx, b); err != nil || m["a"] != 1 {
		t.Fatalf("Recv map = %v, %v", m, err)
	}
}

func TestOtherBuildSelfDescribing(t *testing.T) {
	ctx := testCtx(t)
	key := []byte("k")
	l := listen(t, key)
	type rec struct {
		A int
		B string
		C []float64
	}
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept(ctx)
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		if c.SameBuild() || c.PeerBuildID() != "some other build" {
			done <- errors.New("server: the peer's build was not seen as another")
			return
		}
		v, err := ipc.Recv[rec](ctx, c)
		if err == nil {
			v.A++
			err = ipc.Send(ctx, c, v)
		}
		done <- err
	}()
	c, err := ipc.Dial(ctx, "unix", l.Addr().String(), key, ipc.WithBuildID("some other build"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.SameBuild() {
		t.Fatal("client: SameBuild with another build")
	}
	if err := ipc.Send(ctx, c, rec{1, "x", []float64{2}}); err != nil {
		t.Fatal(err)
	}
	got, err := ipc.Recv[rec](ctx, c)
	if err != nil || got.A != 2 || got.B != "x" || len(got.C) != 1 {
		t.Fatalf("Recv = %+v, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHandOverRefusals(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	a.SendBytes(ctx, []byte("one"))
	a.SendBytes(ctx, []byte("two"))
	if _, err := b.RecvBytes(ctx); err != nil {
		t.Fatal(err)
	}
	// "two" was read ahead into b's buffer with "one".
	if err := exportErr(b); !errors.Is(err, errNotTransferable) {
		t.Fatalf("passing a Conn with buffered bytes: %v", err)
	}
	b.RecvBytes(ctx)
	c, d := pipe(t, true)
	type holder struct{ C *ipc.Conn }
	if err := ipc.Send(ctx, a, holder{c}); !errors.Is(err, errNotTransferable) {
		t.Fatalf("sending a Conn over a Conn: %v", err)
	}
	d.Close()
	c.Close()
	if err := exportErr(c); !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("passing a closed Conn: %v", err)
	}
}

func TestOneWayPipe(t *testing.T) {
	ctx := testCtx(t)
	r, w := pipe(t, false)
	if err := r.SendBytes(ctx, []byte("x")); err == nil {
		t.Fatal("the receive-only end sent")
	}
	if _, err := w.RecvBytes(ctx); err == nil {
		t.Fatal("the send-only end received")
	}
	w.SendBytes(ctx, []byte("one way"))
	w.Close()
	if m, err := r.RecvBytes(ctx); err != nil || string(m) != "one way" {
		t.Fatalf("RecvBytes = %q, %v", m, err)
	}
	if _, err := r.RecvBytes(ctx); err != io.EOF {
		t.Fatalf("after Close: %v", err)
	}
}

func TestSendTooLarge(t *testing.T) {
	ctx := testCtx(t)
	key := []byte("k")
	l := listen(t, key, ipc.MaxMessageSize(1000))
	go func() {
		if c, err := l.Accept(ctx); err == nil {
			c.RecvBytes(ctx)
			c.Close()
		}
	}()
	c, err := ipc.Dial(ctx, "unix", l.Addr().String(), key, ipc.MaxMessageSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendBytes(ctx, make([]byte, 1001)); !errors.Is(err, ipc.ErrTooLarge) {
		t.Fatalf("SendBytes over the limit: %v", err)
	}
	if err := ipc.Send(ctx, c, string(make([]byte, 1001))); !errors.Is(err, ipc.ErrTooLarge) {
		t.Fatalf("Send over the limit: %v", err)
	}
}

func TestCloseUnblocksRecv(t *testing.T) {
	_, b := pipe(t, true)
	errc := make(chan error, 1)
	go func() { _, err := b.RecvBytes(context.Background()); errc <- err }()
	// Close while the receive waits (or before it starts): either way it
	// returns ErrClosed, never hangs.
	b.Close()
	if err := <-errc; !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("RecvBytes across Close: %v, want ErrClosed", err)
	}
}

func TestConcurrentSenders(t *testing.T) {
	ctx := testCtx(t)
	a, b := pipe(t, true)
	const senders, each = 8, 2000
	errc := make(chan error, senders)
	for s := range senders {
		go func() {
			for i := range each {
				var err error
				if i%100 == 99 {
					err = a.SendBytes(ctx, bytes.Repeat([]byte{byte(s)}, 200<<10)) // a large one now and then
				} else {
					err = ipc.Send(ctx, a, item{s, "x", float64(i)})
				}
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	next := make([]int, senders)
	for range senders * each {
		v, err := ipc.Recv[item](ctx, b)
		if errors.Is(err, ipc.ErrMessageType) {
			continue // a large byte message, consumed
		}
		if err != nil {
			t.Fatal(err)
		}
		if int(v.F) != next[v.I] {
			t.Fatalf("sender %d: message %v after %d", v.I, v.F, next[v.I])
		}
		next[v.I]++
		if next[v.I]%100 == 99 {
			next[v.I]++
		}
	}
	for range senders {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}
