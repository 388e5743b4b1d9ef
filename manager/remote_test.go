package manager

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/ipc"
)

var testKey = []byte("abracadabra")

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func serveTCP(t *testing.T, opts ...Option) (*Server, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	opts = append([]Option{Logger(slog.New(slog.NewTextHandler(lb, nil)))}, opts...)
	srv, err := Serve(testCtx(t), "tcp", "127.0.0.1:0", testKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, lb
}

func connect(t *testing.T, addr string, opts ...Option) *Manager {
	t.Helper()
	m, err := Connect(testCtx(t), "tcp", addr, testKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestRemoteQueueAndDict(t *testing.T) {
	srv, _ := serveTCP(t)
	ctx := testCtx(t)
	addr := srv.Addr().String()
	a, b := connect(t, addr), connect(t, addr)
	if a.c.raw {
		t.Fatal("a served manager stores raw encodings without RawEncodings")
	}
	qa, err := NewQueue[string](ctx, a, 0, Named("jobs"))
	if err != nil {
		t.Fatal(err)
	}
	qb, err := NewQueue[string](ctx, b, 0, Named("jobs"))
	if err != nil {
		t.Fatal(err)
	}
	da, _ := NewDict[string, []int](ctx, a, Named("results"))
	db, _ := NewDict[string, []int](ctx, b, Named("results"))
	if err := qa.Put(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if v, err := qb.Get(ctx); err != nil || v != "hello" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	db.Set(ctx, "x", []int{1, 2, 3})
	if v, err := da.Get(ctx, "x"); err != nil || len(v) != 3 || v[2] != 3 {
		t.Fatalf("Get = %v, %v", v, err)
	}
}

func TestRemoteWrongKeyAndGarbage(t *testing.T) {
	srv, logs := serveTCP(t, HandshakeTimeout(time.Second))
	ctx := testCtx(t)
	addr := srv.Addr().String()
	if _, err := Connect(ctx, "tcp", addr, []byte("wrong")); !errors.Is(err, ipc.ErrAuth) {
		t.Fatalf("Connect with a wrong key: %v, want ErrAuth", err)
	}
	for _, junk := range [][]byte{[]byte("GET / HTTP/1.0\r\n\r\n"), bytes.Repeat([]byte{0xff}, 4096), {0, 0, 0, 1}} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(junk)
		nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		io.Copy(io.Discard, nc) // the server closes it
		nc.Close()
	}
	m := connect(t, addr) // and keeps serving everyone else
	d, err := NewDict[int, int](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Set(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for srv.Rejected() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.Rejected(); n < 4 {
		t.Fatalf("Rejected = %d, want 4", n)
	}
	if s := logs.String(); strings.Count(s, "\n") > 2 || s == "" {
		t.Fatalf("refusals not logged once, rate-limited:\n%s", s)
	}
}

// freezer forwards TCP connections to target. frozen drops the bytes of
// both directions silently (a link that died without a FIN). hold keeps
// back what the server sends, delivered in order by release (a link that
// stalls, then recovers: TCP delays bytes, it does not lose them). up
// counts the bytes forwarded client → server.
type freezer struct {
	ln     net.Listener
	frozen atomic.Bool
	up     atomic.Int64
	wg     sync.WaitGroup
	mu     sync.Mutex // conns, held, and the writes to clients
	conns  []net.Conn
	held   bool
	pend   map[net.Conn][]byte // held bytes per client connection
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, pend: map[net.Conn][]byte{}}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, s)
			f.mu.Unlock()
			f.wg.Add(2)
			go f.pipe(c, s, false)
			go f.pipe(s, c, true)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

// pipe copies from → to; down is the server → client direction.
func (f *freezer) pipe(from, to net.Conn, down bool) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return
		}
		if f.frozen.Load() {
			continue
		}
		if !down {
			to.Write(buf[:n])
			f.up.Add(int64(n))
			continue
		}
		f.mu.Lock()
		if f.held {
			f.pend[to] = append(f.pend[to], buf[:n]...)
		} else {
			to.Write(buf[:n])
		}
		f.mu.Unlock()
	}
}

func (f *freezer) hold() { f.mu.Lock(); f.held = true; f.mu.Unlock() }

func (f *freezer) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = false
	for c, b := range f.pend {
		c.Write(b)
		delete(f.pend, c)
	}
}

func TestRemoteHeartbeatLoss(t *testing.T) {
	srv, _ := serveTCP(t)
	ctx := testCtx(t)
	fz := newFreezer(t, srv.Addr().String())
	const hb = 100 * time.Millisecond
	m := connect(t, fz.ln.Addr().String(), Heartbeat(hb))
	d, _ := NewDict[int, int](ctx, m)
	fz.frozen.Store(true)
	start := time.Now()
	select {
	case <-m.c.done:
	case <-time.After(30 * time.Second):
		t.Fatal("an idle connection never noticed the loss")
	}
	took := time.Since(start)
	t.Logf("loss noticed after %v (bound %v + scheduling)", took, HeartbeatMisses*hb+hb/2)
	if err := d.Set(ctx, 1, 1); !errors.Is(err, ErrConnLost) {
		t.Fatalf("call after the loss: %v", err)
	}
	// The server dropped the silent client too, releasing its object.
	deadline := time.Now().Add(30 * time.Second)
	for {
		srv.s.mu.Lock()
		n := len(srv.s.objs)
		srv.s.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server kept a silent client's objects")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRemoteDeadlineOnFrozenLink(t *testing.T) {
	srv, _ := serveTCP(t)
	fz := newFreezer(t, srv.Addr().String())
	m := connect(t, fz.ln.Addr().String())
	ctx := testCtx(t)
	d, _ := NewDict[int, int](ctx, m)
	fz.frozen.Store(true)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := d.Set(short, 1, 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call on a frozen link: %v", err)
	}
	if took := time.Since(start); took > 200*time.Millisecond+cancelGrace+5*time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestRemoteRestartStaleRef(t *testing.T) {
	srv, err := Serve(testCtx(t), "tcp", "127.0.0.1:0", testKey)
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	ctx := testCtx(t)
	m := connect(t, addr)
	d, _ := NewDict[int, int](ctx, m)
	srv.Close()
	if err := d.Set(ctx, 1, 1); !errors.Is(err, ErrConnLost) {
		t.Fatalf("after the server stopped: %v", err)
	}
	srv2, err := Serve(ctx, "tcp", addr, testKey)
	if err != nil {
		t.Skipf("could not listen on the same port again: %v", err)
	}
	defer srv2.Close()
	m2 := connect(t, addr)
	stale := &Dict[int, int]{ref: ref{c: m2.c, id: d.id, kind: kindDict}}
	stale.init()
	m2.c.inst, d.c.inst = d.c.inst, m2.c.inst // send the old instance id
	err = stale.Set(ctx, 1, 1)
	m2.c.inst, d.c.inst = d.c.inst, m2.c.inst
	if !errors.Is(err, ErrNoSuchObject) {
		t.Fatalf("old reference on a restarted server: %v", err)
	}
}
