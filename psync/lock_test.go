package psync_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/psync"
	"github.com/multiproc-go/multiproc/psync/internal/killtest"
	"github.com/multiproc-go/multiproc/shm"
)

func TestLockMisuse(t *testing.T) {
	l := must(psync.NewLock())
	defer l.Close()
	if err := l.Unlock(); !errors.Is(err, psync.ErrNotHeld) {
		t.Fatalf("Unlock of a free lock = %v, want ErrNotHeld", err)
	}
	if err := l.MarkConsistent(); !errors.Is(err, psync.ErrNotHeld) {
		t.Fatalf("MarkConsistent of a free lock = %v, want ErrNotHeld", err)
	}
	if ok, err := l.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if ok, err := l.TryLock(); ok || err != nil {
		t.Fatalf("second TryLock = %v, %v; want false, nil", ok, err)
	}
	if got := l.Holder(); got != os.Getpid() {
		t.Fatalf("Holder = %d, want %d", got, os.Getpid())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of a held lock = %v, want DeadlineExceeded", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if l.Holder() != 0 {
		t.Fatalf("Holder after Unlock = %d", l.Holder())
	}
}

// TestLockExcludesGoroutines: a Lock is a sync.Mutex across processes, so
// it also excludes the goroutines of one process (and -race sees it).
func TestLockExcludesGoroutines(t *testing.T) {
	l := must(psync.NewLock())
	defer l.Close()
	ctx := testCtx(t)
	n := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				if err := l.Do(ctx, func() { n++ }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n != 16000 {
		t.Fatalf("n = %d, want 16000", n)
	}
}

type incrJob struct {
	L   *psync.Lock
	Mem *os.File
	N   int
}

var incrUnderLock = multiproc.Register("psync.test.incr", func(ctx context.Context, j incrJob) (int, error) {
	c, unmap, err := mapCounter(j.Mem)
	if err != nil {
		return 0, err
	}
	defer unmap()
	for i := range j.N {
		if err := j.L.Lock(ctx); err != nil {
			return i, err
		}
		*c++
		if err := j.L.Unlock(); err != nil {
			return i, err
		}
	}
	return j.N, nil
})

func TestLockAcrossProcesses(t *testing.T) {
	l := must(psync.NewLock())
	defer l.Close()
	c := newCounter(t)
	const n = 20000
	var ps []*multiproc.Process
	for range 2 {
		ps = append(ps, start(t, multiproc.NewProcess(incrUnderLock, incrJob{L: l, Mem: c.f, N: n})))
	}
	ctx := testCtx(t)
	for range n {
		if err := l.Do(ctx, func() { *c.p()++ }); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range ps {
		join(t, p)
	}
	if got := *c.p(); got != 3*n {
		t.Fatalf("counter = %d, want %d", got, 3*n)
	}
}

var lockAndExit = multiproc.Register("psync.test.lock-and-exit", multiproc.NoResult(func(ctx context.Context, l *psync.Lock) error {
	return l.Lock(ctx) // and return (exit) holding it
}))

func TestOwnerDeadAndNotRecoverable(t *testing.T) {
	l := must(psync.NewLock())
	defer l.Close()
	ctx := testCtx(t)
	for round := range 2 {
		join(t, start(t, multiproc.NewProcess(lockAndExit, l)))
		if err := l.Lock(ctx); !errors.Is(err, psync.ErrOwnerDead) || !errors.Is(err, multiproc.ErrOwnerDead) {
			t.Fatalf("round %d: Lock after the holder exited = %v, want ErrOwnerDead", round, err)
		}
		if round == 0 {
			// Repaired: the lock works normally again.
			if err := l.MarkConsistent(); err != nil {
				t.Fatal(err)
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
			if err := l.Lock(ctx); err != nil {
				t.Fatalf("Lock after MarkConsistent = %v", err)
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Unlocked without MarkConsistent: not recoverable, for good.
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := l.Lock(ctx); !errors.Is(err, psync.ErrNotRecoverable) {
			t.Fatalf("Lock = %v, want ErrNotRecoverable", err)
		}
		if ok, err := l.TryLock(); ok || !errors.Is(err, psync.ErrNotRecoverable) {
			t.Fatalf("TryLock = %v, %v, want ErrNotRecoverable", ok, err)
		}
	}
}

type holdJob struct {
	L    *psync.Lock
	Held *psync.Event
}

var lockAndHang = multiproc.Register("psync.test.lock-and-hang", multiproc.NoResult(func(ctx context.Context, j holdJob) error {
	if err := j.L.Lock(ctx); err != nil {
		return err
	}
	j.Held.Set()
	<-ctx.Done() // until killed
	return nil
}))

// TestWaiterSeesDeathPromptly: a waiter already asleep when the holder is
// SIGKILLed takes the lock at once (its pidfd watch wakes it), not after
// the 50 ms timed check.
func TestWaiterSeesDeathPromptly(t *testing.T) {
	l := must(psync.NewLock())
	defer l.Close()
	held := must(psync.NewEvent())
	defer held.Close()
	ctx := testCtx(t)
	var took []time.Duration
	for range 10 {
		held.Clear()
		p := start(t, multiproc.NewProcess(lockAndHang, holdJob{L: l, Held: held}))
		if err := held.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() { got <- l.Lock(ctx) }()
		// The waiters flag is set once the waiter watches the holder and
		// is about to sleep.
		testutil.WaitFor(t, time.Minute, func() bool { return psync.Contended(l) }, "the waiter never went to sleep")
		killed := time.Now()
		p.Kill()
		err := <-got
		d := time.Since(killed)
		took = append(took, d)
		if !errors.Is(err, psync.ErrOwnerDead) {
			t.Fatalf("Lock = %v, want ErrOwnerDead", err)
		}
		if d > time.Second {
			t.Fatalf("death seen after %v", d)
		}
		l.MarkConsistent()
		l.Unlock()
		p.Join(ctx)
	}
	slices.Sort(took)
	t.Logf("SIGKILL to ErrOwnerDead: median %v, max %v (the kernel's own kill-to-pidfd time for a Go process is part of it)", took[len(took)/2], took[len(took)-1])
}

type deepArg struct {
	Name  string
	Inner struct {
		Locks []*psync.Lock
		Ev    *psync.Event
	}
}

var deepFn = multiproc.Register("psync.test.deep", func(ctx context.Context, a deepArg) (string, error) {
	for _, l := range a.Inner.Locks {
		if err := l.Lock(ctx); err != nil {
			return "", err
		}
		l.Unlock()
	}
	a.Inner.Ev.Set()
	return fmt.Sprintf("%s:%d", a.Name, len(a.Inner.Locks)), nil
})

// TestResourceAtDepth: primitives inside a struct, in a slice, as Process
// and pool task arguments.
func TestResourceAtDepth(t *testing.T) {
	ctx := testCtx(t)
	var a deepArg
	a.Name = "deep"
	for range 3 {
		l := must(psync.NewLock())
		defer l.Close()
		a.Inner.Locks = append(a.Inner.Locks, l)
	}
	a.Inner.Ev = must(psync.NewEvent())
	defer a.Inner.Ev.Close()
	a.Inner.Locks[1].Lock(ctx)
	p := start(t, multiproc.NewProcess(deepFn, a))
	a.Inner.Locks[1].Unlock()
	join(t, p)
	if s, err := multiproc.Result[string](p); err != nil || s != "deep:3" {
		t.Fatalf("Result = %q, %v", s, err)
	}
	if !a.Inner.Ev.IsSet() {
		t.Fatal("the child's Set is not seen")
	}
	a.Inner.Ev.Clear()
	pool := must(multiproc.NewPool(ctx, 2))
	defer pool.Close()
	if s, err := multiproc.Apply(ctx, pool, deepFn, a); err != nil || s != "deep:3" {
		t.Fatalf("Apply = %q, %v", s, err)
	}
	if !a.Inner.Ev.IsSet() {
		t.Fatal("the worker's Set is not seen")
	}
}

type poolIncr struct {
	L   *psync.Lock
	Mem *os.File
}

var poolIncrFn = multiproc.Register("psync.test.pool-incr", func(ctx context.Context, j poolIncr) (int64, error) {
	c, unmap, err := mapCounter(j.Mem)
	if err != nil {
		return 0, err
	}
	defer unmap()
	if err := j.L.Lock(ctx); err != nil {
		return 0, err
	}
	*c++
	j.L.Unlock()
	j.L.Close() // a task's Close must not break the worker's kept copy
	return psync.Imports(), nil
})

// TestPoolTaskLock10k: a pool task is passed the same Lock 10k times; each
// worker imports it once and keeps it, even though every task closes it.
func TestPoolTaskLock10k(t *testing.T) {
	ctx := testCtx(t)
	l := must(psync.NewLock())
	defer l.Close()
	c := newCounter(t)
	pool := must(multiproc.NewPool(ctx, 2))
	defer pool.Close()
	const n = 10000
	rs := make([]*multiproc.AsyncResult[int64], n)
	for i := range rs {
		rs[i] = multiproc.ApplyAsync(ctx, pool, poolIncrFn, poolIncr{L: l, Mem: c.f})
	}
	for _, r := range rs {
		imports, err := r.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if imports != 1 {
			t.Fatalf("a worker imported the Lock %d times, want once", imports)
		}
	}
	if got := *c.p(); got != n {
		t.Fatalf("counter = %d, want %d", got, n)
	}
}

var unlockNotHeld = multiproc.Register("psync.test.unlock-not-held", multiproc.NoResult(func(ctx context.Context, l *psync.Lock) error {
	if err := l.Unlock(); err != nil {
		return fmt.Errorf("child: %w", err)
	}
	return nil
}))

// TestErrorsCrossProcesses: psync's sentinels match in the parent.
func TestErrorsCrossProcesses(t *testing.T) {
	ctx := testCtx(t)
	l := must(psync.NewLock())
	defer l.Close()
	if err := l.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	pool := must(multiproc.NewPool(ctx, 1))
	defer pool.Close()
	_, err := multiproc.Apply(ctx, pool, unlockNotHeld, l)
	if !errors.Is(err, psync.ErrNotHeld) {
		t.Fatalf("a child's Unlock of the parent's lock: %v, want ErrNotHeld", err)
	}
	_, err = multiproc.Apply(ctx, pool, sentinelFn, 0)
	for _, want := range []error{psync.ErrOverReleased, psync.ErrBrokenBarrier, psync.ErrNotRecoverable, psync.ErrTooManyWaiters, psync.ErrOwnerDead, psync.ErrInvalidArgument} {
		if !errors.Is(err, want) {
			t.Errorf("remote error %v does not match %v", err, want)
		}
	}
}

var sentinelFn = multiproc.Register("psync.test.sentinels", func(ctx context.Context, _ int) (int, error) {
	return 0, errors.Join(psync.ErrOverReleased, psync.ErrBrokenBarrier, psync.ErrNotRecoverable, psync.ErrTooManyWaiters, psync.ErrOwnerDead, psync.ErrInvalidArgument)
})

// TestKillHolder is the done-means test on this (cgo-linked) test binary.
func TestKillHolder(t *testing.T) {
	st, err := killtest.Run(testCtx(t), 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cgo=%v: %d kills, the victim held the lock in %d; slowest survivor Lock %v", killtest.Cgo, st.Rounds, st.Held, st.MaxTook)
	if st.Held == 0 {
		t.Error("the victim never held the lock when killed: the test did not test ErrOwnerDead")
	}
}

// TestKillHolderNoCgo builds the same test with CGO_ENABLED=0 (no glibc,
// so Go owns every thread's robust list; the design uses none either way).
func TestKillHolderNoCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := filepath.Join(t.TempDir(), "killer")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race") // -race needs cgo
	}
	build := exec.Command(gocmd, append(args, "./internal/killtest/killer")...)
	if !raceEnabled {
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-rounds", "100").CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("ok cgo=%v ", raceEnabled); !strings.HasPrefix(string(out), want) {
		t.Fatalf("output %q, want prefix %q", out, want)
	}
}

var echoLock = multiproc.Register("psync.test.echo-lock", func(ctx context.Context, l *psync.Lock) (*psync.Lock, error) {
	return l, nil
})

// TestLockComesBack: a Lock returned by a child names the same lock, and
// closing both copies in the creator releases the shared memory (the leak
// check at the end of the package's tests sees any descriptor left).
func TestLockComesBack(t *testing.T) {
	ctx := testCtx(t)
	l := must(psync.NewLock())
	pool := must(multiproc.NewPool(ctx, 1))
	defer pool.Close()
	back, err := multiproc.Apply(ctx, pool, echoLock, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := back.TryLock(); ok {
		t.Fatal("the returned copy is another lock")
	}
	if err := back.Unlock(); err != nil { // same process, same lock
		t.Fatal(err)
	}
	if err := back.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestShmLockIsALocker: shm's Value and Array locks (built on the same
// futex layer, neither package importing the other) have the Locker
// interface and return the same sentinels.
func TestShmLockIsALocker(t *testing.T) {
	v := must(shm.NewValue[int64](0))
	defer v.Close()
	a := must(shm.NewArray[int64](1))
	defer a.Close()
	pl := must(psync.NewLock())
	defer pl.Close()
	pr := must(psync.NewRLock())
	defer pr.Close()
	for _, l := range []psync.Locker{v, a, v.GetLock(), pl, pr} {
		if err := l.Lock(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if err := l.Unlock(); err != nil {
			t.Fatal(err)
		}
		if err := l.Unlock(); !errors.Is(err, psync.ErrNotHeld) {
			t.Fatalf("%T: second Unlock = %v, want psync.ErrNotHeld", l, err)
		}
	}
	if shm.ErrOwnerDead != psync.ErrOwnerDead || shm.ErrNotRecoverable != psync.ErrNotRecoverable || shm.ErrNotHeld != psync.ErrNotHeld {
		t.Fatal("shm's lock sentinels are not psync's")
	}
}
