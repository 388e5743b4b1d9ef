package psync_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/psync"
)

var barrierParty = multiproc.Register("psync.test.barrier-party", func(ctx context.Context, b *psync.Barrier) (int, error) {
	return b.Wait(ctx)
})

func TestBarrierAcrossProcesses(t *testing.T) {
	ctx := testCtx(t)
	b := must(psync.NewBarrier(3))
	defer b.Close()
	if b.Parties() != 3 {
		t.Fatalf("Parties = %d", b.Parties())
	}
	for round := range 2 {
		ps := []*multiproc.Process{start(t, multiproc.NewProcess(barrierParty, b)), start(t, multiproc.NewProcess(barrierParty, b))}
		mine, err := b.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		idx := []int{mine}
		for _, p := range ps {
			join(t, p)
			i, err := multiproc.Result[int](p)
			if err != nil {
				t.Fatal(err)
			}
			idx = append(idx, i)
		}
		slices.Sort(idx)
		if !slices.Equal(idx, []int{0, 1, 2}) {
			t.Fatalf("round %d: arrival indexes %v, want 0, 1, 2", round, idx)
		}
	}
}

// TestBarrierPartyDeath: a party killed while it waits breaks the barrier
// for the others (seen through a pidfd watch; the latency is logged, not
// asserted).
func TestBarrierPartyDeath(t *testing.T) {
	ctx := testCtx(t)
	b := must(psync.NewBarrier(3))
	defer b.Close()
	p := start(t, multiproc.NewProcess(barrierParty, b))
	testutil.WaitFor(t, time.Minute, func() bool { return b.NWaiting() == 1 }, "the child never arrived")
	got := make(chan error, 1)
	go func() { _, err := b.Wait(ctx); got <- err }()
	testutil.WaitFor(t, time.Minute, func() bool { return b.NWaiting() == 2 }, "the goroutine never arrived")
	killed := time.Now()
	p.Kill()
	err := <-got
	if !errors.Is(err, psync.ErrBrokenBarrier) {
		t.Fatalf("Wait = %v, want ErrBrokenBarrier", err)
	}
	t.Logf("SIGKILL to ErrBrokenBarrier: %v", time.Since(killed))
	if _, err := b.Wait(ctx); !errors.Is(err, psync.ErrBrokenBarrier) || !b.Broken() {
		t.Fatalf("Wait on a broken barrier = %v, want ErrBrokenBarrier", err)
	}
	if err := b.Reset(); err != nil || b.Broken() {
		t.Fatalf("Reset = %v, Broken %v", err, b.Broken())
	}
}

// TestBarrierPartyDeathOtherProcesses: with 4 parties, a killed child
// breaks the barrier for a waiter in another child as well as in this
// process (each watches the victim itself).
func TestBarrierPartyDeathOtherProcesses(t *testing.T) {
	ctx := testCtx(t)
	b := must(psync.NewBarrier(4))
	defer b.Close()
	victim := start(t, multiproc.NewProcess(barrierParty, b))
	testutil.WaitFor(t, time.Minute, func() bool { return b.NWaiting() == 1 }, "the victim never arrived")
	survivor := start(t, multiproc.NewProcess(barrierParty, b))
	testutil.WaitFor(t, time.Minute, func() bool { return b.NWaiting() == 2 }, "the survivor never arrived")
	got := make(chan error, 1)
	go func() { _, err := b.Wait(ctx); got <- err }()
	testutil.WaitFor(t, time.Minute, func() bool { return b.NWaiting() == 3 }, "the goroutine never arrived")
	victim.Kill()
	if err := <-got; !errors.Is(err, psync.ErrBrokenBarrier) {
		t.Fatalf("Wait here = %v, want ErrBrokenBarrier", err)
	}
	if err := survivor.Join(ctx); !errors.Is(err, psync.ErrBrokenBarrier) {
		t.Fatalf("the surviving child's Wait = %v, want ErrBrokenBarrier", err)
	}
}

func TestBarrierAbortAndTimeout(t *testing.T) {
	ctx := testCtx(t)
	b := must(psync.NewBarrier(2))
	defer b.Close()
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := b.Wait(short); !errors.Is(err, psync.ErrBrokenBarrier) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait that times out = %v, want ErrBrokenBarrier and DeadlineExceeded", err)
	}
	if !b.Broken() {
		t.Fatal("a timed-out Wait did not break the barrier")
	}
	b.Reset()
	got := make(chan error, 1)
	go func() { _, err := b.Wait(ctx); got <- err }()
	testutil.WaitFor(t, time.Minute, func() bool { return b.NWaiting() == 1 }, "no waiter")
	if err := b.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, psync.ErrBrokenBarrier) {
		t.Fatalf("Wait during Abort = %v, want ErrBrokenBarrier", err)
	}
	b.Reset()
	// Reset while one waits: it gets the broken error, the barrier works.
	go func() { _, err := b.Wait(ctx); got <- err }()
	testutil.WaitFor(t, time.Minute, func() bool { return b.NWaiting() == 1 }, "no waiter")
	b.Reset()
	if err := <-got; !errors.Is(err, psync.ErrBrokenBarrier) {
		t.Fatalf("Wait during Reset = %v, want ErrBrokenBarrier", err)
	}
	go func() { _, err := b.Wait(ctx); got <- err }()
	if _, err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}
