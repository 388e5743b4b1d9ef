package cluster_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/cluster"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// slowSquare takes ms milliseconds (sleeping, not burning CPU: the
// machine is shared) and returns x*x.
var slowSquare = multiproc.Register("cluster.slowSquare", multiproc.Plain(func(a [2]int) int {
	time.Sleep(time.Duration(a[1]) * time.Millisecond)
	return a[0] * a[0]
}))

// freeAddr is a loopback address with a port free at the time of the call,
// for a server that must come back on the same address.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startServer(t *testing.T, opts ...cluster.ServerOption) *cluster.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var s *cluster.Server
	var err error
	// The port was free a moment ago, and is again once the previous
	// server closed; on a loaded machine that can take a few tries.
	testutil.WaitFor(t, deadline, func() bool {
		s, err = cluster.StartServer(ctx, opts...)
		return err == nil || !strings.Contains(err.Error(), "address already in use")
	}, "the server's port to be free")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// submitSlow submits n slowSquare tasks of ms milliseconds each.
func submitSlow(ctx context.Context, p *multiproc.Pool, n, ms int) []*multiproc.AsyncResult[int] {
	rs := make([]*multiproc.AsyncResult[int], n)
	for i := range rs {
		rs[i] = multiproc.ApplyAsync(ctx, p, slowSquare, [2]int{i, ms})
	}
	return rs
}

// checkAll waits for every result and wants i*i from each.
func checkAll(t *testing.T, ctx context.Context, rs []*multiproc.AsyncResult[int]) {
	t.Helper()
	for i, r := range rs {
		if v, err := r.Get(ctx); err != nil || v != i*i {
			t.Errorf("task %d: %d, %v; want %d, nil", i, v, err, i*i)
		}
	}
}

