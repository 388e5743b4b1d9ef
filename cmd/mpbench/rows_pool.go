package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/multiproc-go/multiproc"
)

// poolWorkers is the size of every pool and executor below, as WORKERS is in mpbench.py.
const poolWorkers = 2

// Work sizes of one sample at scale 1, the same as mpbench.py's.
const (
	mapItems      = 1_000_000
	applyCalls    = 2000
	asyncTasks    = 100_000
	seedStart     = 1_000_000_000
	seedCount     = 10_000
	execMapChunk  = 1000
	mapChunkLarge = 10_000
)

// The functions the workers run; each has a namesake in mpbench.py doing the same work.
var (
	sq    = multiproc.Register("mpbench.sq", multiproc.Plain(func(x int) int { return x * x }))
	ident = multiproc.Register("mpbench.ident", multiproc.Plain(func(x int) int { return x }))
	// pidAfter returns the worker's pid after a short sleep, so that an idle worker has to
	// take the next task: readyPool uses it to see every worker answer.
	pidAfter = multiproc.Register("mpbench.pid_after", multiproc.Plain(func(d time.Duration) int {
		time.Sleep(d)
		return os.Getpid()
	}))
	// processRange is the seed program's worker: factor every n in [start, end).
	processRange = multiproc.Register2("mpbench.process_range",
		func(_ context.Context, start, end int) (int, error) { return factorRange(start, end), nil })
)

