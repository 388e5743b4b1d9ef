package multiproc_test

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

type stopArg struct {
	Dir  string
	Mode string // "ctx": return when ctx ends; "term": ignore ctx, exit on SIGTERM; "stubborn": ignore both
}

var (
	// stopper records in Dir how it was asked to stop: the file "ctx"
	// holds ctx.Err() once its context ended, "term" appears on SIGTERM.
	stopper = multiproc.Register("test.stopper", func(ctx context.Context, a stopArg) (int, error) {
		term := make(chan os.Signal, 1)
		if a.Mode != "ctx" {
			signal.Notify(term, syscall.SIGTERM) // instead of dying at once
		}
		os.WriteFile(filepath.Join(a.Dir, "started"), nil, 0o600)
		switch a.Mode {
		case "ctx":
			<-ctx.Done()
			os.WriteFile(filepath.Join(a.Dir, "ctx"), []byte(ctx.Err().Error()), 0o600)
			return 0, ctx.Err()
		case "term":
			<-term
			os.WriteFile(filepath.Join(a.Dir, "term"), nil, 0o600)
			os.Exit(1)
		default:
			<-term
			os.WriteFile(filepath.Join(a.Dir, "term"), nil, 0o600)
			select {} // waits for SIGKILL
		}
		return 0, nil
	})
	// slowOnce overruns its time limit the first time (marker absent),
	// returning when its context ends, and succeeds when retried.
	slowOnce = multiproc.Register("test.slowOnce", func(ctx context.Context, marker string) (string, error) {
		if _, err := os.Stat(marker); err != nil {
			os.WriteFile(marker, nil, 0o600)
			<-ctx.Done()
			return "", ctx.Err()
		}
		return "second attempt", nil
	})
	deadlineSeen = multiproc.Register("test.deadlineSeen", func(ctx context.Context, _ int) (time.Duration, error) {
		d, ok := ctx.Deadline()
		if !ok {
			return -1, nil
		}
		return time.Until(d), nil
	})
)

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestTimeoutCooperative guards the polite first stage: at the deadline
// the caller gets ErrTimeout at once, the task's context in the worker
// ends with DeadlineExceeded (its budget travelled in the task frame), and
// a task that returns within Grace keeps its worker, which serves the next
// task. It used to SIGTERM the worker at the deadline.
func TestTimeoutCooperative(t *testing.T) {
	// The directory first: cleanups run last-in first-out, so the pool (and
	// its worker, which may still write here) is gone before it is removed.
	dir := t.TempDir()
	p := newPool(t, 1, multiproc.Grace(time.Minute))
	ctx := ctxT(t)
	pid0 := p.Stats().PerWorker[0].Pid
	_, err := multiproc.Apply(ctx, p, stopper, stopArg{Dir: dir, Mode: "ctx"}, multiproc.Timeout(50*time.Millisecond))
	if !errors.Is(err, multiproc.ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	if want := `multiproc: task "test.stopper" exceeded its 50ms time limit: multiproc: task timed out`; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	var seen []byte
	testutil.WaitFor(t, deadline, func() bool {
		seen, _ = os.ReadFile(filepath.Join(dir, "ctx")) // written, not only created
		return len(seen) > 0
	}, "the task saw its context end")
	if string(seen) != context.DeadlineExceeded.Error() {
		t.Fatalf("worker-side ctx.Err() = %q, want %q", seen, context.DeadlineExceeded)
	}
	if v, err := multiproc.Apply(ctx, p, pid, 0); err != nil || v != pid0 {
		t.Fatalf("next task ran in %d (%v), want worker %d", v, err, pid0)
	}
	if s := p.Stats(); s.TimedOut != 1 || s.Restarts != 0 {
		t.Fatalf("TimedOut %d, Restarts %d; want 1, 0", s.TimedOut, s.Restarts)
	}
}

// TestTimeoutTerm: a task that ignores its context is answered at the
// deadline, its worker gets SIGTERM only after Grace, and is replaced.
func TestTimeoutTerm(t *testing.T) {
	// The directory first: cleanups run last-in first-out, so the pool (and
	// its worker, which may still write here) is gone before it is removed.
	dir := t.TempDir()
	p := newPool(t, 1, multiproc.Grace(2*time.Second))
	ctx := ctxT(t)
	pid0 := p.Stats().PerWorker[0].Pid
	_, err := multiproc.Apply(ctx, p, stopper, stopArg{Dir: dir, Mode: "term"}, multiproc.Timeout(50*time.Millisecond))
	if !errors.Is(err, multiproc.ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	if exists(filepath.Join(dir, "term")) {
		t.Fatal("SIGTERM came before the caller was answered: the deadline must answer first, SIGTERM only after Grace")
	}
	testutil.WaitFor(t, deadline, func() bool { return exists(filepath.Join(dir, "term")) }, "SIGTERM after Grace")
	testutil.WaitFor(t, deadline, func() bool {
		s := p.Stats()
		return len(s.PerWorker) == 1 && s.PerWorker[0].Pid != pid0
	}, "worker replaced")
	if v, err := multiproc.Apply(ctx, p, square, 5); err != nil || v != 25 {
		t.Fatalf("after the timeout: %v %v", v, err)
	}
}

// TestTimeoutKill: a task that ignores SIGTERM too is killed after a
// further Grace. The caller was answered long before, while the worker
// still ran.
func TestTimeoutKill(t *testing.T) {
	// The directory first: cleanups run last-in first-out, so the pool (and
	// its worker, which may still write here) is gone before it is removed.
	dir := t.TempDir()
	p := newPool(t, 1, multiproc.Grace(time.Second))
	ctx := ctxT(t)
	pid0 := p.Stats().PerWorker[0].Pid
	_, err := multiproc.Apply(ctx, p, stopper, stopArg{Dir: dir, Mode: "stubborn"}, multiproc.Timeout(50*time.Millisecond))
	if !errors.Is(err, multiproc.ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	if !alive(pid0) {
		t.Fatal("the worker was gone when the caller was answered: the deadline must answer first")
	}
	testutil.WaitFor(t, deadline, func() bool { return exists(filepath.Join(dir, "term")) }, "SIGTERM (ignored)")
	testutil.WaitFor(t, deadline, func() bool {
		s := p.Stats()
		return len(s.PerWorker) == 1 && s.PerWorker[0].Pid != pid0
	}, "worker killed and replaced")
	if v, err := multiproc.Apply(ctx, p, square, 6); err != nil || v != 36 {
		t.Fatalf("after the kill: %v %v", v, err)
	}
}

// TestTimeoutChunkMessage: the error of a timed-out Map chunk says so.
func TestTimeoutChunkMessage(t *testing.T) {
	// The directory first: cleanups run last-in first-out, so the pool (and
	// its worker, which may still write here) is gone before it is removed.
	dir := t.TempDir()
	p := newPool(t, 1, multiproc.Grace(time.Minute))
	args := []stopArg{{Dir: dir, Mode: "ctx"}, {Dir: dir, Mode: "ctx"}}
	_, err := multiproc.Map(ctxT(t), p, stopper, args, multiproc.Chunksize(2), multiproc.Timeout(50*time.Millisecond))
	if !errors.Is(err, multiproc.ErrTimeout) || !strings.Contains(err.Error(), `task "test.stopper" (a Map chunk of 2 items) exceeded its 50ms time limit`) {
		t.Fatalf("got %v, want ErrTimeout naming a Map chunk of 2 items", err)
	}
}

// TestDeadlineTravels guards the budget: the caller's context deadline,
// or the time limit if it is shorter, reaches the task's context in the
// worker (relative, so the worker's clock need not agree).
func TestDeadlineTravels(t *testing.T) {
	p := newPool(t, 1)
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	left, err := multiproc.Apply(cctx, p, deadlineSeen, 0)
	if err != nil || left <= 0 || left > 30*time.Second {
		t.Fatalf("ctx deadline: worker saw %v left (%v), want (0, 30s]", left, err)
	}
	left, err = multiproc.Apply(cctx, p, deadlineSeen, 0, multiproc.Timeout(10*time.Second))
	if err != nil || left <= 0 || left > 10*time.Second {
		t.Fatalf("time limit: worker saw %v left (%v), want (0, 10s]", left, err)
	}
	left, err = multiproc.Apply(ctxT(t), p, deadlineSeen, 0)
	if err != nil || left > deadline {
		t.Fatalf("test context: worker saw %v left (%v)", left, err)
	}
	if left, err = multiproc.Apply(context.Background(), p, deadlineSeen, 0); err != nil || left != -1 {
		t.Fatalf("no deadline: worker saw %v left (%v), want none", left, err)
	}
}

// TestTimeoutRetried: with retries for timeouts, a task past its limit is
// not answered at the deadline; when it returns within Grace it runs again
// (on the same worker, which lived).
func TestTimeoutRetried(t *testing.T) {
	dir := t.TempDir() // before the pool: see TestTimeoutCooperative
	p := newPool(t, 1, multiproc.Grace(time.Minute), multiproc.Retries(1, multiproc.ErrTimeout))
	pid0 := p.Stats().PerWorker[0].Pid
	v, err := multiproc.Apply(ctxT(t), p, slowOnce, filepath.Join(dir, "m"), multiproc.Timeout(100*time.Millisecond))
	if err != nil || v != "second attempt" {
		t.Fatalf("got %q, %v; want the retry's result", v, err)
	}
	if s := p.Stats(); s.Retried != 1 || s.PerWorker[0].Pid != pid0 {
		t.Fatalf("Retried %d, worker %d (was %d); want 1 retry on the same worker", s.Retried, s.PerWorker[0].Pid, pid0)
	}
}
