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
// The three Map rows run interleaved, round by round (one warm-up round,
// then -reps), so that load from elsewhere on the machine weighs on them
// alike; -only selecting any of them runs all three. It prints the ratios
// the bars are about, each the median of the rounds' own ratios:
// hosts1/hosts2 (want ≥ 1.6) and hosts2/local (want ≤ 1.3). Machine load
// is printed first, with each round and at the end: figures from a loaded
// machine are only comparable within one run.
//
// Every sample (with its hosts' start and its pool's close) runs under its
// own deadline, -row-timeout (default 5m): a sample past it fails the run
// with an error naming the row instead of hanging it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
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
	rowTimeout := flag.Duration("row-timeout", 5*time.Minute, "deadline of one sample of a row (with its set-up and clean-up); a sample past it fails the run")
	flag.Parse()
	if err := run(*reps, regexp.MustCompile(*only), *rowTimeout); err != nil {
		fmt.Fprintln(os.Stderr, "mpbench:", err)
		os.Exit(1)
	}
}

type row struct {
	name, unit string
	value      float64
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// bench runs the rows; every sample runs under its own deadline (the
// row timeout), so no row can hang the run: a sample past it fails with
// an error naming the row.
type bench struct {
	reps    int
	only    *regexp.Regexp
	timeout time.Duration
	rows    []row
}

// sampleCtx is the context of one sample of row name.
func (b *bench) sampleCtx(name string) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(context.Background(), b.timeout, fmt.Errorf("a sample of %s took more than -row-timeout %v", name, b.timeout))
}

// add measures row name: one warm-up and reps samples of f, each under
// its own deadline; it records and prints the median.
func (b *bench) add(name, unit string, f func(ctx context.Context) (float64, error)) error {
	if !b.only.MatchString(name) {
		return nil
	}
	var xs []float64
	for i := range b.reps + 1 {
		ctx, cancel := b.sampleCtx(name)
		v, err := f(ctx)
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if i > 0 {
			xs = append(xs, v)
		}
	}
	b.record(name, unit, median(xs))
	return nil
}

func (b *bench) record(name, unit string, v float64) {
	b.rows = append(b.rows, row{name, unit, v})
	fmt.Printf("%-28s %-8s %10.4g\n", name, unit, v)
}

func (b *bench) get(name string) float64 {
	for _, r := range b.rows {
		if r.name == name {
			return r.value
		}
	}
	return 0
}