func init() {
	register(
		Row{
			Name: "pool_startup", Unit: "ms",
			Doc:    "NewPool(2) -> first Apply(sq, 1) result; Close untimed",
			Go:     poolStartup,
			Python: PyRow{Name: "pool_startup"},
		},
		Row{
			Name: "pool_limited_startup", Unit: "ms",
			Doc: "pool_startup with WorkerLimits (a memory cap and pids limit in a cgroup per worker, " +
				"CPU time, open files, nice, no core dumps); limit = pool_startup, measured right after",
			Go:        poolLimitedStartup,
			LimitFunc: poolStartup,
			Note: "pool_limited_startup's limit is pool_startup measured right after it in the same run; " +
				"the bar (issue 14) is at most 1.5x.",
		},
		Row{
			Name: "pool_map_trivial", Unit: "items/s", HigherIsBetter: true,
			Doc:    "Map(sq, 1M ints) on a ready Pool(2), default chunksize (Python's: 4 chunks per worker)",
			Go:     func(ctx context.Context, env *Env) (float64, error) { return poolMap(ctx, env, 0) },
			Python: PyRow{Name: "pool_map_trivial"},
		},
		Row{
			Name: "pool_map_trivial.chunk_10000", Unit: "items/s", HigherIsBetter: true,
			Doc: "Map(sq, 1M ints) on a ready Pool(2), Chunksize(10000)",
			Go: func(ctx context.Context, env *Env) (float64, error) {
				return poolMap(ctx, env, mapChunkLarge)
			},
			Python: PyRow{Name: "pool_map_trivial.chunk_10000"},
		},
		Row{
			Name: "apply_latency", Unit: "us/call",
			Doc:       "sequential Apply(ident, i) round trips on a ready Pool(2), mean per call",
			Go:        applyLatency,
			Python:    PyRow{Name: "apply_latency"},
			LimitFunc: socketpairRoundTrip,
			Note: "apply_latency's limit is a 1-byte socketpair round trip with a re-exec'd child " +
				"(limit.socketpair_pingpong as us per round trip), measured right after the row.",
		},
		Row{
			Name: "apply_latency.loaded", Unit: "us/call",
			Doc: "apply_latency while one CPU-bound spinner process per CPU runs, for both sides " +
				"(and the limit) alike",
			Go:        applyLatency,
			Python:    PyRow{Name: "apply_latency"},
			LimitFunc: socketpairRoundTrip,
			Load:      startSpinners,
			Note: "apply_latency.loaded: one CPU-bound spinner process per CPU (re-exec'd mpbench " +
				"children at normal priority) runs throughout the Go side, its limit and the CPython " +
				"side, so both are measured under the same load.",
		},
		Row{
			Name: "apply_async_throughput", Unit: "tasks/s", HigherIsBetter: true,
			Doc:    "100k ApplyAsync(ident, i), then Get each, on a ready Pool(2)",
			Go:     applyAsyncThroughput,
			Python: PyRow{Name: "apply_async_throughput"},
		},
		Row{
			Name: "executor_submit_throughput", Unit: "tasks/s", HigherIsBetter: true,
			Doc:    "100k Submit(ident, i), then Result each, on a ready Executor(2)",
			Go:     executorSubmitThroughput,
			Python: PyRow{Name: "executor_submit_throughput"},
		},
		Row{
			Name: "executor_map", Unit: "items/s", HigherIsBetter: true,
			Doc:    "Imap(sq) over 1M ints (a lazy iterator) with Chunksize(1000) on a ready Executor(2)",
			Go:     executorMap,
			Python: PyRow{Name: "executor_map"},
		},
		Row{
			Name: "seed_primes", Unit: "s",
			Doc: "factor every n in [1e9, 1e9+10000): NewPool(2) + Starmap over 2 ranges + Close, " +
				"end to end; limit = 2 goroutines + one pool start-up",
			Go:        seedPrimes,
			Python:    PyRow{Name: "seed_primes"},
			LimitFunc: seedPrimesLimit,
			Note: "seed_primes's limit is the same factoring on 2 goroutines plus one pool start-up " +
				"(NewPool(2) -> first result), both timed in each sample, measured right after the row.",
		},
		Row{
			Name: "seed_primes.goroutines2", Unit: "s",
			Doc: "the seed_primes factoring on 2 goroutines in this process (its limit's baseline)",
			Go:  func(ctx context.Context, env *Env) (float64, error) { return seedGoroutines(ctx, env, poolWorkers) },
		},
		Row{
			Name: "seed_primes.serial_go", Unit: "s",
			Doc: "the seed_primes factoring on 1 goroutine in this process",
			Go:  func(ctx context.Context, env *Env) (float64, error) { return seedGoroutines(ctx, env, 1) },
		},
		Row{
			Name: "pool_worker_killed", Unit: "ms",
			Doc: "Apply of a task whose worker is SIGKILLed: time until the caller has its outcome " +
				"(ErrWorkerDied here; CPython's Pool never answers, so its figure is the 2 s it waited)",
			Go:     poolWorkerKilled,
			Python: PyRow{Name: "pool_worker_killed"},
		},
		Row{
			Name: "pool_task_deaths", Unit: "s",
			Doc: fmt.Sprintf("%d ApplyAsync on a ready Pool(2), no Retries: task i spins %v of CPU, "+
				"then exits its worker when i%%%d == %d; until all outcomes are in", taskDeathTasks, taskDeathSpin,
				taskDeathEvery, taskDeathEvery-1),
			Go:    func(ctx context.Context, env *Env) (float64, error) { return poolTaskDeaths(ctx, env, true) },
			Limit: "limit.pool_task_deaths.no_exits",
			Note: "pool_task_deaths is held against the same run without exits (a dead task's worker is " +
				"replaced at once; only deaths without a task back off); CPython's Pool hangs on a dead " +
				"worker, so it has no counterpart.",
		},
		Row{
			Name: "limit.pool_task_deaths.no_exits", Unit: "s",
			Doc: "pool_task_deaths without the exits: the same tasks all succeed",
			Go:  func(ctx context.Context, env *Env) (float64, error) { return poolTaskDeaths(ctx, env, false) },
		},
		Row{
			Name: "pool_maxtasks1", Unit: "tasks/s", HigherIsBetter: true,
			Doc: fmt.Sprintf("%d ApplyAsync(ident, i), then Get each, on a Pool(2) with MaxTasksPerChild(1): "+
				"one worker start per task", maxTasks1Tasks),
			Go: poolMaxTasks1,
		},
		Row{
			Name: "pool_worker_rss", Unit: "MB",
			Doc:    "VmRSS (/proc/PID/status) of an idle Pool(2) worker that has run a task, mean of the 2",
			Go:     poolWorkerRSS,
			Python: PyRow{Name: "pool_worker_rss"},
			Note: "pool_worker_rss counts every page a worker maps, shared ones included: a Go worker's " +
				"binary text and rodata (shared with the parent and the other workers, file-backed) and a " +
				"forked CPython worker's pages still shared copy-on-write with its parent. " +
				"pool_worker_private counts only the pages no other process maps.",
		},
		Row{
			Name: "pool_worker_private", Unit: "MB",
			Doc:    "Private_Clean + Private_Dirty (/proc/PID/smaps_rollup) of the same idle Pool(2) workers, mean of the 2",
			Go:     poolWorkerPrivate,
			Python: PyRow{Name: "pool_worker_private"},
		},
	)
}

