package cluster_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/cluster"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestMain(m *testing.M) {
	multiproc.Main() // a host or a worker never returns from here
	if addr := os.Getenv(envTestServer); addr != "" {
		serveTestServer(addr) // never returns
	}
	testutil.Run(m)
}

// deadline is generous: a loaded 2-core machine under -race is slow.
const deadline = 120 * time.Second

var (
	square = multiproc.Register("cluster.square", multiproc.Plain(func(x int) int { return x * x }))
	errBad = multiproc.RegisterError(errors.New("cluster test sentinel"))
	fail   = multiproc.Register("cluster.fail", func(_ context.Context, x int) (int, error) {
		if x%7 == 3 {
			return 0, fmt.Errorf("item %d: %w", x, errBad)
		}
		return x, nil
	})
	boom = multiproc.Register("cluster.panic", multiproc.Plain(func(s string) int { panic(s) }))
	// die ends its worker process mid-task.
	die = multiproc.Register("cluster.die", func(_ context.Context, code int) (int, error) {
		if code < 0 {
			syscall.Kill(os.Getpid(), syscall.Signal(-code))
			time.Sleep(time.Hour)
		}
		os.Exit(code)
		return 0, nil
	})
	// dieOnce kills its worker the first time (marker absent), then succeeds.
	dieOnce = multiproc.Register("cluster.dieOnce", func(_ context.Context, marker string) (string, error) {
		if _, err := os.Stat(marker); err != nil {
			os.WriteFile(marker, nil, 0o600)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Hour)
		}
		return "second attempt", nil
	})
	// block runs until its context ends (writing marker first, if given).
	block = multiproc.Register("cluster.block", func(ctx context.Context, marker string) (string, error) {
		if marker != "" {
			os.WriteFile(marker, []byte("started"), 0o600)
		}
		<-ctx.Done()
		return "", ctx.Err()
	})
	// spin burns about ms milliseconds of CPU and returns its host's pid.
	spin = multiproc.Register("cluster.spin", multiproc.Plain(func(ms int) int {
		end := time.Now().Add(time.Duration(ms) * time.Millisecond)
		for time.Now().Before(end) {
		}
		return os.Getppid()
	}))
	// size returns n bytes; echo returns its argument's length.
	size = multiproc.Register("cluster.size", multiproc.Plain(func(n int) []byte { return make([]byte, n) }))
	echo = multiproc.Register("cluster.echo", multiproc.Plain(func(b []byte) int { return len(b) }))
)

// envTestServer makes the test binary serve an embedded NATS server on the
// address it names (in whatever network namespace it runs) until its
// stdin closes: the server side of TestNetworkNamespaces.
const envTestServer = "MULTIPROC_CLUSTER_TEST_SERVER"

// serveTestServer is the server side; TestMain calls it.
func serveTestServer(addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	s, err := cluster.StartServer(ctx, cluster.Listen(addr))
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(s.URL())
	bufio.NewReader(os.Stdin).ReadString('\n') // until EOF
	s.Close()
	os.Exit(0)
}

// testCluster is an embedded server with worker hosts.
type testCluster struct {
	t     *testing.T
	srv   *cluster.Server
	hosts []*cluster.HostProcess
}

// newCluster starts a server and n hosts of workers workers each; the
// test's cleanup stops them and checks that nothing is left in the
// server's streams.
func newCluster(t *testing.T, n, workers int) *testCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	srv, err := cluster.StartServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{t: t, srv: srv}
	t.Cleanup(tc.close)
	for range n {
		tc.addHost(workers)
	}
	return tc
}

func (tc *testCluster) addHost(workers int) *cluster.HostProcess {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	h, err := cluster.StartHost(ctx, tc.srv.URL(), workers, false)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.hosts = append(tc.hosts, h)
	return h
}

