package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/cluster"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// openFiles returns the worker's RLIMIT_NOFILE (soft).
var openFiles = multiproc.Register("cluster.openFiles", multiproc.Plain(func(int) uint64 {
	var rl syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}))

// TestBuildConsumerAndRegistry guards the layout on the server: every
// pool and host of a build shares one durable pull consumer, filtered on
// the build's subjects, with the pool's AckWait and MaxDeliver and never
// an InactiveThreshold (nats-server#7102 deletes idle consumers with
// pending messages); hosts register in the hosts bucket under their
// build.
func TestBuildConsumerAndRegistry(t *testing.T) {
	tc := newCluster(t, 1, 2)
	tc.pool(t, 1, cluster.AckWait(3*time.Second), cluster.MaxDeliver(4))
	p2 := tc.pool(t, 1, cluster.AckWait(3*time.Second), cluster.MaxDeliver(4))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if v, err := multiproc.Apply(ctx, p2, square, 3); err != nil || v != 9 {
		t.Fatalf("Apply = %d, %v", v, err)
	}
	nc, err := nats.Connect(tc.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, "MULTIPROC_TASKS")
	if err != nil {
		t.Fatal(err)
	}
	if s.CachedInfo().Config.Retention != jetstream.WorkQueuePolicy {
		t.Errorf("tasks stream retention %v; want work queue", s.CachedInfo().Config.Retention)
	}
	var infos []*jetstream.ConsumerInfo
	for ci := range s.ListConsumers(ctx).Info() {
		infos = append(infos, ci)
	}
	if len(infos) != 1 {
		t.Fatalf("%d consumers on the tasks stream; want one for the build", len(infos))
	}
	c := infos[0].Config
	build := strings.TrimPrefix(c.Durable, "multiproc-")
	if c.Durable == "" || build == c.Durable || c.FilterSubject != "multiproc.task."+build+".>" {
		t.Errorf("consumer durable %q filter %q; want multiproc-<build> on multiproc.task.<build>.>", c.Durable, c.FilterSubject)
	}
	if c.InactiveThreshold != 0 {
		t.Errorf("consumer InactiveThreshold %v; want none", c.InactiveThreshold)
	}
	if c.AckPolicy != jetstream.AckExplicitPolicy || c.AckWait != 3*time.Second || c.MaxDeliver != 4 {
		t.Errorf("consumer ack %v wait %v max deliver %d; want explicit, 3s, 4", c.AckPolicy, c.AckWait, c.MaxDeliver)
	}
	kv, err := js.KeyValue(ctx, "multiproc_hosts")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil || len(keys) != 1 || !strings.HasPrefix(keys[0], build+".") {
		t.Fatalf("hosts bucket keys %v, %v; want one, of build %s", keys, err, build)
	}
	e, err := kv.Get(ctx, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var entry struct {
		Build   string `json:"build"`
		Host    string `json:"host"`
		Pid     int    `json:"pid"`
		Workers int    `json:"workers"`
	}
	if err := json.Unmarshal(e.Value(), &entry); err != nil || entry.Build != build || entry.Workers != 2 || entry.Pid != tc.hosts[0].Pid() {
		t.Errorf("host entry %s (%v); want build %s, 2 workers, pid %d", e.Value(), err, build, tc.hosts[0].Pid())
	}
}

// TestNATSOptionsPassThrough guards that NATSOptions and HostNATSOptions
// reach nats.Connect as they are, after the package's own (so they can
// override MaxReconnects and the like), and that their errors surface.
func TestNATSOptionsPassThrough(t *testing.T) {
	tc := newCluster(t, 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var seen atomic.Int32
	record := func(o *nats.Options) error {
		if o.MaxReconnect == -1 && strings.HasPrefix(o.Name, "multiproc pool ") {
			seen.Add(1)
		}
		return nil
	}
	p, err := multiproc.NewPool(ctx, 1, cluster.Backend(cluster.Use(tc.srv), cluster.NATSOptions(record, nats.Name("custom name"))))
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if seen.Load() != 1 {
		t.Error("the NATS option was not applied after the pool's own")
	}
	errOpt := errors.New("refused by the option")
	bad := func(*nats.Options) error { return errOpt }
	if _, err := multiproc.NewPool(ctx, 1, cluster.Backend(cluster.Use(tc.srv), cluster.NATSOptions(bad))); !errors.Is(err, errOpt) {
		t.Errorf("NewPool with a failing NATS option: %v; want its error", err)
	}
	if err := cluster.Serve(ctx, tc.srv.URL(), cluster.HostNATSOptions(bad)); !errors.Is(err, errOpt) {
		t.Errorf("Serve with a failing NATS option: %v; want its error", err)
	}
}

// TestHostWorkerLimits guards that a host's WorkerOptions configure its
// worker processes, the isolation limits included: a host served in this
// process with WorkerLimits(OpenFiles) runs tasks under that limit.
func TestHostWorkerLimits(t *testing.T) {
	tc := newCluster(t, 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	hctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- cluster.Serve(hctx, tc.srv.URL(), cluster.Workers(1), cluster.HostName("limited"), cluster.DrainTimeout(0),
			cluster.WorkerOptions(multiproc.WorkerLimits(multiproc.Limits{OpenFiles: 100})))
	}()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	p := tc.pool(t, 1, cluster.NoWorkersWait(time.Minute))
	if v, err := multiproc.Apply(ctx, p, openFiles, 0); err != nil || v != 100 {
		t.Errorf("the host's worker has RLIMIT_NOFILE %d (%v); want 100, from the host's WorkerLimits", v, err)
	}
	if s := p.Stats(); len(s.PerHost) != 1 || s.PerHost[0].Host != "limited" || s.PerHost[0].Done != 1 {
		t.Errorf("Stats.PerHost %+v; want the host named limited, one task done", s.PerHost)
	}
}
