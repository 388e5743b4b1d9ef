package psync_test

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/psync"
)

func TestConditionMisuse(t *testing.T) {
	c := must(psync.NewCondition(nil))
	defer c.Close()
	ctx := testCtx(t)
	if err := c.Wait(ctx); !errors.Is(err, psync.ErrNotHeld) {
		t.Fatalf("Wait without the lock = %v, want ErrNotHeld", err)
	}
	if err := c.Notify(1); !errors.Is(err, psync.ErrNotHeld) {
		t.Fatalf("Notify without the lock = %v, want ErrNotHeld", err)
	}
	if err := c.NotifyAll(); !errors.Is(err, psync.ErrNotHeld) {
		t.Fatalf("NotifyAll without the lock = %v, want ErrNotHeld", err)
	}
	// A cancelled Wait returns with the lock held again.
	if err := c.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := c.WaitFor(short, func() bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor = %v, want DeadlineExceeded", err)
	}
	if c.Locker().Holder() != os.Getpid() {
		t.Fatal("the lock is not held after a cancelled Wait")
	}
	if err := c.Unlock(); err != nil {
		t.Fatal(err)
	}
}

type condJob struct {
	C     *psync.Condition
	Ready *psync.Event
	Mem   *os.File
}

// condWaiter waits until the shared word is non-zero.
var condWaiter = multiproc.Register("psync.test.cond-waiter", multiproc.NoResult(func(ctx context.Context, j condJob) error {
	v, unmap, err := mapCounter(j.Mem)
	if err != nil {
		return err
	}
	defer unmap()
	if err := j.C.Lock(ctx); err != nil {
		return err
	}
	defer j.C.Unlock()
	j.Ready.Set() // the lock is held: Wait registers before anyone can Notify
	return j.C.WaitFor(ctx, func() bool { return atomic.LoadUint64(v) != 0 })
}))

// startWaiter starts a child waiting on c and returns once it waits.
func startWaiter(t *testing.T, c *psync.Condition, ready *psync.Event, mem *os.File) *multiproc.Process {
	t.Helper()
	ctx := testCtx(t)
	ready.Clear()
	p := start(t, multiproc.NewProcess(condWaiter, condJob{C: c, Ready: ready, Mem: mem}))
	if err := ready.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// Taking the lock means the child's Wait released it: it waits.
	if err := c.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	c.Unlock()
	return p
}

func TestConditionAcrossProcesses(t *testing.T) {
	c := must(psync.NewCondition(nil))
	defer c.Close()
	ready := must(psync.NewEvent())
	defer ready.Close()
	mem := newCounter(t)
	ctx := testCtx(t)
	ps := []*multiproc.Process{startWaiter(t, c, ready, mem.f), startWaiter(t, c, ready, mem.f)}
	if err := c.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint64(mem.p(), 1)
	if err := c.NotifyAll(); err != nil {
		t.Fatal(err)
	}
	c.Unlock()
	for _, p := range ps {
		join(t, p)
	}
}

// TestConditionDeadWaiterDoesNotConsumeNotify: the oldest waiter is
// killed; Notify(1) must wake the live one.
func TestConditionDeadWaiterDoesNotConsumeNotify(t *testing.T) {
	c := must(psync.NewCondition(nil))
	defer c.Close()
	ready := must(psync.NewEvent())
	defer ready.Close()
	mem := newCounter(t)
	ctx := testCtx(t)
	dead := startWaiter(t, c, ready, mem.f)
	dead.Kill()
	dead.Join(ctx)
	live := startWaiter(t, c, ready, mem.f)
	if err := c.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint64(mem.p(), 1)
	if err := c.Notify(1); err != nil {
		t.Fatal(err)
	}
	c.Unlock()
	join(t, live) // hangs (until the test's deadline) if the dead waiter took the notification
}

// TestConditionNotifyOne: Notify(1) wakes one of two waiters.
func TestConditionNotifyOne(t *testing.T) {
	c := must(psync.NewCondition(nil))
	defer c.Close()
	ctx := testCtx(t)
	var woken atomic.Int32
	done := make(chan error, 2)
	for range 2 {
		go func() {
			if err := c.Lock(ctx); err != nil {
				done <- err
				return
			}
			err := c.Wait(ctx)
			woken.Add(1)
			c.Unlock()
			done <- err
		}()
	}
	testutil.WaitFor(t, time.Minute, func() bool { return psync.CondWaiters(c) == 2 }, "two waiters")
	c.Lock(ctx)
	c.Notify(1)
	c.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := psync.CondWaiters(c); n != 1 {
		t.Fatalf("%d waiters left after Notify(1), want 1", n)
	}
	c.Lock(ctx)
	c.Notify(1)
	c.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type notifyJob struct {
	C   *psync.Condition
	Mem *os.File
}

// condNotifier takes the condition's lock (which it can only do if the
// waiter released every level), sets the word and notifies.
var condNotifier = multiproc.Register("psync.test.cond-notifier", multiproc.NoResult(func(ctx context.Context, j notifyJob) error {
	v, unmap, err := mapCounter(j.Mem)
	if err != nil {
		return err
	}
	defer unmap()
	if err := j.C.Lock(ctx); err != nil {
		return err
	}
	defer j.C.Unlock()
	atomic.StoreUint64(v, 1)
	return j.C.NotifyAll()
}))

// TestConditionWaitReleasesEveryRLockLevel: the default lock is an RLock;
// Wait with it entered three times releases all three (a child can take
// it) and restores the depth (three Unlocks, then ErrNotHeld). The same
// with a Condition over a plain Lock passed explicitly.
func TestConditionWaitReleasesEveryRLockLevel(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		name  string
		lock  psync.CondLock
		depth int
	}{
		{"default RLock", nil, 3},
		{"explicit Lock", must(psync.NewLock()), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := must(psync.NewCondition(tc.lock))
			defer c.Close()
			if tc.lock != nil {
				defer tc.lock.Close()
			} else if _, ok := c.Locker().(*psync.RLock); !ok {
				t.Fatalf("the default lock is a %T, want *psync.RLock", c.Locker())
			}
			mem := newCounter(t)
			for range tc.depth {
				if err := c.Lock(ctx); err != nil {
					t.Fatal(err)
				}
			}
			p := start(t, multiproc.NewProcess(condNotifier, notifyJob{C: c, Mem: mem.f}))
			if err := c.WaitFor(ctx, func() bool { return atomic.LoadUint64(mem.p()) != 0 }); err != nil {
				t.Fatal(err)
			}
			join(t, p)
			for i := range tc.depth {
				if err := c.Unlock(); err != nil {
					t.Fatalf("Unlock %d of %d after Wait: %v", i+1, tc.depth, err)
				}
			}
			if err := c.Unlock(); !errors.Is(err, psync.ErrNotHeld) {
				t.Fatalf("one Unlock too many = %v, want ErrNotHeld", err)
			}
		})
	}
}