func (tc *testCluster) close() {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	for _, h := range tc.hosts {
		if err := h.Stop(ctx); err != nil {
			tc.t.Error(err)
		}
	}
	if !tc.t.Failed() {
		tc.checkEmpty()
	}
	tc.srv.Close()
}

// checkEmpty fails the test if a stream still holds messages once the
// pools are closed and the hosts stopped: tasks, results, host entries,
// objects.
func (tc *testCluster) checkEmpty() {
	tc.t.Helper()
	nc, err := nats.Connect(tc.srv.URL())
	if err != nil {
		tc.t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	// A killed host's entry stays until the bucket's MaxAge (5s) removes
	// it; everything else must be gone at once.
	var left []string
	testutil.WaitFor(tc.t, deadline, func() bool {
		left = left[:0]
		l := js.ListStreams(ctx)
		for info := range l.Info() {
			if info.State.Msgs != 0 {
				left = append(left, fmt.Sprintf("%s holds %d", info.Config.Name, info.State.Msgs))
				if info.Config.Name != "KV_multiproc_hosts" {
					return true // fail at once
				}
			}
		}
		return len(left) == 0
	}, "the host entries to expire")
	if len(left) > 0 {
		tc.t.Errorf("streams not empty after Close: %v", left)
	}
}

// pool makes a pool on tc's server; opts are cluster options or pool
// options.
func (tc *testCluster) pool(t *testing.T, n int, opts ...any) *multiproc.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	copts := []cluster.Option{cluster.Use(tc.srv)}
	var popts []multiproc.PoolOption
	for _, o := range opts {
		switch o := o.(type) {
		case cluster.Option:
			copts = append(copts, o)
		case multiproc.PoolOption:
			popts = append(popts, o)
		default:
			t.Fatalf("pool option of type %T", o)
		}
	}
	p, err := multiproc.NewPool(ctx, n, append(popts, cluster.Backend(copts...))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func TestMapApply(t *testing.T) {
	tc := newCluster(t, 2, 1)
	p := tc.pool(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	got, err := multiproc.Map(ctx, p, square, items)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != i*i {
			t.Fatalf("Map[%d] = %d, want %d", i, v, i*i)
		}
	}
	if v, err := multiproc.Apply(ctx, p, square, 12); err != nil || v != 144 {
		t.Fatalf("Apply = %d, %v; want 144, nil", v, err)
	}
	var progress strings.Builder
	pp := tc.pool(t, 2, multiproc.ProgressTo(&progress))
	if _, err := multiproc.Map(ctx, pp, square, items, multiproc.Chunksize(10)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "100/100 100%") {
		t.Errorf("progress lines %q; want a final 100/100 100%%", progress.String())
	}
	s := p.Stats()
	if s.Workers != 2 || len(s.PerHost) != 2 {
		t.Errorf("Stats: Workers %d, %d hosts; want 2 and 2 (%+v)", s.Workers, len(s.PerHost), s.PerHost)
	}
	if s.Done == 0 || s.Items != 101 {
		t.Errorf("Stats: Done %d Items %d; want Items 101", s.Done, s.Items)
	}
}

// fakeHost registers a host of another build in the hosts bucket, as a
// host built from another version of the program would, and keeps it
// alive until the returned function is called.
func fakeHost(t *testing.T, tc *testCluster, build string) (stop func()) {
	t.Helper()
	nc, err := nats.Connect(tc.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	kv, err := js.KeyValue(ctx, "multiproc_hosts")
	if err != nil {
		t.Fatal(err)
	}
	key := build + ".fake"
	val := []byte(`{"build":"` + build + `","host":"elsewhere:1","pid":1,"workers":4}`)
	if _, err := kv.Put(ctx, key, val); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				kv.Put(context.Background(), key, val)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		kv.Delete(context.Background(), key)
		s, _ := js.Stream(context.Background(), "KV_multiproc_hosts")
		s.Purge(context.Background(), jetstream.WithPurgeSubject("$KV.multiproc_hosts."+key))
		nc.Close()
	}
}