// readyPool starts a Pool(2) and returns once each worker has answered a task, as
// mpbench.py's ready_pool does, so no row below times the start-up.
func readyPool(ctx context.Context) (*multiproc.Pool, error) {
	p, err := multiproc.NewPool(ctx, poolWorkers)
	if err != nil {
		return nil, fmt.Errorf("mpbench: pool: %w", err)
	}
	if err := waitReady(ctx, p); err != nil {
		p.Terminate()
		return nil, err
	}
	return p, nil
}

// readyExecutor is readyPool for an Executor.
func readyExecutor(ctx context.Context) (*multiproc.Executor, error) {
	x, err := multiproc.NewExecutor(ctx, poolWorkers)
	if err != nil {
		return nil, fmt.Errorf("mpbench: executor: %w", err)
	}
	if err := waitReady(ctx, x); err != nil {
		x.Shutdown(true, true)
		return nil, err
	}
	return x, nil
}

// waitReady asks every worker at once for its pid after a short sleep, until each of the
// poolWorkers distinct workers has answered (mpbench.py's wait_ready).
func waitReady(ctx context.Context, w multiproc.Workers) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	seen := make(map[int]bool)
	for len(seen) < poolWorkers {
		rs := make([]*multiproc.AsyncResult[int], poolWorkers)
		for i := range rs {
			rs[i] = multiproc.ApplyAsync(ctx, w, pidAfter, 20*time.Millisecond)
		}
		for _, r := range rs {
			pid, err := r.Get(ctx)
			if err != nil {
				return fmt.Errorf("mpbench: waiting for %d workers (%d answered): %w", poolWorkers, len(seen), err)
			}
			seen[pid] = true
		}
	}
	return nil
}

// closePool closes p outside any timed region, keeping the first error.
func closePool(p interface{ Close() error }, err *error) {
	if cerr := p.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("mpbench: close: %w", cerr)
	}
}

// poolStartup measures NewPool(2) up to the first Apply result, in ms.
func poolStartup(ctx context.Context, env *Env) (ms float64, err error) {
	start := time.Now()
	p, err := multiproc.NewPool(ctx, poolWorkers)
	if err != nil {
		return 0, fmt.Errorf("mpbench: pool: %w", err)
	}
	defer closePool(p, &err)
	if _, err := multiproc.Apply(ctx, p, sq, 1); err != nil {
		return 0, fmt.Errorf("mpbench: apply: %w", err)
	}
	return time.Since(start).Seconds() * 1e3, nil
}

// benchLimits are the limits of pool_limited_startup: every kind the workers apply at
// start, and a cgroup (memory, pids) per worker.
var benchLimits = multiproc.Limits{
	Memory: 512 << 20, Processes: 128, CPUTime: time.Minute, OpenFiles: 4096, Nice: 1, NoCoreDumps: true,
}

// poolLimitedStartup is poolStartup with benchLimits: the cost of making, filling and (untimed)
// removing a cgroup per worker, and of applying the limits in each worker before its first task.
func poolLimitedStartup(ctx context.Context, env *Env) (ms float64, err error) {
	start := time.Now()
	p, err := multiproc.NewPool(ctx, poolWorkers, multiproc.WorkerLimits(benchLimits))
	if err != nil {
		return 0, fmt.Errorf("mpbench: limited pool: %w", err)
	}
	defer closePool(p, &err)
	if _, err := multiproc.Apply(ctx, p, sq, 1); err != nil {
		return 0, fmt.Errorf("mpbench: apply: %w", err)
	}
	return time.Since(start).Seconds() * 1e3, nil
}

// poolMap measures Map(sq) over 1M ints in items/s; chunksize 0 is the default. Building
// the input slice is timed: Python passes range(n) and makes its items inside map.
func poolMap(ctx context.Context, env *Env, chunksize int) (rate float64, err error) {
	n := env.N(mapItems)
	p, err := readyPool(ctx)
	if err != nil {
		return 0, err
	}
	defer closePool(p, &err)
	var opts []multiproc.CallOption
	if chunksize > 0 {
		opts = append(opts, multiproc.Chunksize(chunksize))
	}
	start := time.Now()
	items := make([]int, n)
	for i := range items {
		items[i] = i
	}
	out, err := multiproc.Map(ctx, p, sq, items, opts...)
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("mpbench: map: %w", err)
	}
	if len(out) != n || out[n-1] != (n-1)*(n-1) {
		return 0, fmt.Errorf("mpbench: map returned %d results, want %d ending in %d", len(out), n, (n-1)*(n-1))
	}
	return float64(n) / elapsed.Seconds(), nil
}

