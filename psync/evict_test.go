package psync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/psync"
)

// workerUsage is what a task reports of its own process: open descriptors
// and mappings of psync memfds (arenas and their robust-list alias pages).
type workerUsage struct {
	FDs, Maps int
	Pid       int
}

func usage() (workerUsage, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return workerUsage{}, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return workerUsage{}, err
	}
	return workerUsage{FDs: len(fds), Maps: bytes.Count(maps, []byte("multiproc-psync ")), Pid: os.Getpid()}, nil
}

// roundArg is one task's share of a round's fresh primitives.
type roundArg struct {
	Locks  []*psync.Lock
	RLocks []*psync.RLock
	Conds  []*psync.Condition
	Bars   []*psync.Barrier
	Sems   []*psync.Semaphore
	Bsems  []*psync.BoundedSemaphore
	Events []*psync.Event
	Close  bool // the task closes what it was given (its worker's kept copies)
}

var roundFn = multiproc.Register("psync.test.evict-round", func(ctx context.Context, a roundArg) (workerUsage, error) {
	for _, l := range a.Locks {
		if err := l.Do(ctx, func() {}); err != nil {
			return workerUsage{}, err
		}
	}
	for _, l := range a.RLocks {
		if err := l.Do(ctx, func() {}); err != nil {
			return workerUsage{}, err
		}
	}
	for _, c := range a.Conds {
		if err := c.Do(ctx, func() { c.NotifyAll() }); err != nil {
			return workerUsage{}, err
		}
	}
	for _, b := range a.Bars {
		if _, err := b.Wait(ctx); err != nil {
			return workerUsage{}, err
		}
	}
	for _, s := range a.Sems {
		if err := s.Do(ctx, func() {}); err != nil {
			return workerUsage{}, err
		}
	}
	for _, s := range a.Bsems {
		if err := s.Do(ctx, func() {}); err != nil {
			return workerUsage{}, err
		}
	}
	for _, e := range a.Events {
		e.Set()
	}
	if a.Close {
		var errs []error
		for _, l := range a.Locks {
			errs = append(errs, l.Close())
		}
		for _, c := range a.Conds {
			errs = append(errs, c.Close(), c.Locker().Close())
		}
		if err := errors.Join(errs...); err != nil {
			return workerUsage{}, err
		}
	}
	return usage()
})

