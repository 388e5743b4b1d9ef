package main

import (
	"context"
	"fmt"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/shm"
)

// Work sizes of one sample at scale 1.
const (
	resourceTasks      = 100_000 // as apply_async_throughput's asyncTasks
	resourceArrayTasks = 100_000
)

var (
	// bump adds one to the Value it is passed: the per-worker cache hands
	// every task the worker's one mapping of it.
	bump = multiproc.Register("mpbench.bump", multiproc.Plain(func(v *shm.Value[int64]) int64 {
		return shm.Add(v, 1)
	}))
	// readAt returns one element of the Array it is passed: the work is
	// nothing, so the row measures passing an 80 MB Array per task. (The
	// row reads the same last element every time: spreading the reads
	// would add the first access of every page to the figure, ~8 µs per
	// 4 KiB page on this machine, which is the host's cost, not the pass.)
	readAt = multiproc.Register("mpbench.read_at", multiproc.Plain(func(a arrayAt) float64 {
		return a.A.Slice()[a.I]
	}))
)

// arrayAt is readAt's argument: the Array and an index into it.
type arrayAt struct {
	A *shm.Array[float64]
	I int
}

func init() {
	register(
		Row{
			Name: "resource_pass", Unit: "tasks/s", HigherIsBetter: true,
			Doc: "100k ApplyAsync(bump, v), the same *shm.Value[int64] passed to every task (each adds 1), " +
				"then Get each, on a ready Pool(2); limit = ApplyAsync(ident, i) batches alternating with the row's",
			Go:        resourcePass,
			LimitFunc: plainApplyAsync(&passLimits),
			Note: "resource_pass and resource_pass_array are held against apply_async_throughput's workload (the " +
				"same number of ApplyAsync(ident, i)) run on the same pool inside each sample, in 4 batches " +
				"alternating with the row's, so both see the same load. CPython cannot pass a Value, an Array or a " +
				"SharedMemory object to a pool task (\"should only be shared through inheritance\"), so they have " +
				"no counterpart.",
		},
		Row{
			Name: "resource_pass_array", Unit: "tasks/s", HigherIsBetter: true,
			Doc: "100k ApplyAsync(readAt, {a, i}), one 80 MB *shm.Array[float64] passed to every task (each " +
				"reads its last element), then Get each, on a ready Pool(2); limit as resource_pass's",
			Go:        resourcePassArray,
			LimitFunc: plainApplyAsync(&arrayLimits),
		},
	)
}

// passRounds is how many batches of each kind a resource_pass sample
// alternates: the row's tasks and plain ApplyAsync(ident, i), so both see
// the same load (see sharedArraySum for why).
const passRounds = 4

// passLimits and arrayLimits carry the plain ApplyAsync figures of the two
// rows' samples to their LimitFuncs, in order.
var passLimits, arrayLimits pairs

// resourcePass measures 100k ApplyAsync(bump, v) of one Value, in tasks/s,
// in passRounds batches; between them, batches of as many
// ApplyAsync(ident, i) on the same pool give the limit. The Value and the
// pool are made before the clock starts; every task is checked.
func resourcePass(ctx context.Context, env *Env) (rate float64, err error) {
	n := env.N(resourceTasks)
	v, err := shm.NewValue[int64](0)
	if err != nil {
		return 0, fmt.Errorf("mpbench: %w", err)
	}
	defer v.Close()
	p, err := readyPool(ctx)
	if err != nil {
		return 0, err
	}
	defer closePool(p, &err)
	rate, plain, err := alternate(ctx, p, n, func(ctx context.Context, k int) error {
		rs := make([]*multiproc.AsyncResult[int64], k)
		for i := range rs {
			rs[i] = multiproc.ApplyAsync(ctx, p, bump, v)
		}
		for i, r := range rs {
			if _, err := r.Get(ctx); err != nil {
				return fmt.Errorf("mpbench: task %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if got := v.Load(); got != int64(n) {
		return 0, fmt.Errorf("mpbench: the Value is %d after %d tasks that each added 1", got, n)
	}
	passLimits.put(plain)
	return rate, nil
}

// alternate runs n tasks with batch in passRounds batches, each followed
// by a batch of as many ApplyAsync(ident, i), and returns both rates in
// tasks/s.
func alternate(ctx context.Context, p *multiproc.Pool, n int, batch func(ctx context.Context, k int) error) (rate, plain float64, err error) {
	var tRes, tPlain time.Duration
	done := 0
	for r := range passRounds {
		k := (n - done) / (passRounds - r)
		start := time.Now()
		if err := batch(ctx, k); err != nil {
			return 0, 0, err
		}
		tRes += time.Since(start)
		pr, err := applyAsyncRate(ctx, p, k)
		if err != nil {
			return 0, 0, err
		}
		tPlain += time.Duration(float64(k) / pr * float64(time.Second))
		done += k
	}
	return float64(n) / tRes.Seconds(), float64(n) / tPlain.Seconds(), nil
}

// plainApplyAsync returns the limit a resource row's sample recorded in
// fifo or, should there be none, measures 100k ApplyAsync(ident, i) now.
func plainApplyAsync(fifo *pairs) SampleFunc {
	return func(ctx context.Context, env *Env) (float64, error) {
		if v, ok := fifo.take(); ok {
			return v, ctx.Err()
		}
		return applyAsyncThroughput(ctx, env)
	}
}

// resourcePassArray measures 100k ApplyAsync(readAt) of one 80 MB Array,
// in tasks/s, alternating with plain batches like resourcePass. The Array
// is made and filled before the clock starts.
func resourcePassArray(ctx context.Context, env *Env) (rate float64, err error) {
	n := env.N(resourceArrayTasks)
	a, err := shm.NewArray[float64](env.N(shmArrayLen))
	if err != nil {
		return 0, fmt.Errorf("mpbench: %w", err)
	}
	defer a.Close()
	s := a.Slice()
	for i := range s {
		s[i] = float64(i)
	}
	p, err := readyPool(ctx)
	if err != nil {
		return 0, err
	}
	defer closePool(p, &err)
	last := len(s) - 1
	rate, plain, err := alternate(ctx, p, n, func(ctx context.Context, k int) error {
		rs := make([]*multiproc.AsyncResult[float64], k)
		for i := range rs {
			rs[i] = multiproc.ApplyAsync(ctx, p, readAt, arrayAt{A: a, I: last})
		}
		for i, r := range rs {
			v, err := r.Get(ctx)
			if err != nil {
				return fmt.Errorf("mpbench: task %d: %w", i, err)
			}
			if v != float64(last) {
				return fmt.Errorf("mpbench: task %d read %v, want %v", i, v, float64(last))
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	arrayLimits.put(plain)
	return rate, nil
}