// applyLatency measures sequential Apply(ident) round trips, mean per call in µs.
func applyLatency(ctx context.Context, env *Env) (us float64, err error) {
	n := env.N(applyCalls)
	p, err := readyPool(ctx)
	if err != nil {
		return 0, err
	}
	defer closePool(p, &err)
	start := time.Now()
	for i := range n {
		v, err := multiproc.Apply(ctx, p, ident, i)
		if err != nil {
			return 0, fmt.Errorf("mpbench: apply: %w", err)
		}
		if v != i {
			return 0, fmt.Errorf("mpbench: apply(ident, %d) = %d", i, v)
		}
	}
	return time.Since(start).Seconds() * 1e6 / float64(n), nil
}

// socketpairRoundTrip is limit.socketpair_pingpong expressed in µs per round trip, the
// unit and direction of apply_latency: no Apply can return faster than one round trip.
func socketpairRoundTrip(ctx context.Context, env *Env) (float64, error) {
	rate, err := socketpairPingpong(ctx, env)
	if err != nil {
		return 0, err
	}
	return 1e6 / rate, nil
}

// applyAsyncThroughput measures 100k ApplyAsync(ident) followed by Get of each, in tasks/s.
func applyAsyncThroughput(ctx context.Context, env *Env) (rate float64, err error) {
	n := env.N(asyncTasks)
	p, err := readyPool(ctx)
	if err != nil {
		return 0, err
	}
	defer closePool(p, &err)
	return applyAsyncRate(ctx, p, n)
}

