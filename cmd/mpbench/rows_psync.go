package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/memfd"
	"github.com/multiproc-go/multiproc/psync"
	"github.com/multiproc-go/multiproc/shm"
)

// Work sizes of one sample at scale 1, the same as bench/python/psync_rows.py's.
const (
	lockOps        = 5_000_000
	contendedIncrs = 1_000_000 // per process
	pingpongEvents = 20000
)

func init() {
	register(
		Row{
			Name: "lock_uncontended", Unit: "ops/s", HigherIsBetter: true,
			Doc:       "psync.Lock Lock+Unlock in one process, one goroutine",
			Go:        lockUncontended,
			Python:    PyRow{Script: "psync_rows.py", Name: "lock_uncontended"},
			LimitFunc: mutexUncontended,
			Note: "lock_uncontended's limit column is Go's sync.Mutex Lock+Unlock measured in the " +
				"same run (the bar: psync.Lock at least 0.5x of it).",
		},
		Row{
			Name: "lock_contended", Unit: "incr/s", HigherIsBetter: true,
			Doc: "2 processes x 1M increments of a shm.Value under its own lock (Python's get_lock; " +
				"CPython: Value('i') + get_lock()); timed from a Barrier to both joined",
			Go:     lockContended,
			Python: PyRow{Script: "psync_rows.py", Name: "lock_contended"},
			Note: "lock_contended increments with a plain Load and Store under the Value's lock; " +
				"the final count is checked exact. Fairness is not promised.",
		},
		Row{
			Name: "limit.futex_pingpong", Unit: "rt/s", HigherIsBetter: true,
			Doc: "two processes alternating on a shared word with raw FUTEX_WAIT/FUTEX_WAKE, no spin " +
				"(internal/futex only; the processes are started by multiproc, outside the timing)",
			Go: futexPingpong,
		},
		Row{
			Name: "event_pingpong", Unit: "rt/s", HigherIsBetter: true,
			Doc:    "two processes alternating on two psync.Events (Set, Wait, Clear)",
			Go:     eventPingpong,
			Python: PyRow{Script: "psync_rows.py", Name: "event_pingpong"},
			Limit:  "limit.futex_pingpong",
			Note: "event_pingpong spins briefly before it sleeps, so when the peer runs on the other " +
				"CPU it can beat limit.futex_pingpong, which always sleeps.",
		},
	)
}

func lockUncontended(ctx context.Context, env *Env) (float64, error) {
	l, err := psync.NewLock()
	if err != nil {
		return 0, err
	}
	defer l.Close()
	n := env.N(lockOps)
	start := time.Now()
	for range n {
		l.Lock(ctx)
		l.Unlock()
	}
	return float64(n) / time.Since(start).Seconds(), ctx.Err()
}

func mutexUncontended(ctx context.Context, env *Env) (float64, error) {
	var mu sync.Mutex
	n := env.N(lockOps)
	start := time.Now()
	for range n {
		mu.Lock()
		//lint:ignore SA2001 the empty critical section is what is measured
		mu.Unlock()
	}
	return float64(n) / time.Since(start).Seconds(), ctx.Err()
}

// sharedPage is a memfd page that children map from the file they are
// given: the word of limit.futex_pingpong.
type sharedPage struct {
	f   *os.File
	mem []byte
}

func newSharedPage() (*sharedPage, error) {
	f, err := memfd.New("multiproc-mpbench", 4096)
	if err != nil {
		return nil, err
	}
	mem, err := memfd.Map(f, 0, 4096)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &sharedPage{f: f, mem: mem}, nil
}

func (p *sharedPage) close() { memfd.Unmap(p.mem); p.f.Close() }

func mapPage(f *os.File) ([]byte, error) {
	mem, err := memfd.Map(f, 0, 4096)
	f.Close()
	return mem, err
}

type contendedJob struct {
	V     *shm.Value[uint64]
	Start *psync.Barrier
	N     int
}

var contendedIncr = multiproc.Register("mpbench.lock_contended", multiproc.NoResult(func(ctx context.Context, j contendedJob) error {
	defer j.V.Close()
	if _, err := j.Start.Wait(ctx); err != nil {
		return err
	}
	for range j.N {
		if err := j.V.Lock(ctx); err != nil {
			return err
		}
		j.V.Store(j.V.Load() + 1)
		j.V.Unlock()
	}
	return nil
}))