func run(reps int, only *regexp.Regexp, timeout time.Duration) error {
	fmt.Printf("# mpbench (cluster): %s %s/%s, %d CPUs, reps=%d (median after 1 warm-up), row timeout %v, load average %s\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), reps, timeout, loadavg())
	b := &bench{reps: reps, only: only, timeout: timeout}
	ctx, cancel := b.sampleCtx("embedded server")
	srv, err := cluster.StartServer(ctx)
	cancel()
	if err != nil {
		return err
	}
	defer srv.Close()
	n := 0
	if err := b.add("limit.jetstream_pipelined", "msgs/s", func(ctx context.Context) (float64, error) {
		n++
		return rawJetStream(ctx, srv.URL(), fmt.Sprintf("MPBENCH_LIMIT_%d", n), 20000)
	}); err != nil {
		return err
	}
	if only.MatchString("cluster_submit_throughput") || only.MatchString("cluster_apply_latency") {
		ctx, cancel := b.sampleCtx("starting a host")
		h, err := cluster.StartHost(ctx, srv.URL(), 2, false)
		cancel()
		if err != nil {
			return err
		}
		err = b.add("cluster_submit_throughput", "tasks/s", func(ctx context.Context) (float64, error) { return submitThroughput(ctx, srv, 20000) })
		if err == nil {
			// The same host: two worker processes.
			err = b.add("cluster_apply_latency", "us/call", func(ctx context.Context) (float64, error) {
				return applyLatency(ctx, cluster.Backend(cluster.Use(srv)), 300)
			})
		}
		stopHosts(b, h)
		if err != nil {
			return err
		}
	}
	if only.MatchString("cluster_map.hosts1") || only.MatchString("cluster_map.hosts2") || only.MatchString("local_map.pool2") {
		if err := mapRows(b, srv); err != nil {
			return err
		}
	}
	if err := b.add("local_apply_latency", "us/call", func(ctx context.Context) (float64, error) { return applyLatency(ctx, nil, 2000) }); err != nil {
		return err
	}
	if l, s := b.get("limit.jetstream_pipelined"), b.get("cluster_submit_throughput"); l > 0 && s > 0 {
		fmt.Printf("cluster_submit_throughput / limit.jetstream_pipelined = %.3f\n", s/l)
	}
	if c, l := b.get("cluster_apply_latency"), b.get("local_apply_latency"); c > 0 && l > 0 {
		fmt.Printf("cluster_apply_latency / local_apply_latency = %.1fx\n", c/l)
	}
	fmt.Printf("# load average at the end: %s\n", loadavg())
	return nil
}

// stopHosts stops hosts under a sample deadline (killing them past it).
func stopHosts(b *bench, hs ...*cluster.HostProcess) {
	ctx, cancel := b.sampleCtx("stopping hosts")
	defer cancel()
	for _, h := range hs {
		h.Stop(ctx)
	}
}

// mapRows measures cluster_map.hosts1, cluster_map.hosts2 and
// local_map.pool2 interleaved: each round runs the three one after the
// other (hosts started and joined before each clock), so that load from
// elsewhere on the machine, which drifts over minutes, weighs on the three
// alike; the ratios are the medians of the rounds' ratios.
func mapRows(b *bench, srv *cluster.Server) error {
	iters, check := calibrate(5 * time.Millisecond)
	fmt.Printf("# calibration: %d rounds of burn take ~5 ms of CPU here (check %x)\n", iters, check)
	items := make([]int, 400)
	for i := range items {
		items[i] = iters
	}
	var h1, h2, loc, r12, r2l []float64
	for round := range b.reps + 1 {
		var hs []*cluster.HostProcess
		one := func(name string, hosts int) (float64, error) {
			ctx, cancel := b.sampleCtx(name)
			defer cancel()
			for len(hs) < hosts {
				h, err := cluster.StartHost(ctx, srv.URL(), 1, false)
				if err != nil {
					return 0, fmt.Errorf("%s: %w", name, err)
				}
				hs = append(hs, h)
			}
			v, err := clusterMap(ctx, srv, hosts, items)
			if err != nil && ctx.Err() != nil {
				err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
			}
			if err != nil {
				return 0, fmt.Errorf("%s: %w", name, err)
			}
			return v, nil
		}
		a, err := one("cluster_map.hosts1", 1)
		var c float64
		if err == nil {
			c, err = one("cluster_map.hosts2", 2)
		}
		stopHosts(b, hs...)
		if err != nil {
			return err
		}
		ctx, cancel := b.sampleCtx("local_map.pool2")
		l, err := localMap(ctx, items)
		cancel()
		if err != nil {
			return fmt.Errorf("local_map.pool2: %w", err)
		}
		fmt.Printf("# round %d: hosts1 %.3fs hosts2 %.3fs local pool2 %.3fs (load %s)%s\n", round, a, c, l, loadavg(), map[bool]string{true: " warm-up"}[round == 0])
		if round == 0 {
			continue
		}
		h1, h2, loc = append(h1, a), append(h2, c), append(loc, l)
		r12, r2l = append(r12, a/c), append(r2l, c/l)
	}
	b.record("cluster_map.hosts1", "s", median(h1))
	b.record("cluster_map.hosts2", "s", median(h2))
	b.record("local_map.pool2", "s", median(loc))
	fmt.Printf("cluster_map.hosts1 / hosts2 = %.2fx faster with two hosts (median of the rounds; bar: >= 1.6x)\n", median(r12))
	fmt.Printf("cluster_map.hosts2 / local_map.pool2 = %.2fx (median of the rounds; bar: <= 1.3x)\n", median(r2l))
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
// stream (name, made for this sample and deleted after it), pulled in
// batches and acked one by one by a consumer in the same process, timed
// from the first publish to the last ack.
//
// The publisher treats a full window of unacknowledged publishes
// (ErrTooManyStalledMsgs: 4096 outstanding for longer than the stall
// wait, which a loaded machine reaches) as back-pressure and waits for
// the window to drain; a publish whose PubAck fails fails the sample. A
// run once hung here: the first version let a stalled publish end the
// publisher without a word while the consumer waited forever for the
// messages never sent.
func rawJetStream(ctx context.Context, url, name string, n int) (float64, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	var pubErr atomic.Pointer[error]
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(time.Minute),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { pubErr.CompareAndSwap(nil, &err) }))
	if err != nil {
		return 0, err
	}
	subj := "mpbench.limit." + name
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.MemoryStorage})
	if err != nil {
		return 0, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		js.DeleteStream(dctx, name)
		cancel()
	}()
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "limit", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: -1})
	if err != nil {
		return 0, err
	}
	payload := make([]byte, 16)
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	t0 := time.Now()
	published := make(chan error, 1)
	go func() { published <- publishAll(pctx, js, subj, payload, n) }()
	got := 0
	for got < n {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("%d of %d messages arrived: %w", got, n, err)
		}
		select {
		case err := <-published:
			if err != nil {
				return 0, fmt.Errorf("publishing: %w", err)
			}
			published <- nil // done; read again below
		default:
		}
		if e := pubErr.Load(); e != nil {
			return 0, fmt.Errorf("a publish failed: %w", *e)
		}
		b, err := c.Fetch(min(n-got, 512), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return 0, err
		}
		for m := range b.Messages() {
			m.Ack()
			got++
		}
	}
	if err := <-published; err != nil {
		return 0, fmt.Errorf("publishing: %w", err)
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// publishAll publishes n messages asynchronously, waiting when the window
// of unacknowledged ones is full, and returns once every PubAck arrived
// (or ctx ended).
func publishAll(ctx context.Context, js jetstream.JetStream, subj string, payload []byte, n int) error {
	for i := 0; i < n; {
		_, err := js.PublishAsync(subj, payload, jetstream.WithStallWait(time.Second))
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Second):
			}
			continue
		}
		if err != nil {
			return err
		}
		i++
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-js.PublishAsyncComplete():
		return nil
	}
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
	defer p.CloseContext(ctx)
	if err := waitWorkers(ctx, p.Stats, 2); err != nil {
		return 0, err
	}
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
	defer x.ShutdownContext(ctx, true)
	if err := waitWorkers(ctx, x.Stats, 2); err != nil {
		return 0, err
	}
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
	defer p.CloseContext(ctx)
	if err := waitWorkers(ctx, p.Stats, workers); err != nil {
		return 0, err
	}
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
	defer p.CloseContext(ctx)
	t0 := time.Now()
	if _, err := multiproc.Map(ctx, p, work, items); err != nil {
		return 0, err
	}
	return time.Since(t0).Seconds(), nil
}

// waitWorkers waits until the pool sees n workers (the hosts joined), or
// fails when ctx ends.
func waitWorkers(ctx context.Context, stats func() multiproc.Stats, n int) error {
	for stats().Workers < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d workers (%d joined): %w", n, stats().Workers, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
