package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/cluster"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestBadInput guards that invalid options, conflicting options and an
// unreachable server fail NewPool at once with a clear error.
func TestBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	srv, err := cluster.StartServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tc := range []struct {
		name string
		opts []multiproc.PoolOption
		want string
	}{
		{"AckWait", []multiproc.PoolOption{cluster.Backend(cluster.AckWait(time.Millisecond))}, "AckWait(1ms)"},
		{"MaxDeliver", []multiproc.PoolOption{cluster.Backend(cluster.MaxDeliver(0))}, "MaxDeliver(0)"},
		{"URL and Use", []multiproc.PoolOption{cluster.Backend(cluster.URL(srv.URL()), cluster.Use(srv))}, "conflict"},
		{"empty URL", []multiproc.PoolOption{cluster.Backend(cluster.URL(""))}, `URL("")`},
		{"LocalHosts", []multiproc.PoolOption{cluster.Backend(cluster.LocalHosts(0, 1))}, "LocalHosts(0, 1)"},
		{"unreachable", []multiproc.PoolOption{cluster.Backend(cluster.URL("nats://127.0.0.1:1"))}, "connect nats://127.0.0.1:1"},
		{"Initializer", []multiproc.PoolOption{multiproc.Initializer(square, 1), cluster.Backend(cluster.Use(srv))}, "cannot run an Initializer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := multiproc.NewPool(ctx, 1, tc.opts...)
			if err == nil {
				p.Close()
				t.Fatalf("NewPool succeeded; want an error saying %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewPool: %v; want it to say %q", err, tc.want)
			}
		})
	}
	if err := cluster.Serve(ctx, "nats://127.0.0.1:1", cluster.Workers(1)); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("Serve on an unreachable server: %v; want a connect error", err)
	}
	if _, err := cluster.StartServer(ctx, cluster.Listen("nohost")); err == nil {
		t.Error("StartServer(Listen(\"nohost\")) succeeded; want an error")
	}
}

// TestFileStorage guards the embedded server's file mode: streams are
// file-backed (written with sync_always), and a pool with LocalHosts runs
// on it.
func TestFileStorage(t *testing.T) {
	t.Parallel() // mostly waiting (AckWait, host expiry): overlap with the rest
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	srv, err := cluster.StartServer(ctx, cluster.StoreDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p, err := multiproc.NewPool(ctx, 1, cluster.Backend(cluster.Use(srv), cluster.LocalHosts(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := multiproc.Apply(ctx, p, square, 5); err != nil || v != 25 {
		t.Errorf("Apply = %d, %v; want 25", v, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, "MULTIPROC_TASKS")
	if err != nil {
		t.Fatal(err)
	}
	if st := s.CachedInfo().Config.Storage; st != jetstream.FileStorage {
		t.Errorf("tasks stream storage %v, want file", st)
	}
}
