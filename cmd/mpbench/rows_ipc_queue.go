package main

import (
	"context"
	"fmt"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/ipc"
	"github.com/multiproc-go/multiproc/psync"
)

// Work sizes of one sample at scale 1, the same as bench/python/queue_rows.py's.
const (
	queueSmallItems = 200_000
	queueBigItems   = 1000
	queueBigBytes   = 1 << 20
	// queueBigCapacity holds 7 items of 1 MiB in flight.
	queueBigCapacity = 8 << 20
)

// queueItem is CPython's (i, 'hello', 3.14): internal/wire's record codec.
type queueItem struct {
	I int
	S string
	F float64
}

func init() {
	register(
		Row{
			Name: "queue_small.1to1", Unit: "items/s", HigherIsBetter: true,
			Doc: "200k items {int, \"hello\", 3.14} through an ipc.Queue, one producer process -> the parent; " +
				"timed from a Barrier to the last item received",
			Go:     queueSmall1to1,
			Python: PyRow{Script: "queue_rows.py", Name: "queue_small.1to1"},
			Note: "queue_small.* items are Go structs {int, string, float64} (internal/wire's record codec) and " +
				"CPython tuples (i, 'hello', 3.14) (pickle, through Queue's feeder thread and pipe). The Go queue " +
				"is a ring in shared memory (default 4 MiB byte capacity), no pipe.",
		},
		Row{
			Name: "queue_small.4to4", Unit: "items/s", HigherIsBetter: true,
			Doc: "200k items {int, \"hello\", 3.14} through one ipc.Queue, 4 producer processes -> 4 consumer " +
				"processes (each takes a quarter); timed from a Barrier to all 8 joined",
			Go:     queueSmall4to4,
			Python: PyRow{Script: "queue_rows.py", Name: "queue_small.4to4"},
		},
		Row{
			Name: "queue_bandwidth", Unit: "GB/s", HigherIsBetter: true,
			Doc: "1000 x 1 MiB []byte items through an ipc.Queue (8 MiB byte capacity), one producer process -> " +
				"the parent, which receives each into a fresh slice (Get's copy out of shared memory)",
			Go:     queueBandwidth,
			Python: PyRow{Script: "queue_rows.py", Name: "queue_bandwidth"},
			Limit:  "limit.unix_bandwidth",
			Note: "queue_bandwidth copies each item twice (producer's slice -> shared ring, ring -> a new slice in " +
				"the consumer), at the same time on two CPUs; compare limit.memcpy (one copy, one CPU, warm " +
				"buffers) as well as limit.unix_bandwidth.",
		},
	)
}

type queueProdJob struct {
	Q      *ipc.Queue[queueItem]
	Start  *psync.Barrier
	Lo, Hi int
}

var queueProducer = multiproc.Register("mpbench.queue_produce", multiproc.NoResult(func(ctx context.Context, j queueProdJob) error {
	if _, err := j.Start.Wait(ctx); err != nil {
		return err
	}
	for i := j.Lo; i < j.Hi; i++ {
		if err := j.Q.Put(ctx, queueItem{I: i, S: "hello", F: 3.14}); err != nil {
			return err
		}
	}
	return nil
}))

type queueConsJob struct {
	Q     *ipc.Queue[queueItem]
	Start *psync.Barrier
	N     int
}

var queueConsumer = multiproc.Register("mpbench.queue_consume", multiproc.NoResult(func(ctx context.Context, j queueConsJob) error {
	if _, err := j.Start.Wait(ctx); err != nil {
		return err
	}
	for range j.N {
		if _, err := j.Q.Get(ctx); err != nil {
			return err
		}
	}
	return nil
}))

// startAll starts ps; the returned stop kills and reaps whatever is left.
func startAll(ctx context.Context, ps []*multiproc.Process) (stop func(), err error) {
	stop = func() {
		for _, p := range ps {
			p.Kill()
			p.Join(context.Background())
			p.Close()
		}
	}
	for _, p := range ps {
		if err := p.Start(ctx); err != nil {
			stop()
			return nil, err
		}
	}
	return stop, nil
}