func lockContended(ctx context.Context, env *Env) (float64, error) {
	v, err := shm.NewValue[uint64](0)
	if err != nil {
		return 0, err
	}
	defer v.Close()
	b, err := psync.NewBarrier(3)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	n := env.N(contendedIncrs)
	var ps []*multiproc.Process
	defer func() {
		for _, p := range ps {
			p.Kill()
			p.Join(context.Background())
			p.Close()
		}
	}()
	for range 2 {
		p := multiproc.NewProcess(contendedIncr, contendedJob{V: v, Start: b, N: n})
		if err := p.Start(ctx); err != nil {
			return 0, err
		}
		ps = append(ps, p)
	}
	if _, err := b.Wait(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			return 0, err
		}
		if _, err := multiproc.Result[struct{}](p); err != nil {
			return 0, err
		}
	}
	elapsed := time.Since(start)
	if got := v.Load(); got != uint64(2*n) {
		return 0, fmt.Errorf("mpbench: lock_contended: counter %d, want %d", got, 2*n)
	}
	return float64(2*n) / elapsed.Seconds(), nil
}

type pingJob struct {
	Ping, Pong *psync.Event
	N          int
}

var eventPonger = multiproc.Register("mpbench.event_pong", multiproc.NoResult(func(ctx context.Context, j pingJob) error {
	for range j.N {
		if err := j.Ping.Wait(ctx); err != nil {
			return err
		}
		j.Ping.Clear()
		j.Pong.Set()
	}
	return nil
}))

func eventPingpong(ctx context.Context, env *Env) (float64, error) {
	ping, err := psync.NewEvent()
	if err != nil {
		return 0, err
	}
	defer ping.Close()
	pong, err := psync.NewEvent()
	if err != nil {
		return 0, err
	}
	defer pong.Close()
	n := env.N(pingpongEvents)
	p := multiproc.NewProcess(eventPonger, pingJob{Ping: ping, Pong: pong, N: n + 1})
	if err := p.Start(ctx); err != nil {
		return 0, err
	}
	defer p.Close()
	defer p.Join(context.Background())
	round := func() error {
		ping.Set()
		if err := pong.Wait(ctx); err != nil {
			return err
		}
		pong.Clear()
		return nil
	}
	if err := round(); err != nil { // the child is running
		p.Kill()
		return 0, err
	}
	start := time.Now()
	for range n {
		if err := round(); err != nil {
			p.Kill()
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

type futexJob struct {
	Page *os.File
	N    int
}

// futexPong answers each odd value of the word with the next even one.
var futexPong = multiproc.Register("mpbench.futex_pong", multiproc.NoResult(func(ctx context.Context, j futexJob) error {
	mem, err := mapPage(j.Page)
	if err != nil {
		return err
	}
	defer memfd.Unmap(mem)
	w := (*uint32)(unsafe.Pointer(&mem[0]))
	for i := range uint32(j.N) {
		for atomic.LoadUint32(w) != 2*i+1 {
			futex.Wait(w, 2*i, time.Second)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		atomic.StoreUint32(w, 2*i+2)
		futex.Wake(w, 1)
	}
	return nil
}))

func futexPingpong(ctx context.Context, env *Env) (float64, error) {
	if !futex.Supported {
		return 0, errors.ErrUnsupported
	}
	page, err := newSharedPage()
	if err != nil {
		return 0, err
	}
	defer page.close()
	n := env.N(pingpongEvents)
	p := multiproc.NewProcess(futexPong, futexJob{Page: page.f, N: n + 1})
	if err := p.Start(ctx); err != nil {
		return 0, err
	}
	defer p.Close()
	defer p.Join(context.Background())
	w := (*uint32)(unsafe.Pointer(&page.mem[0]))
	var start time.Time
	for i := range uint32(n + 1) {
		if i == 1 {
			start = time.Now() // round 0 waited for the child to run
		}
		atomic.StoreUint32(w, 2*i+1)
		futex.Wake(w, 1)
		for atomic.LoadUint32(w) != 2*i+2 {
			futex.Wait(w, 2*i+1, time.Second)
			if ctx.Err() != nil {
				p.Kill()
				return 0, ctx.Err()
			}
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
