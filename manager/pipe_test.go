package manager

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// memConn is one end of an in-memory message pipe: the tests' stand-in
// for an authenticated connection.
type memConn struct {
	in, out chan []byte
	done    chan struct{}
	once    *sync.Once
	same    bool
}

func memPipe(same bool) (*memConn, *memConn) {
	a, b := make(chan []byte, 64), make(chan []byte, 64)
	done, once := make(chan struct{}), &sync.Once{}
	return &memConn{in: a, out: b, done: done, once: once, same: same}, &memConn{in: b, out: a, done: done, once: once, same: same}
}

func (c *memConn) SendMsg(b []byte) error {
	m := append([]byte(nil), b...)
	select {
	case <-c.done:
		return io.ErrClosedPipe
	default:
	}
	select {
	case c.out <- m:
		return nil
	case <-c.done:
		return io.ErrClosedPipe
	}
}

func (c *memConn) RecvMsg(ctx context.Context) ([]byte, error) {
	select {
	case m := <-c.in:
		return m, nil
	case <-c.done:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *memConn) SameBuild() bool { return c.same }
func (c *memConn) Close() error    { c.once.Do(func() { close(c.done) }); return nil }

// memServer is a server reached over in-memory pipes.
type memServer struct {
	s    *server
	same bool
	wg   sync.WaitGroup
}

var memServers = struct {
	sync.Mutex
	m map[string]*memServer
}{m: map[string]*memServer{}}

func init() {
	testDial = func(ctx context.Context, addr address, key []byte) (msgConn, error) {
		memServers.Lock()
		ms := memServers.m[addr.addr]
		memServers.Unlock()
		if ms == nil {
			return nil, errors.New("no such mem server")
		}
		return ms.connect(), nil
	}
}

func (ms *memServer) connect() msgConn {
	a, b := memPipe(ms.same)
	ms.wg.Add(1)
	go func() { defer ms.wg.Done(); ms.s.serveConn(b) }()
	return a
}

// newMemServer starts a server (raw encodings when raw) reachable as
// "mem" address name until the test ends.
func newMemServer(t testing.TB, name string, raw bool) *memServer {
	ms := &memServer{s: newServer(raw, slog.New(slog.DiscardHandler)), same: true}
	memServers.Lock()
	memServers.m[name] = ms
	memServers.Unlock()
	t.Cleanup(func() {
		memServers.Lock()
		delete(memServers.m, name)
		memServers.Unlock()
		ms.s.close()
		ms.wg.Wait()
		shared.Lock()
		if c := shared.m[address{"mem", name}]; c != nil {
			delete(shared.m, address{"mem", name})
			c.close()
		}
		shared.Unlock()
	})
	return ms
}

// client returns a new Manager connected to ms.
func (ms *memServer) client(t testing.TB, name string) *Manager {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := newClient(ctx, ms.connect(), 0, address{"mem", name}, []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{c: c}
	t.Cleanup(func() { m.Close() })
	return m
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