// TestPoolWorkerReleasesArenas: a long-lived pool worker given fresh
// primitives round after round, which the parent closes after each round,
// does not keep one descriptor and one mapping per arena it ever saw (the
// old code: +1 fd and +1 mapping per 64 KiB arena per round, for good).
// Each round spans several arenas: a thousand Locks, Conditions (4 KiB
// each) over a Lock made in an earlier arena (a Condition of two files)
// and over their own RLocks, Barriers, semaphores and Events; the tasks
// use them all and close half of them (which must not release their
// worker's kept copies: every task still works).
func TestPoolWorkerReleasesArenas(t *testing.T) {
	ctx := testCtx(t)
	pool := must(multiproc.NewPool(ctx, 1))
	defer pool.Close()
	measure := func() workerUsage {
		t.Helper()
		u, err := multiproc.Apply(ctx, pool, roundFn, roundArg{})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	base := measure()
	const rounds = 8
	var peak workerUsage
	for r := range rounds {
		var all []interface{ Close() error }
		keep := func(c interface{ Close() error }) { all = append(all, c) }
		var args []roundArg
		for range 10 { // 10 tasks of 100 Locks: 1000 Locks, about one arena
			var a roundArg
			for range 100 {
				l := must(psync.NewLock())
				keep(l)
				a.Locks = append(a.Locks, l)
			}
			args = append(args, a)
		}
		shared := args[0].Locks[0] // in the first arena of the round
		for i := range 40 {        // 40 Conditions: ~2.5 arenas
			var lk psync.CondLock
			if i%2 == 0 {
				lk = shared
			}
			c := must(psync.NewCondition(lk))
			keep(c)
			args[i%10].Conds = append(args[i%10].Conds, c)
		}
		for i := range 50 {
			b := must(psync.NewBarrier(1))
			s := must(psync.NewSemaphore(1))
			bs := must(psync.NewBoundedSemaphore(1))
			e := must(psync.NewEvent())
			rl := must(psync.NewRLock())
			keep(b)
			keep(s)
			keep(bs)
			keep(e)
			keep(rl)
			a := &args[i%10]
			a.Bars, a.Sems, a.Bsems, a.Events, a.RLocks = append(a.Bars, b), append(a.Sems, s), append(a.Bsems, bs), append(a.Events, e), append(a.RLocks, rl)
		}
		for i := range args {
			args[i].Close = i%2 == 1
			u, err := multiproc.Apply(ctx, pool, roundFn, args[i])
			if err != nil {
				t.Fatalf("round %d task %d: %v", r, i, err)
			}
			if u.Pid != base.Pid {
				t.Fatalf("the worker was replaced (pid %d, then %d)", base.Pid, u.Pid)
			}
			peak.FDs, peak.Maps = max(peak.FDs, u.FDs), max(peak.Maps, u.Maps)
		}
		// Every task used them: again, after the tasks that closed theirs.
		for i := range args {
			if _, err := multiproc.Apply(ctx, pool, roundFn, args[i]); err != nil {
				t.Fatalf("round %d task %d again: %v", r, i, err)
			}
		}
		for _, c := range all {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
		u := measure()
		t.Logf("round %d: worker fds %d (%+d), psync mappings %d (%+d); peak during the round %d fds, %d mappings",
			r, u.FDs, u.FDs-base.FDs, u.Maps, u.Maps-base.Maps, peak.FDs, peak.Maps)
		// Bounded: a round's arenas are gone once the parent closed
		// them (a few descriptors of slack for the runtime's own).
		if u.FDs > base.FDs+3 || u.Maps > base.Maps {
			t.Fatalf("after round %d the worker holds %d fds and %d psync mappings, against %d and %d before the first: it keeps released arenas",
				r, u.FDs, u.Maps, base.FDs, base.Maps)
		}
	}
}

// TestCloseHeldLockParks: closing a Lock this process holds keeps its
// word mapped and in the robust list (a late Unlock, or this process's
// death, must still find it) until it is unlocked; the next release,
// import or allocation then releases it, word and mapping.
func TestCloseHeldLockParks(t *testing.T) {
	ctx := testCtx(t)
	before := futex.Registered()
	l := must(psync.NewLock())
	if err := l.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if psync.Parked() != 1 || futex.Registered() != before+1 {
		t.Fatalf("a held Lock's Close: %d parked, %d words registered (was %d), want 1 and %d", psync.Parked(), futex.Registered(), before, before+1)
	}
	if err := l.Unlock(); err != nil { // still mapped: no fault
		t.Fatal(err)
	}
	e := must(psync.NewEvent()) // an allocation sweeps
	e.Close()
	if psync.Parked() != 0 || futex.Registered() != before {
		t.Fatalf("after Unlock: %d parked, %d words registered, want 0 and %d", psync.Parked(), futex.Registered(), before)
	}
}

var receivedClose = multiproc.Register("psync.test.received-close", func(ctx context.Context, a roundArg) ([3]workerUsage, error) {
	var u [3]workerUsage
	var err error
	if u[0], err = usage(); err != nil {
		return u, err
	}
	for _, l := range a.Locks {
		if err := l.Do(ctx, func() {}); err != nil {
			return u, err
		}
	}
	for _, c := range a.Conds {
		if err := c.Do(ctx, func() { c.Notify(1) }); err != nil {
			return u, err
		}
	}
	if u[1], err = usage(); err != nil {
		return u, err
	}
	for _, l := range a.Locks {
		if err := l.Close(); err != nil {
			return u, err
		}
	}
	for _, c := range a.Conds {
		if err := c.Close(); err != nil {
			return u, err
		}
	}
	if u[2], err = usage(); err != nil {
		return u, err
	}
	if n := futex.Registered(); n != 0 { // the child has no other lock
		return u, fmt.Errorf("%d words registered after Close, want 0", n)
	}
	return u, nil
})

// TestReceivedCloseReleases: in a Process child, Close on the primitives
// it received releases their robust-list words, and the mappings and
// descriptors of their arenas with the last of them (the old code: Close
// on a received primitive did nothing).
func TestReceivedCloseReleases(t *testing.T) {
	var a roundArg
	for range 3 {
		l := must(psync.NewLock())
		defer l.Close()
		a.Locks = append(a.Locks, l)
	}
	for range 20 { // more than an arena of Conditions, over a Lock in the first
		c := must(psync.NewCondition(a.Locks[0]))
		defer c.Close()
		a.Conds = append(a.Conds, c)
	}
	p := start(t, multiproc.NewProcess(receivedClose, a))
	join(t, p)
	u, err := multiproc.Result[[3]workerUsage](p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("child: %+v at start, %+v after use, %+v after Close", u[0], u[1], u[2])
	if u[2].Maps != 0 || u[2].FDs >= u[0].FDs {
		t.Fatalf("after Close the child holds %d psync mappings and %d fds (%d at start, which counts the received ones)", u[2].Maps, u[2].FDs, u[0].FDs)
	}
}
