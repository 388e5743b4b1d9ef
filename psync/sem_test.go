package psync_test

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/psync"
)

func TestSemaphore(t *testing.T) {
	s := must(psync.NewSemaphore(2))
	defer s.Close()
	for i, want := range []bool{true, true, false} {
		if got := s.TryAcquire(); got != want {
			t.Fatalf("TryAcquire %d = %v, want %v", i, got, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire of an empty semaphore = %v, want DeadlineExceeded", err)
	}
	if s.Value() != 0 {
		t.Fatalf("Value = %d after a cancelled Acquire, want 0", s.Value())
	}
	s.Release()
	if err := s.Acquire(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

type semJob struct {
	S   *psync.Semaphore
	Mem *os.File
}

var semWorker = multiproc.Register("psync.test.sem-worker", multiproc.NoResult(func(ctx context.Context, j semJob) error {
	c, unmap, err := mapCounter(j.Mem)
	if err != nil {
		return err
	}
	defer unmap()
	inside, most := c, (*uint64)(unsafe.Add(unsafe.Pointer(c), 8))
	for range 200 {
		if err := j.S.Acquire(ctx); err != nil {
			return err
		}
		n := atomic.AddUint64(inside, 1)
		for m := atomic.LoadUint64(most); n > m && !atomic.CompareAndSwapUint64(most, m, n); m = atomic.LoadUint64(most) {
		}
		atomic.AddUint64(inside, ^uint64(0))
		j.S.Release()
	}
	return nil
}))

// TestSemaphoreLimitsProcesses: the seeds' Semaphore(2) example: at most
// two of five processes inside at once.
func TestSemaphoreLimitsProcesses(t *testing.T) {
	s := must(psync.NewSemaphore(2))
	defer s.Close()
	c := newCounter(t)
	var ps []*multiproc.Process
	for range 5 {
		ps = append(ps, start(t, multiproc.NewProcess(semWorker, semJob{S: s, Mem: c.f})))
	}
	for _, p := range ps {
		join(t, p)
	}
	inside, most := atomic.LoadUint64(c.p()), atomic.LoadUint64((*uint64)(unsafe.Pointer(&c.mem[8])))
	if most < 1 || most > 2 {
		t.Fatalf("%d processes were inside at once, want 1 or 2", most)
	}
	if inside != 0 || s.Value() != 2 {
		t.Fatalf("inside %d, value %d after all left; want 0, 2", inside, s.Value())
	}
}

func TestBoundedSemaphoreOverRelease(t *testing.T) {
	s := must(psync.NewBoundedSemaphore(1))
	defer s.Close()
	if err := s.Release(); !errors.Is(err, psync.ErrOverReleased) {
		t.Fatalf("Release without Acquire = %v, want ErrOverReleased", err)
	}
	if err := s.Acquire(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.TryAcquire(); ok || err != nil {
		t.Fatalf("TryAcquire of an empty semaphore = %v, %v", ok, err)
	}
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(); !errors.Is(err, psync.ErrOverReleased) {
		t.Fatalf("second Release = %v, want ErrOverReleased", err)
	}
	if s.Value() != 1 {
		t.Fatalf("Value = %d, want 1", s.Value())
	}
}

var acquireAndExit = multiproc.Register("psync.test.bsem-acquire-exit", multiproc.NoResult(func(ctx context.Context, s *psync.BoundedSemaphore) error {
	for range 2 {
		if err := s.Acquire(ctx); err != nil {
			return err
		}
	}
	return nil // exit holding both units
}))

var releaseForeign = multiproc.Register("psync.test.bsem-release", multiproc.NoResult(func(ctx context.Context, s *psync.BoundedSemaphore) error {
	return s.Release()
}))

// TestBoundedSemaphoreDeadHolder: a dead process's units come back, each
// Acquire that receives one getting ErrOwnerDead; a process that holds no
// unit cannot release one.
func TestBoundedSemaphoreDeadHolder(t *testing.T) {
	ctx := testCtx(t)
	s := must(psync.NewBoundedSemaphore(2))
	defer s.Close()
	join(t, start(t, multiproc.NewProcess(acquireAndExit, s)))
	if s.Value() != 0 {
		t.Fatalf("Value = %d with the units held by a dead process (not yet returned), want 0", s.Value())
	}
	for i := range 2 {
		begin := time.Now()
		if err := s.Acquire(ctx); !errors.Is(err, psync.ErrOwnerDead) {
			t.Fatalf("Acquire %d = %v, want ErrOwnerDead", i, err)
		}
		if d := time.Since(begin); d > time.Second {
			t.Fatalf("Acquire %d took %v", i, d)
		}
	}
	p := start(t, multiproc.NewProcess(releaseForeign, s))
	p.Join(ctx)
	if _, err := multiproc.Result[struct{}](p); !errors.Is(err, psync.ErrOverReleased) {
		t.Fatalf("Release by a process holding nothing = %v, want ErrOverReleased", err)
	}
	for range 2 {
		if err := s.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if s.Value() != 2 {
		t.Fatalf("Value = %d, want 2", s.Value())
	}
}

func TestEvent(t *testing.T) {
	e := must(psync.NewEvent())
	defer e.Close()
	if e.IsSet() {
		t.Fatal("a new Event is set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := e.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want DeadlineExceeded", err)
	}
	e.Set()
	if !e.IsSet() || e.Wait(testCtx(t)) != nil {
		t.Fatal("Set event: IsSet false or Wait failed")
	}
	e.Clear()
	if e.IsSet() {
		t.Fatal("Clear did not clear")
	}
}

type pingJob struct {
	Ping, Pong *psync.Event
	N          int
}

var ponger = multiproc.Register("psync.test.ponger", multiproc.NoResult(func(ctx context.Context, j pingJob) error {
	for range j.N {
		if err := j.Ping.Wait(ctx); err != nil {
			return err
		}
		j.Ping.Clear()
		j.Pong.Set()
	}
	return nil
}))

func TestEventPingPong(t *testing.T) {
	ctx := testCtx(t)
	ping, pong := must(psync.NewEvent()), must(psync.NewEvent())
	defer ping.Close()
	defer pong.Close()
	const n = 500
	p := start(t, multiproc.NewProcess(ponger, pingJob{Ping: ping, Pong: pong, N: n}))
	for range n {
		ping.Set()
		if err := pong.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		pong.Clear()
	}
	join(t, p)
}

// TestWaitersShareAThread: 1000 goroutines waiting on one Event do not
// hold 1000 OS threads (only one per process sleeps in the kernel).
func TestWaitersShareAThread(t *testing.T) {
	e := must(psync.NewEvent())
	defer e.Close()
	ctx := testCtx(t)
	const n = 1000
	done := make(chan error, n)
	for range n {
		go func() { done <- e.Wait(ctx) }()
	}
	// Give the waiters time to block; the thread count is the claim.
	testutil.WaitFor(t, time.Minute, func() bool { return threads(t) > 0 }, "no thread count")
	deadline := time.Now().Add(200 * time.Millisecond)
	most := 0
	for time.Now().Before(deadline) {
		most = max(most, threads(t))
		time.Sleep(10 * time.Millisecond) // sampling a count, not synchronising
	}
	e.Set()
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d waiters: at most %d OS threads", n, most)
	if most > 100 {
		t.Fatalf("%d OS threads for %d waiters on one Event", most, n)
	}
}

func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, line := range splitLines(string(b)) {
		if len(line) > 8 && line[:8] == "Threads:" {
			for _, c := range line[8:] {
				if c >= '0' && c <= '9' {
					n = n*10 + int(c-'0')
				}
			}
		}
	}
	return n
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// TestDoForms: Python's `with` blocks on a Semaphore, a BoundedSemaphore
// and a Condition (whose f may wait).
func TestDoForms(t *testing.T) {
	ctx := testCtx(t)
	s := must(psync.NewSemaphore(1))
	defer s.Close()
	if err := s.Do(ctx, func() {
		if s.Value() != 0 {
			t.Error("Do does not hold a unit")
		}
	}); err != nil || s.Value() != 1 {
		t.Fatalf("Semaphore.Do = %v, value %d after", err, s.Value())
	}
	b := must(psync.NewBoundedSemaphore(1))
	defer b.Close()
	if err := b.Do(ctx, func() {}); err != nil || b.Value() != 1 {
		t.Fatalf("BoundedSemaphore.Do = %v, value %d after", err, b.Value())
	}
	c := must(psync.NewCondition(nil))
	defer c.Close()
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	var werr error
	if err := c.Do(ctx, func() { werr = c.Wait(short) }); err != nil || !errors.Is(werr, context.DeadlineExceeded) {
		t.Fatalf("Condition.Do = %v, Wait inside = %v", err, werr)
	}
	if h := c.Locker().Holder(); h != 0 {
		t.Fatalf("the lock is held by %d after Do", h)
	}
	if ok, err := c.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	c.Unlock()
}

// TestConstructorsRejectBadArguments: out-of-range arguments return
// ErrInvalidArgument (they panicked before).
func TestConstructorsRejectBadArguments(t *testing.T) {
	big := int64(1) << 31
	for name, err := range map[string]error{
		"NewSemaphore(-1)":         second(psync.NewSemaphore(-1)),
		"NewSemaphore(1<<31)":      second(psync.NewSemaphore(int(big))), // negative on 32 bits: refused too
		"NewBoundedSemaphore(-1)":  second(psync.NewBoundedSemaphore(-1)),
		"NewBarrier(0)":            second(psync.NewBarrier(0)),
		"NewBarrier(MaxParties+1)": second(psync.NewBarrier(psync.MaxParties + 1)),
	} {
		if !errors.Is(err, psync.ErrInvalidArgument) {
			t.Errorf("%s = %v, want ErrInvalidArgument", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
