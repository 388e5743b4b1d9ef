package multiproc_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// spinExit spins for a while on the CPU, then ends its worker with exit
// status 1 if asked: a workload in which some tasks crash.
var spinExit = multiproc.Register("test.spinExit", func(_ context.Context, a spinExitArg) (int, error) {
	for start := time.Now(); time.Since(start) < 2*time.Millisecond; {
	}
	if a.Exit {
		os.Exit(1)
	}
	return a.I, nil
})

type spinExitArg struct {
	I    int
	Exit bool
}

// TestTaskDeathsDoNotBackOff guards the blame rule: a worker that died
// running a task is that task's failure and is replaced at once; it does
// not count toward the restart intensity. One task in twelve exits its
// worker, far more deaths than the intensity (2 in a minute) allows, so a
// pool that blamed the pool for them would back off up to 5 s per death
// and not finish within the deadline.
func TestTaskDeathsDoNotBackOff(t *testing.T) {
	var log syncBuffer
	p := newPool(t, 2, multiproc.RestartIntensity(2, time.Minute),
		multiproc.Logger(slog.New(slog.NewTextHandler(&log, nil))))
	ctx := ctxT(t)
	const n = 600
	rs := make([]*multiproc.AsyncResult[int], n)
	for i := range rs {
		rs[i] = multiproc.ApplyAsync(ctx, p, spinExit, spinExitArg{I: i, Exit: i%12 == 11})
	}
	done, died := 0, 0
	for i, r := range rs {
		v, err := r.Get(ctx)
		switch {
		case i%12 != 11 && err == nil && v == i:
			done++
		case i%12 == 11 && errors.Is(err, multiproc.ErrWorkerDied):
			died++
		default:
			t.Fatalf("task %d: got %d, %v", i, v, err)
		}
		if b := p.Stats().Backoff; b != 0 {
			t.Fatalf("after task %d: Stats().Backoff = %v, want 0: task deaths must not back off", i, b)
		}
	}
	if done != 550 || died != 50 {
		t.Fatalf("%d done, %d died; want 550, 50", done, died)
	}
	// The last task's death is replaced too, asynchronously.
	testutil.WaitFor(t, deadline, func() bool {
		s := p.Stats()
		return s.Workers == 2 && s.Restarts == 50
	}, "50 replacements live")
	if s := p.Stats(); s.Done != 550 || s.Died != 50 || s.Failed != 0 || s.Restarts != 50 || s.Backoff != 0 {
		t.Fatalf("Stats: Done %d, Died %d, Failed %d, Restarts %d, Backoff %v; want 550, 50, 0, 50, 0",
			s.Done, s.Died, s.Failed, s.Restarts, s.Backoff)
	}
	if out := log.String(); strings.Contains(out, "level=WARN") {
		t.Fatalf("task deaths logged a warning:\n%s", out)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestIdleDeathsBackOff guards the other half of the rule: workers that die
// without a task (here killed while idle) count toward the restart
// intensity; past it, restarts back off, Stats reports the back-off, and
// one warning is logged for the whole crash loop, not one per death.
func TestIdleDeathsBackOff(t *testing.T) {
	var log syncBuffer
	p := newPool(t, 1, multiproc.RestartIntensity(2, time.Minute),
		multiproc.Logger(slog.New(slog.NewTextHandler(&log, nil))))
	ctx := ctxT(t)
	for kill := 1; kill <= 5; kill++ {
		old := p.Stats().PerWorker[0].Pid
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", kill, err)
		}
		testutil.WaitFor(t, deadline, func() bool {
			ws := p.Stats().PerWorker
			return len(ws) == 1 && ws[0].Pid != old
		}, "a replacement for the killed idle worker")
		s := p.Stats()
		if want := kill > 2; (s.Backoff > 0) != want {
			t.Fatalf("after %d idle deaths (intensity 2): Stats().Backoff = %v, want back-off %v", kill, s.Backoff, want)
		}
		if s.Died != 0 {
			t.Fatalf("idle deaths counted as task deaths: Died = %d", s.Died)
		}
	}
	if out := log.String(); strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "delaying restarts") {
		t.Fatalf("want exactly one back-off warning for the crash loop, got:\n%s", out)
	}
	if v, err := multiproc.Apply(ctx, p, square, 7); err != nil || v != 49 {
		t.Fatalf("after the crash loop: %v, %v", v, err)
	}
}