// executorSubmitThroughput measures 100k Submit(ident) followed by Result of each, in
// tasks/s.
func executorSubmitThroughput(ctx context.Context, env *Env) (rate float64, err error) {
	n := env.N(asyncTasks)
	x, err := readyExecutor(ctx)
	if err != nil {
		return 0, err
	}
	defer closePool(x, &err)
	fs := make([]*multiproc.Future[int], n)
	start := time.Now()
	for i := range fs {
		fs[i] = multiproc.Submit(ctx, x, ident, i)
	}
	for i, f := range fs {
		if v, err := f.Result(ctx); err != nil || v != i {
			return 0, fmt.Errorf("mpbench: submit(ident, %d) = %d, %v", i, v, err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// executorMap measures Imap(sq) over a lazy sequence of 1M ints with Chunksize(1000), the
// results consumed in order, in items/s.
func executorMap(ctx context.Context, env *Env) (rate float64, err error) {
	n := env.N(mapItems)
	x, err := readyExecutor(ctx)
	if err != nil {
		return 0, err
	}
	defer closePool(x, &err)
	start := time.Now()
	i := 0
	for v, err := range multiproc.Imap(ctx, x, sq, count(n), multiproc.Chunksize(execMapChunk)) {
		if err != nil {
			return 0, fmt.Errorf("mpbench: imap: %w", err)
		}
		if v != i*i {
			return 0, fmt.Errorf("mpbench: imap item %d = %d, want %d", i, v, i*i)
		}
		i++
	}
	elapsed := time.Since(start)
	if i != n {
		return 0, fmt.Errorf("mpbench: imap yielded %d items, want %d", i, n)
	}
	return float64(n) / elapsed.Seconds(), nil
}

// count yields 0, 1, …, n-1: Python's range(n).
func count(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// primeFactors is mpbench.py's prime_factors, step for step: trial division up to the
// square root of what is left of n.
func primeFactors(n int) []int {
	var factors []int
	i := 2
	for i*i <= n {
		for n%i == 0 {
			factors = append(factors, i)
			n /= i
		}
		i++
	}
	if n > 1 {
		factors = append(factors, n)
	}
	return factors
}

// factorRange is mpbench.py's process_range. It returns the number of factors found, so
// the compiler cannot drop the work; Python's returns None.
func factorRange(start, end int) int {
	total := 0
	for i := start; i < end; i++ {
		total += len(primeFactors(i))
	}
	return total
}

// seedRanges splits the scaled seed interval into k ranges as mpbench.py's seed_primes
// does: equal steps, the last range taking the remainder.
func seedRanges(env *Env, k int) []multiproc.Args2[int, int] {
	start, end := seedStart, seedStart+env.N(seedCount)
	step := (end - start) / k
	rs := make([]multiproc.Args2[int, int], k)
	for i := range rs {
		hi := start + (i+1)*step
		if i == k-1 {
			hi = end
		}
		rs[i] = multiproc.Pack2(start+i*step, hi)
	}
	return rs
}

// seedPrimes measures the seed program end to end: NewPool(2), Starmap over 2 ranges,
// Close, in seconds.
func seedPrimes(ctx context.Context, env *Env) (float64, error) {
	ranges := seedRanges(env, poolWorkers)
	start := time.Now()
	p, err := multiproc.NewPool(ctx, poolWorkers)
	if err != nil {
		return 0, fmt.Errorf("mpbench: pool: %w", err)
	}
	_, err = multiproc.Starmap(ctx, p, processRange, ranges)
	if cerr := p.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return 0, fmt.Errorf("mpbench: starmap: %w", err)
	}
	return time.Since(start).Seconds(), nil
}

// seedGoroutines measures the seed factoring split over k goroutines in this process, in
// seconds.
func seedGoroutines(ctx context.Context, env *Env, k int) (float64, error) {
	ranges := seedRanges(env, k)
	start := time.Now()
	var wg sync.WaitGroup
	for _, r := range ranges {
		wg.Go(func() { factorRange(r.V1, r.V2) })
	}
	wg.Wait()
	return time.Since(start).Seconds(), ctx.Err()
}

// seedPrimesLimit is seed_primes's limit, in seconds: the factoring on 2 goroutines plus
// one pool start-up (NewPool(2) -> first result), both timed in the same sample.
func seedPrimesLimit(ctx context.Context, env *Env) (float64, error) {
	compute, err := seedGoroutines(ctx, env, poolWorkers)
	if err != nil {
		return 0, err
	}
	startup, err := poolStartup(ctx, env)
	if err != nil {
		return 0, err
	}
	return compute + startup/1e3, nil
}

// poolWorkerRSS measures the resident memory of an idle Pool(2) worker that has run a
// task, mean over the workers, in MB (1e6 bytes).
func poolWorkerRSS(ctx context.Context, env *Env) (float64, error) {
	return meanOverWorkers(ctx, vmRSS)
}

// poolWorkerPrivate measures the same workers' private memory (see privateKB), in MB.
func poolWorkerPrivate(ctx context.Context, env *Env) (float64, error) {
	return meanOverWorkers(ctx, func(pid int) (float64, error) {
		kb, err := privateKB(pid)
		return float64(kb) * 1024 / 1e6, err
	})
}

// meanOverWorkers is the mean of measure over the workers of a ready Pool(2).
func meanOverWorkers(ctx context.Context, measure func(pid int) (float64, error)) (mean float64, err error) {
	p, err := readyPool(ctx)
	if err != nil {
		return 0, err
	}
	defer closePool(p, &err)
	ws := p.Stats().PerWorker
	if len(ws) == 0 {
		return 0, fmt.Errorf("mpbench: pool reports no workers")
	}
	var sum float64
	for _, w := range ws {
		v, err := measure(w.Pid)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum / float64(len(ws)), nil
}

// privateKB sums the Private_Clean and Private_Dirty lines of
// /proc/PID/smaps_rollup (kB).
func privateKB(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, fmt.Errorf("mpbench: worker private memory: %w", err)
	}
	var total uint64
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		rest, ok := bytes.CutPrefix(line, []byte("Private_Clean:"))
		if !ok {
			rest, ok = bytes.CutPrefix(line, []byte("Private_Dirty:"))
		}
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("mpbench: worker private memory: unexpected line %q", line)
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("mpbench: worker private memory: %w", err)
		}
		total += kb
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("mpbench: worker private memory: %d of the 2 Private lines in smaps_rollup of %d", found, pid)
	}
	return total, nil
}

// vmRSS returns the VmRSS line of /proc/PID/status in MB. Where there is no /proc the
// row fails with the error from opening it.
func vmRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("mpbench: worker rss: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest) // "1234", "kB"
		if len(f) != 2 || string(f[1]) != "kB" {
			break
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			break
		}
		return float64(kb) * 1024 / 1e6, nil // the kernel's kB are KiB
	}
	return 0, fmt.Errorf("mpbench: worker rss: no VmRSS line in /proc/%d/status", pid)
}

// suicide kills its own worker, as an OOM kill or a crash would.
var suicide = multiproc.Register("mpbench.suicide", func(_ context.Context, _ int) (int, error) {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // never reached: the signal is fatal
})

func poolWorkerKilled(ctx context.Context, env *Env) (float64, error) {
	p, err := readyPool(ctx)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	t0 := time.Now()
	_, err = multiproc.Apply(ctx, p, suicide, 0)
	d := time.Since(t0)
	if !errors.Is(err, multiproc.ErrWorkerDied) {
		return 0, fmt.Errorf("mpbench: killed worker: got %v, want ErrWorkerDied", err)
	}
	return float64(d) / float64(time.Millisecond), nil
}

// Work sizes of pool_task_deaths and pool_maxtasks1 at scale 1.
const (
	taskDeathTasks = 600
	taskDeathEvery = 12 // task i exits its worker when i%taskDeathEvery == taskDeathEvery-1
	taskDeathSpin  = 2 * time.Millisecond
	maxTasks1Tasks = 200
)

// spinArg is spinExit's argument.
type spinArg struct {
	I     int
	Exits bool
}

// spinExit burns taskDeathSpin of CPU, then ends its worker with exit status 1 if a.Exits and
// a.I is one of every taskDeathEvery tasks: a crash in the middle of a workload.
var spinExit = multiproc.Register("mpbench.spin_exit", multiproc.Plain(func(a spinArg) int {
	for start := time.Now(); time.Since(start) < taskDeathSpin; {
	}
	if a.Exits && a.I%taskDeathEvery == taskDeathEvery-1 {
		os.Exit(1)
	}
	return a.I
}))

// poolTaskDeaths measures taskDeathTasks ApplyAsync(spinExit) on a ready Pool(2) without
// retries, in seconds until every outcome is in. With exits, every death must fail its own
// task with ErrWorkerDied and cost no more than a worker start: a death while running a task
// is that task's failure, not a crash loop.
func poolTaskDeaths(ctx context.Context, env *Env, exits bool) (s float64, err error) {
	n := env.N(taskDeathTasks)
	p, err := readyPool(ctx)
	if err != nil {
		return 0, err
	}
	defer closePool(p, &err)
	rs := make([]*multiproc.AsyncResult[int], n)
	start := time.Now()
	for i := range rs {
		rs[i] = multiproc.ApplyAsync(ctx, p, spinExit, spinArg{I: i, Exits: exits})
	}
	died := 0
	for i, r := range rs {
		v, err := r.Get(ctx)
		switch {
		case err == nil && v == i:
		case exits && i%taskDeathEvery == taskDeathEvery-1 && errors.Is(err, multiproc.ErrWorkerDied):
			died++
		default:
			return 0, fmt.Errorf("mpbench: task %d: got %d, %v", i, v, err)
		}
	}
	elapsed := time.Since(start)
	if exits && died != n/taskDeathEvery {
		return 0, fmt.Errorf("mpbench: %d tasks died, want %d", died, n/taskDeathEvery)
	}
	return elapsed.Seconds(), nil
}

// poolMaxTasks1 measures maxTasks1Tasks ApplyAsync(ident) followed by Get of each on a
// Pool(2) with MaxTasksPerChild(1), in tasks/s: every task costs a worker's exit and a
// replacement's start, so this is the recycling path's throughput. The pool's start is
// untimed (NewPool returns once its workers are ready).
func poolMaxTasks1(ctx context.Context, env *Env) (rate float64, err error) {
	n := env.N(maxTasks1Tasks)
	p, err := multiproc.NewPool(ctx, poolWorkers, multiproc.MaxTasksPerChild(1))
	if err != nil {
		return 0, fmt.Errorf("mpbench: pool: %w", err)
	}
	defer closePool(p, &err)
	return applyAsyncRate(ctx, p, n)
}

// applyAsyncRate submits n ApplyAsync(ident, i) on p, then Gets each, and
// returns the rate in tasks/s.
func applyAsyncRate(ctx context.Context, p *multiproc.Pool, n int) (float64, error) {
	rs := make([]*multiproc.AsyncResult[int], n)
	start := time.Now()
	for i := range rs {
		rs[i] = multiproc.ApplyAsync(ctx, p, ident, i)
	}
	for i, r := range rs {
		if v, err := r.Get(ctx); err != nil || v != i {
			return 0, fmt.Errorf("mpbench: apply_async(ident, %d) = %d, %v", i, v, err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
