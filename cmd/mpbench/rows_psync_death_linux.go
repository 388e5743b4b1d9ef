package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/psync"
	"golang.org/x/sys/unix"
)

// Kills per sample of lock_death_detect at scale 1.
const deathKills = 10

func init() {
	register(Row{
		Name: "lock_death_detect", Unit: "µs", HigherIsBetter: false,
		Doc: "SIGKILL of a process holding a psync.Lock to a sleeping waiter's Lock returning " +
			"ErrOwnerDead: the median of 10 kills per sample",
		Go:        lockDeathDetect,
		LimitFunc: pidfdDeathDetect,
		Note: "lock_death_detect's limit column is the kernel's own notice of the same kind of death " +
			"through a pidfd (SIGKILL of an idle multiproc child to its pidfd polling readable, on a " +
			"thread blocked in poll): what a pidfd-only design could reach. The lock word is in the " +
			"kernel's robust list, whose walk runs as the holder's threads exit, before its memory is torn down.",
	})
}

var deathHolder = multiproc.Register("mpbench.death_holder", multiproc.NoResult(func(ctx context.Context, j holdArgs) error {
	if j.L != nil {
		if err := j.L.Lock(ctx); err != nil && !errors.Is(err, psync.ErrOwnerDead) {
			return err
		}
	}
	j.Held.Set()
	<-ctx.Done()
	return ctx.Err()
}))

type holdArgs struct {
	L    *psync.Lock // nil: only say it runs
	Held *psync.Event
}

// startHolder starts a child that holds l (when not nil) and returns once it does.
func startHolder(ctx context.Context, l *psync.Lock, held *psync.Event) (*multiproc.Process, error) {
	held.Clear()
	p := multiproc.NewProcess(deathHolder, holdArgs{L: l, Held: held})
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	if err := held.Wait(ctx); err != nil {
		p.Kill()
		p.Join(context.Background())
		p.Close()
		return nil, err
	}
	return p, nil
}

func reap(p *multiproc.Process) { p.Kill(); p.Join(context.Background()); p.Close() }

func medianMicros(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2]) / float64(time.Microsecond)
}

func lockDeathDetect(ctx context.Context, env *Env) (float64, error) {
	l, err := psync.NewLock()
	if err != nil {
		return 0, err
	}
	defer l.Close()
	held, err := psync.NewEvent()
	if err != nil {
		return 0, err
	}
	defer held.Close()
	var took []time.Duration
	for range env.N(deathKills) {
		p, err := startHolder(ctx, l, held)
		if err != nil {
			return 0, err
		}
		got := make(chan error, 1)
		go func() { got <- l.Lock(ctx) }()
		// Let the waiter spin out and go to sleep in the kernel (its
		// spin is microseconds): what is measured is a sleeping waiter.
		time.Sleep(5 * time.Millisecond)
		start := time.Now()
		p.Kill()
		err = <-got
		took = append(took, time.Since(start))
		reap(p)
		if !errors.Is(err, psync.ErrOwnerDead) {
			return 0, fmt.Errorf("mpbench: lock_death_detect: Lock after the kill = %v, want ErrOwnerDead", err)
		}
		if err := l.MarkConsistent(); err != nil {
			return 0, err
		}
		if err := l.Unlock(); err != nil {
			return 0, err
		}
	}
	return medianMicros(took), nil
}

func pidfdDeathDetect(ctx context.Context, env *Env) (float64, error) {
	held, err := psync.NewEvent()
	if err != nil {
		return 0, err
	}
	defer held.Close()
	var took []time.Duration
	for range env.N(deathKills) {
		p, err := startHolder(ctx, nil, held)
		if err != nil {
			return 0, err
		}
		fd, err := unix.PidfdOpen(p.Pid(), 0)
		if err != nil {
			reap(p)
			return 0, fmt.Errorf("mpbench: pidfd_open: %w", err)
		}
		start := time.Now()
		p.Kill()
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if n, err := unix.Poll(pfd, 1000); n > 0 || (err != nil && err != unix.EINTR) {
				break
			}
			if ctx.Err() != nil {
				break
			}
		}
		took = append(took, time.Since(start))
		unix.Close(fd)
		reap(p)
	}
	return medianMicros(took), ctx.Err()
}
