// Package killtest is the done-means test of issue 10, shared by the
// package's test (run in the default, cgo-linked test binary) and by
// ./killer (built with CGO_ENABLED=0 by that test): a process that locks
// and unlocks a Lock in a loop is SIGKILLed, again and again; after each
// kill the survivors' next Lock must return within a second, nil (the
// victim did not hold the lock) or ErrOwnerDead (it did, as the lock word
// recorded), exactly one of them getting ErrOwnerDead.
package killtest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/psync"
)

// Victim is what the killed process is given.
type Victim struct {
	L       *psync.Lock
	Started *psync.Event
}

// spun keeps spin's result, so that the compiler keeps the work.
var spun atomic.Int64

// spin burns a little time without a system call.
//
//go:noinline
func spin(n int) int {
	x := 0
	for i := range n {
		x += i ^ x
	}
	return x
}

var victim = multiproc.Register("psync.killtest.victim", multiproc.NoResult(func(ctx context.Context, v Victim) error {
	for i := 0; ; i++ {
		err := v.L.Lock(ctx)
		if errors.Is(err, psync.ErrOwnerDead) {
			err = v.L.MarkConsistent()
		}
		if err != nil {
			return err
		}
		spun.Add(int64(spin(200))) // holding: about half of the loop
		if err := v.L.Unlock(); err != nil {
			return err
		}
		if i == 100 {
			v.Started.Set()
		}
		spun.Add(int64(spin(200)))
	}
}))

// Outcome is one survivor's next Lock after a kill.
type Outcome struct {
	OwnerDead bool
	Took      time.Duration
	Err       string // any other error
}

func survive(ctx context.Context, l *psync.Lock) Outcome {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start := time.Now()
	err := l.Lock(ctx)
	o := Outcome{Took: time.Since(start)}
	switch {
	case err == nil:
	case errors.Is(err, psync.ErrOwnerDead):
		o.OwnerDead = true
		if err := l.MarkConsistent(); err != nil {
			o.Err = err.Error()
		}
	default:
		o.Err = err.Error()
		return o
	}
	if err := l.Unlock(); err != nil {
		o.Err = err.Error()
	}
	return o
}

var survivor = multiproc.Register("psync.killtest.survivor", func(ctx context.Context, l *psync.Lock) (Outcome, error) {
	return survive(ctx, l), nil
})

// Stats sums up a run.
type Stats struct {
	Rounds, Held int
	MaxTook      time.Duration
}

// Run kills a locking process rounds times. Survivors are this process and
// a pool worker (which keeps its imported Lock for every round). Each
// round's outcome is checked; the first violation is returned.
func Run(ctx context.Context, rounds int) (Stats, error) {
	var st Stats
	l, err := psync.NewLock()
	if err != nil {
		return st, err
	}
	defer l.Close()
	started, err := psync.NewEvent()
	if err != nil {
		return st, err
	}
	defer started.Close()
	pool, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		return st, err
	}
	defer pool.Close()
	for round := range rounds {
		started.Clear()
		p := multiproc.NewProcess(victim, Victim{L: l, Started: started})
		if err := p.Start(ctx); err != nil {
			return st, fmt.Errorf("round %d: start: %w", round, err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := started.Wait(wctx)
		cancel()
		if err != nil {
			p.Kill()
			p.Join(ctx)
			p.Close()
			return st, fmt.Errorf("round %d: victim never looped: %w", round, err)
		}
		p.Kill()
		p.Join(ctx) // an error: it was killed
		held := l.HolderDied()
		p.Close()
		if held {
			st.Held++
		}
		res := multiproc.ApplyAsync(ctx, pool, survivor, l)
		mine := survive(ctx, l)
		theirs, err := res.Get(ctx)
		if err != nil {
			return st, fmt.Errorf("round %d: pool survivor: %w", round, err)
		}
		dead := 0
		for who, o := range map[string]Outcome{"this process": mine, "pool worker": theirs} {
			if o.Err != "" {
				return st, fmt.Errorf("round %d: %s: Lock: %s (after %v)", round, who, o.Err, o.Took)
			}
			if o.Took > time.Second {
				return st, fmt.Errorf("round %d: %s: Lock took %v", round, who, o.Took)
			}
			st.MaxTook = max(st.MaxTook, o.Took)
			if o.OwnerDead {
				dead++
			}
		}
		want := 0
		if held {
			want = 1
		}
		if dead != want {
			return st, fmt.Errorf("round %d: victim held the lock: %v; %d survivors got ErrOwnerDead, want %d", round, held, dead, want)
		}
		st.Rounds++
	}
	return st, nil
}