// TestServerRestart guards that a pool and its worker hosts survive the
// server going away and coming back on the same address, with the tasks
// queued and running at the time: every future settles once, with its
// result. With memory storage (the default) the restarted server has
// lost every stream: the hosts and the pool create them again and the
// pool publishes its unsettled tasks again; with a store directory the
// server keeps them and the consumer redelivers what was unacknowledged.
func TestServerRestart(t *testing.T) {
	for _, storage := range []string{"memory", "file"} {
		t.Run(storage, func(t *testing.T) {
			t.Parallel()
			addr := freeAddr(t)
			opts := []cluster.ServerOption{cluster.Listen(addr)}
			if storage == "file" {
				opts = append(opts, cluster.StoreDir(t.TempDir()))
			}
			srv := startServer(t, opts...)
			tc := &testCluster{t: t, srv: srv}
			t.Cleanup(func() { tc.close() })
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			for range 2 {
				// The hosts come first: the streams are theirs to create.
				h, err := cluster.StartHost(ctx, srv.URL(), 1, storage == "file")
				if err != nil {
					t.Fatal(err)
				}
				tc.hosts = append(tc.hosts, h)
			}
			copts := []cluster.Option{cluster.URL(srv.URL()), cluster.AckWait(time.Second), cluster.NoWorkersWait(time.Minute)}
			if storage == "file" {
				copts = append(copts, cluster.FileStorage())
			}
			p, err := multiproc.NewPool(ctx, 2, cluster.Backend(copts...))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Terminate() })
			rs := submitSlow(ctx, p, 30, 100)
			testutil.WaitFor(t, deadline, func() bool { return p.Stats().Done >= 3 }, "a few tasks to finish")
			srv.Close()
			tc.srv = startServer(t, opts...)
			checkAll(t, ctx, rs)
			// And the cluster works as before.
			checkAll(t, ctx, submitSlow(ctx, p, 4, 1))
			s := p.Stats()
			if s.Done != 34 || s.Failed != 0 {
				t.Errorf("Stats Done %d Failed %d; want 34 and 0 (Duplicates %d)", s.Done, s.Failed, s.Duplicates)
			}
			t.Logf("%s: duplicates dropped: %d", storage, s.Duplicates)
			if err := p.CloseContext(ctx); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestServerGone guards the bound of a submitter whose server goes away
// for good: its hosts are then out of reach, and after NoWorkersWait
// (counted once the hosts' entries are older than 5s) every unsettled
// future fails with ErrNoWorkers saying the pool is disconnected;
// Close and the hosts' Stop then return promptly.
func TestServerGone(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	tc := &testCluster{t: t, srv: srv}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		for _, h := range tc.hosts {
			h.Stop(ctx)
		}
		srv.Close()
	})
	tc.addHost(1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	p, err := multiproc.NewPool(ctx, 1, cluster.Backend(cluster.URL(srv.URL()), cluster.NoWorkersWait(500*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Terminate() })
	rs := submitSlow(ctx, p, 5, 60_000)
	testutil.WaitFor(t, deadline, func() bool { return p.Stats().Queued < 5 }, "the host to start a task")
	srv.Close()
	t0 := time.Now()
	for i, r := range rs {
		_, err := r.Get(ctx)
		if !errors.Is(err, cluster.ErrNoWorkers) || !strings.Contains(err.Error(), "disconnected") {
			t.Errorf("task %d: %v; want ErrNoWorkers saying the pool is disconnected", i, err)
		}
	}
	t.Logf("the futures failed %v after the server closed", time.Since(t0).Round(time.Millisecond))
	// Close says what it could not clean up, and does not wait for it.
	t0 = time.Now()
	if err := p.CloseContext(ctx); err == nil || !strings.Contains(err.Error(), "disconnected") {
		t.Errorf("Close = %v; want an error saying it was disconnected", err)
	}
	closed := time.Since(t0)
	for _, h := range tc.hosts {
		if err := h.Stop(ctx); err != nil {
			t.Error(err)
		}
	}
	t.Logf("Close took %v, the host's Stop %v", closed.Round(time.Millisecond), (time.Since(t0) - closed).Round(time.Millisecond))
	if d := time.Since(t0); d > 30*time.Second {
		t.Errorf("Close and Stop took %v with the server gone", d)
	}
}

// TestHostConnectionLost guards a host that loses its connection while
// the server stays: one connected through a proxy that the test cuts.
// A short cut (less than AckWait) costs nothing: the host's results are
// published once it is back. A long one (more than AckWait) has its tasks
// redelivered to the other host; its late results are dropped as
// duplicates. Either way every future settles once, with its result.
func TestHostConnectionLost(t *testing.T) {
	for _, c := range []struct {
		name    string
		cut     time.Duration
		ackWait time.Duration
	}{{"short", 300 * time.Millisecond, 20 * time.Second}, {"long", 4 * time.Second, time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			px := newProxy(t, srv.URL())
			tc := &testCluster{t: t, srv: srv}
			t.Cleanup(tc.close) // before the proxy's: the hosts stop first
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			h, err := cluster.StartHost(ctx, px.url(), 1, false)
			if err != nil {
				t.Fatal(err)
			}
			tc.hosts = append(tc.hosts, h)
			tc.addHost(1)
			p := tc.pool(t, 2, cluster.AckWait(c.ackWait), cluster.NoWorkersWait(time.Minute))
			rs := submitSlow(ctx, p, 20, 200)
			testutil.WaitFor(t, deadline, func() bool { return p.Stats().Done >= 2 }, "a few tasks to finish")
			px.cut()
			time.Sleep(c.cut) // the length of the outage is what is tested
			px.restore()
			checkAll(t, ctx, rs)
			s := p.Stats()
			if s.Done != 20 || s.Failed != 0 {
				t.Errorf("Stats Done %d Failed %d; want 20 and 0", s.Done, s.Failed)
			}
			t.Logf("%s cut: duplicates dropped %d, per host %+v", c.name, s.Duplicates, s.PerHost)
		})
	}
}

// proxy forwards TCP connections to a server until cut: then it drops
// them all and refuses new ones until restored.
type proxy struct {
	t     *testing.T
	l     net.Listener
	to    string
	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, serverURL string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &proxy{t: t, l: l, to: strings.TrimPrefix(serverURL, "nats://"), conns: map[net.Conn]bool{}}
	px.wg.Go(px.accept)
	t.Cleanup(px.close)
	return px
}

func (px *proxy) url() string { return "nats://" + px.l.Addr().String() }

func (px *proxy) accept() {
	for {
		c, err := px.l.Accept()
		if err != nil {
			return
		}
		px.mu.Lock()
		if px.down {
			px.mu.Unlock()
			c.Close()
			continue
		}
		px.mu.Unlock()
		up, err := net.Dial("tcp", px.to)
		if err != nil {
			c.Close()
			continue
		}
		px.mu.Lock()
		px.conns[c], px.conns[up] = true, true
		px.mu.Unlock()
		for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
			px.wg.Go(func() {
				io.Copy(pair[0], pair[1])
				pair[0].Close()
				pair[1].Close()
			})
		}
	}
}

func (px *proxy) cut() {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.down = true
	for c := range px.conns {
		c.Close()
	}
	clear(px.conns)
}

func (px *proxy) restore() {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.down = false
}

func (px *proxy) close() {
	px.l.Close()
	px.cut()
	px.wg.Wait()
}
