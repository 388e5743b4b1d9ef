package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/manager"
)

// dictPairs is the set+get pairs one client makes per sample at scale 1, the same as
// bench/python/manager_rows.py's DICT_PAIRS.
const dictPairs = 5000

func init() {
	register(
		Row{
			Name: "manager_start", Unit: "ms",
			Doc:    "manager.Start (CPython: Manager()): the manager child started and a connection ready",
			Go:     managerStart,
			Python: PyRow{Script: "manager_rows.py", Name: "manager_start"},
		},
		Row{
			Name: "manager_dict_ops", Unit: "ops/s", HigherIsBetter: true,
			Doc: "1 client process: d[k]=v then d[k] through a Dict proxy (DictProxy), " +
				"each a round trip to the local manager; ops = sets + gets",
			Go:     func(ctx context.Context, env *Env) (float64, error) { return dictOps(ctx, env, 1) },
			Python: PyRow{Script: "manager_rows.py", Name: "manager_dict_ops"},
			Note: "manager_dict_ops bar: at least 2x CPython; manager_dict_ops.latency at most 1.5x " +
				"its limit (a socketpair round trip with a re-exec'd child).",
		},
		Row{
			Name: "manager_dict_ops.latency", Unit: "us/op",
			Doc:       "manager_dict_ops as the mean time of one set or get",
			Go:        dictLatency,
			Python:    PyRow{Script: "manager_rows.py", Name: "manager_dict_ops.latency"},
			LimitFunc: socketpairRoundTrip,
		},
		Row{
			Name: "manager_dict_ops.socket", Unit: "ops/s", HigherIsBetter: true,
			Doc: "manager_dict_ops with the call slot off (MULTIPROC_MANAGER_NOFAST=1): every " +
				"call a round trip on the unix socket, as for remote clients",
			Go: func(ctx context.Context, env *Env) (float64, error) {
				os.Setenv("MULTIPROC_MANAGER_NOFAST", "1") // inherited by the clients
				defer os.Unsetenv("MULTIPROC_MANAGER_NOFAST")
				return dictOps(ctx, env, 1)
			},
			Python: PyRow{Script: "manager_rows.py", Name: "manager_dict_ops"},
		},
		Row{
			Name: "manager_dict_ops_4clients", Unit: "ops/s", HigherIsBetter: true,
			Doc:    "manager_dict_ops with 4 client processes at once (each its own key)",
			Go:     func(ctx context.Context, env *Env) (float64, error) { return dictOps(ctx, env, 4) },
			Python: PyRow{Script: "manager_rows.py", Name: "manager_dict_ops_4clients"},
			Note: "manager_dict_ops_4clients bar: at least 1.5x manager_dict_ops's figure. " +
				"With the call slot one client keeps both CPUs of a 2-CPU machine busy (it and " +
				"the server spin on each other), so 4 clients and the server share the same " +
				"2 CPUs and pay a context switch per call.",
		},
	)
}

func managerStart(ctx context.Context, env *Env) (float64, error) {
	start := time.Now()
	m, err := manager.Start(ctx)
	if err != nil {
		return 0, err
	}
	dt := time.Since(start)
	if err := m.Shutdown(ctx); err != nil {
		return 0, err
	}
	return float64(dt) / 1e6, nil
}

type dictJob struct {
	D     *manager.Dict[string, int]
	Start *manager.Barrier
	Key   string
	N     int
}

type span struct{ From, To int64 }

var dictClient = multiproc.Register("mpbench.manager_dict_ops", func(ctx context.Context, j dictJob) (span, error) {
	if _, err := j.Start.Wait(ctx); err != nil {
		return span{}, err
	}
	t0 := time.Now()
	for i := range j.N {
		if err := j.D.Set(ctx, j.Key, i); err != nil {
			return span{}, err
		}
		v, err := j.D.Get(ctx, j.Key)
		if err != nil {
			return span{}, err
		}
		if v != i {
			return span{}, fmt.Errorf("d[%s] = %d, want %d", j.Key, v, i)
		}
	}
	return span{t0.UnixNano(), time.Now().UnixNano()}, nil
})

// dictOps runs clients client processes, each making env.N(dictPairs) set+get pairs from
// a Barrier on, and returns all their operations over the span from the first start to the
// last end.
func dictOps(ctx context.Context, env *Env, clients int) (rate float64, err error) {
	m, err := manager.Start(ctx)
	if err != nil {
		return 0, err
	}
	defer func() {
		if serr := m.Shutdown(ctx); err == nil {
			err = serr
		}
	}()
	d, err := manager.NewDict[string, int](ctx, m)
	if err != nil {
		return 0, err
	}
	b, err := manager.NewBarrier(ctx, m, clients)
	if err != nil {
		return 0, err
	}
	n := env.N(dictPairs)
	spans := make([]span, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := multiproc.NewProcess(dictClient, dictJob{D: d, Start: b, Key: fmt.Sprint("k", i), N: n})
			defer p.Close()
			if errs[i] = p.Start(ctx); errs[i] != nil {
				return
			}
			if errs[i] = p.Join(ctx); errs[i] != nil {
				return
			}
			spans[i], errs[i] = multiproc.Result[span](p)
		}()
	}
	wg.Wait()
	var from, to int64
	for i, s := range spans {
		if errs[i] != nil {
			return 0, errs[i]
		}
		if i == 0 || s.From < from {
			from = s.From
		}
		to = max(to, s.To)
	}
	return float64(2*n*clients) / (float64(to-from) / 1e9), nil
}

func dictLatency(ctx context.Context, env *Env) (float64, error) {
	rate, err := dictOps(ctx, env, 1)
	if err != nil {
		return 0, err
	}
	return 1e6 / rate, nil
}