func joinAll(ctx context.Context, ps []*multiproc.Process) error {
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			return err
		}
		if _, err := multiproc.Result[struct{}](p); err != nil {
			return err
		}
	}
	return nil
}

func queueSmall1to1(ctx context.Context, env *Env) (float64, error) {
	q, err := ipc.NewQueue[queueItem]()
	if err != nil {
		return 0, err
	}
	defer q.Release()
	b, err := psync.NewBarrier(2)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	n := env.N(queueSmallItems)
	ps := []*multiproc.Process{multiproc.NewProcess(queueProducer, queueProdJob{Q: q, Start: b, Lo: 0, Hi: n})}
	stop, err := startAll(ctx, ps)
	if err != nil {
		return 0, err
	}
	defer stop()
	if _, err := b.Wait(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	for i := range n {
		v, err := q.Get(ctx)
		if err != nil {
			return 0, err
		}
		if v.I != i || v.S != "hello" {
			return 0, fmt.Errorf("mpbench: queue_small.1to1: item %d is %+v", i, v)
		}
	}
	elapsed := time.Since(start)
	return float64(n) / elapsed.Seconds(), joinAll(ctx, ps)
}

func queueSmall4to4(ctx context.Context, env *Env) (float64, error) {
	q, err := ipc.NewQueue[queueItem]()
	if err != nil {
		return 0, err
	}
	defer q.Release()
	b, err := psync.NewBarrier(9)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	per := env.N(queueSmallItems) / 4
	var ps []*multiproc.Process
	for k := range 4 {
		ps = append(ps, multiproc.NewProcess(queueProducer, queueProdJob{Q: q, Start: b, Lo: k * per, Hi: (k + 1) * per}))
	}
	for range 4 {
		ps = append(ps, multiproc.NewProcess(queueConsumer, queueConsJob{Q: q, Start: b, N: per}))
	}
	stop, err := startAll(ctx, ps)
	if err != nil {
		return 0, err
	}
	defer stop()
	if _, err := b.Wait(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := joinAll(ctx, ps); err != nil {
		return 0, err
	}
	return float64(4*per) / time.Since(start).Seconds(), nil
}

type queueBytesJob struct {
	Q     *ipc.Queue[[]byte]
	Start *psync.Barrier
	N     int
}

var queueBytesProducer = multiproc.Register("mpbench.queue_produce_bytes", multiproc.NoResult(func(ctx context.Context, j queueBytesJob) error {
	b := make([]byte, queueBigBytes)
	for i := range b {
		b[i] = byte(i)
	}
	if _, err := j.Start.Wait(ctx); err != nil {
		return err
	}
	for range j.N {
		if err := j.Q.Put(ctx, b); err != nil {
			return err
		}
	}
	return nil
}))

func queueBandwidth(ctx context.Context, env *Env) (float64, error) {
	q, err := ipc.NewQueue[[]byte](ipc.ByteCapacity(queueBigCapacity))
	if err != nil {
		return 0, err
	}
	defer q.Release()
	b, err := psync.NewBarrier(2)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	n := env.N(queueBigItems)
	ps := []*multiproc.Process{multiproc.NewProcess(queueBytesProducer, queueBytesJob{Q: q, Start: b, N: n})}
	stop, err := startAll(ctx, ps)
	if err != nil {
		return 0, err
	}
	defer stop()
	if _, err := b.Wait(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	for range n {
		v, err := q.Get(ctx)
		if err != nil {
			return 0, err
		}
		if len(v) != queueBigBytes || v[queueBigBytes-1] != byte((queueBigBytes-1)%256) {
			return 0, fmt.Errorf("mpbench: queue_bandwidth: item of %d bytes", len(v))
		}
	}
	elapsed := time.Since(start)
	return float64(n) * queueBigBytes / elapsed.Seconds() / 1e9, joinAll(ctx, ps)
}
