// Command mpbench measures the cluster backend (the cluster module's rows
// of the project's benchmarks; the root's cmd/mpbench has the rest) and,
// in the same run, the limits they are compared with:
//
//	go run ./cmd/mpbench             # from the cluster module, every row, 5 samples
//	go run ./cmd/mpbench -reps 3 -only map
//
// Rows (medians of -reps samples after one warm-up; hosts are started and
// joined before the clock starts; the CPU work is calibrated by CPU time):
//
//   - limit.jetstream_pipelined: messages/s through the embedded server's
//     work-queue stream with pipelined async publishes, one pull consumer
//     fetching in batches and an ack per message: what any task queue on
//     JetStream can reach here.
//   - cluster_submit_throughput: tasks/s of Submit + Result on 20000
//     trivial tasks, one host with two worker processes.
//   - cluster_apply_latency, local_apply_latency: mean µs of sequential
//     Apply calls of a trivial task, on that host and on a local Pool(2).
//   - cluster_map.hosts1, cluster_map.hosts2: seconds for Map over 400
//     items of ~5 ms of CPU each (calibrated at start), one worker process
//     per host, pool size = workers (default chunking).
//   - local_map.pool2: the same Map on a local Pool(2).
//
// It prints the ratios the bars are about: hosts1/hosts2 (want
// ≥ 1.6) and hosts2/local (want ≤ 1.3). Machine load is printed first:
// figures from a loaded machine are only comparable within one run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/cluster"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// burn does n rounds of integer work: CPU time, not wall-clock time, so
// contention shows.
func burn(n int) uint64 {
	x := uint64(88172645463325252)
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

var (
	work   = multiproc.Register("mpbench-cluster.burn", multiproc.Plain(burn))
	square = multiproc.Register("mpbench-cluster.square", multiproc.Plain(func(x int) int { return x * x }))
)

func main() {
	multiproc.Main()
	reps := flag.Int("reps", 5, "samples per row (after one warm-up)")
	only := flag.String("only", "", "run only rows matching this regexp")
	flag.Parse()
	if err := run(*reps, regexp.MustCompile(*only)); err != nil {
		fmt.Fprintln(os.Stderr, "mpbench:", err)
		os.Exit(1)
	}
}

type row struct {
	name, unit string
	value      float64
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

func sample(reps int, f func() (float64, error)) (float64, error) {
	var xs []float64
	for i := range reps + 1 {
		v, err := f()
		if err != nil {
			return 0, err
		}
		if i > 0 {
			xs = append(xs, v)
		}
	}
	return median(xs), nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func run(reps int, only *regexp.Regexp) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	fmt.Printf("# mpbench (cluster): %s %s/%s, %d CPUs, reps=%d (median after 1 warm-up), load average %s\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), reps, loadavg())
	srv, err := cluster.StartServer(ctx)
	if err != nil {
		return err
	}
	defer srv.Close()
	var rows []row
	add := func(name, unit string, f func() (float64, error)) error {
		if !only.MatchString(name) {
			return nil
		}
		v, err := sample(reps, f)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rows = append(rows, row{name, unit, v})
		fmt.Printf("%-28s %-8s %10.4g\n", name, unit, v)
		return nil
	}
	if err := add("limit.jetstream_pipelined", "msgs/s", func() (float64, error) { return rawJetStream(ctx, srv.URL(), 20000) }); err != nil {
		return err
	}
	if only.MatchString("cluster_submit_throughput") || only.MatchString("cluster_apply_latency") {
		h, err := cluster.StartHost(ctx, srv.URL(), 2, false)
		if err != nil {
			return err
		}
		err = add("cluster_submit_throughput", "tasks/s", func() (float64, error) { return submitThroughput(ctx, srv, 20000) })
		if err == nil {
			// The same host: two worker processes.
			err = add("cluster_apply_latency", "us/call", func() (float64, error) { return applyLatency(ctx, cluster.Backend(cluster.Use(srv)), 300) })
		}
		h.Stop(ctx)
		if err != nil {
			return err
		}
	}
	iters, check := calibrate(5 * time.Millisecond)
	fmt.Printf("# calibration: %d rounds of burn take ~5 ms of CPU here (check %x)\n", iters, check)
	items := make([]int, 400)
	for i := range items {
		items[i] = iters
	}
	for _, n := range []int{1, 2} {
		name := fmt.Sprintf("cluster_map.hosts%d", n)
		if !only.MatchString(name) {
			continue
		}
		var hs []*cluster.HostProcess
		for range n {
			h, err := cluster.StartHost(ctx, srv.URL(), 1, false)
			if err != nil {
				return err
			}
			hs = append(hs, h)
		}
		err := add(name, "s", func() (float64, error) { return clusterMap(ctx, srv, n, items) })
		for _, h := range hs {
			h.Stop(ctx)
		}
		if err != nil {
			return err
		}
	}
	if err := add("local_map.pool2", "s", func() (float64, error) { return localMap(ctx, items) }); err != nil {
		return err
	}
	if err := add("local_apply_latency", "us/call", func() (float64, error) { return applyLatency(ctx, nil, 2000) }); err != nil {
		return err
	}
	get := func(name string) float64 {
		for _, r := range rows {
			if r.name == name {
				return r.value
			}
		}
		return 0
	}
	if l, s := get("limit.jetstream_pipelined"), get("cluster_submit_throughput"); l > 0 && s > 0 {
		fmt.Printf("cluster_submit_throughput / limit.jetstream_pipelined = %.3f\n", s/l)
	}
	if h1, h2 := get("cluster_map.hosts1"), get("cluster_map.hosts2"); h1 > 0 && h2 > 0 {
		fmt.Printf("cluster_map.hosts1 / hosts2 = %.2fx faster with two hosts (bar: >= 1.6x)\n", h1/h2)
	}
	if c, l := get("cluster_apply_latency"), get("local_apply_latency"); c > 0 && l > 0 {
		fmt.Printf("cluster_apply_latency / local_apply_latency = %.1fx\n", c/l)
	}
	if h2, l := get("cluster_map.hosts2"), get("local_map.pool2"); h2 > 0 && l > 0 {
		fmt.Printf("cluster_map.hosts2 / local_map.pool2 = %.2fx (bar: <= 1.3x)\n", h2/l)
	}
	fmt.Printf("# load average at the end: %s\n", loadavg())
	return nil
}

// calibrate finds how many rounds of burn take d of CPU here, by this
// process's CPU time (not wall time, which other load on the machine
// inflates), the least of five trials; check is burn's result, printed so
// the work cannot be optimised away.
func calibrate(d time.Duration) (rounds int, check uint64) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const n = 2_000_000
	best := time.Duration(0)
	for range 5 {
		c0 := cpuTime()
		check ^= burn(n)
		if el := cpuTime() - c0; el > 0 && (best == 0 || el < best) {
			best = el
		}
	}
	return int(float64(n) * float64(d) / float64(best)), check
}

// cpuTime is the user and system CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawJetStream is the limit: pipelined async publishes into a work-queue
// stream, pulled in batches and acked one by one by a consumer in the
// same process, timed from the first publish to the last ack.
func rawJetStream(ctx context.Context, url string, n int) (float64, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return 0, err
	}
	const name = "MPBENCH_LIMIT"
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"mpbench.limit"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.MemoryStorage})
	if err != nil {
		return 0, err
	}
	defer js.DeleteStream(context.Background(), name)
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "limit", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: -1})
	if err != nil {
		return 0, err
	}
	payload := make([]byte, 16)
	t0 := time.Now()
	errc := make(chan error, 1)
	go func() {
		for range n {
			if _, err := js.PublishAsync("mpbench.limit", payload, jetstream.WithStallWait(time.Minute)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	got := 0
	for got < n {
		select {
		case err := <-errc:
			if err != nil {
				return 0, fmt.Errorf("publishing: %w", err)
			}
			errc <- nil // done publishing; checked again below
		default:
		}
		if time.Since(t0) > 5*time.Minute {
			return 0, fmt.Errorf("only %d of %d messages arrived in 5 minutes", got, n)
		}
		b, err := c.Fetch(min(n-got, 512), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return 0, err
		}
		for m := range b.Messages() {
			m.Ack()
			got++
		}
	}
	if err := <-errc; err != nil {
		return 0, err
	}
	if err := nc.Flush(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// applyLatency is the mean of n sequential Apply calls of a trivial task,
// on a cluster pool (opt set) or a local Pool(2).
func applyLatency(ctx context.Context, opt multiproc.PoolOption, n int) (float64, error) {
	var opts []multiproc.PoolOption
	if opt != nil {
		opts = append(opts, opt)
	}
	p, err := multiproc.NewPool(ctx, 2, opts...)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	waitWorkers(ctx, p.Stats, 2)
	t0 := time.Now()
	for i := range n {
		if _, err := multiproc.Apply(ctx, p, square, i); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(t0).Microseconds()) / float64(n), nil
}

func submitThroughput(ctx context.Context, srv *cluster.Server, n int) (float64, error) {
	x, err := multiproc.NewExecutor(ctx, 2, cluster.Backend(cluster.Use(srv)))
	if err != nil {
		return 0, err
	}
	defer x.Shutdown(true, false)
	waitWorkers(ctx, x.Stats, 2)
	t0 := time.Now()
	fs := make([]*multiproc.Future[int], n)
	for i := range fs {
		fs[i] = multiproc.Submit(ctx, x, square, i)
	}
	for i, f := range fs {
		if v, err := f.Result(ctx); err != nil || v != i*i {
			return 0, fmt.Errorf("task %d: %d, %v", i, v, err)
		}
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

func clusterMap(ctx context.Context, srv *cluster.Server, workers int, items []int) (float64, error) {
	p, err := multiproc.NewPool(ctx, workers, cluster.Backend(cluster.Use(srv)))
	if err != nil {
		return 0, err
	}
	defer p.Close()
	waitWorkers(ctx, p.Stats, workers)
	t0 := time.Now()
	if _, err := multiproc.Map(ctx, p, work, items); err != nil {
		return 0, err
	}
	return time.Since(t0).Seconds(), nil
}

func localMap(ctx context.Context, items []int) (float64, error) {
	p, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	t0 := time.Now()
	if _, err := multiproc.Map(ctx, p, work, items); err != nil {
		return 0, err
	}
	return time.Since(t0).Seconds(), nil
}

// waitWorkers waits until the pool sees n workers (the hosts joined).
func waitWorkers(ctx context.Context, stats func() multiproc.Stats, n int) {
	for stats().Workers < n && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}
