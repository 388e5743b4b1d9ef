package psync_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/psync"
)

type manyJob struct {
	C     *psync.Condition
	Ready *psync.Event
	Mem   *os.File
	G     int
}

// manyWaiters has G goroutines wait on C (over a Lock, so they exclude
// each other) until the shared word is non-zero; Ready is set by the last
// to register, with the lock held, so the parent's next Lock means every
// one of them waits. It returns the first error (ErrTooManyWaiters if a
// slot could not be had).
var manyWaiters = multiproc.Register("psync.test.many-waiters", multiproc.NoResult(func(ctx context.Context, j manyJob) error {
	v, unmap, err := mapCounter(j.Mem)
	if err != nil {
		return err
	}
	defer unmap()
	var n atomic.Int32
	var wg sync.WaitGroup
	errc := make(chan error, j.G)
	for range j.G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := j.C.Lock(ctx); err != nil {
				errc <- err
				return
			}
			if int(n.Add(1)) == j.G {
				j.Ready.Set()
			}
			err := j.C.WaitFor(ctx, func() bool { return atomic.LoadUint64(v) != 0 })
			j.C.Unlock()
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return err
		}
	}
	return nil
}))

// startMany starts a child with MaxConditionWaiters waiters and returns
// with the condition's lock held, every waiter waiting.
func startMany(t *testing.T, c *psync.Condition, mem *counter) *multiproc.Process {
	t.Helper()
	ctx := testCtx(t)
	ready := must(psync.NewEvent())
	t.Cleanup(func() { ready.Close() })
	p := start(t, multiproc.NewProcess(manyWaiters, manyJob{C: c, Ready: ready, Mem: mem.f, G: psync.MaxConditionWaiters}))
	if err := ready.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// fillAgain checks that a full table's worth of new waiters all get a
// slot after the previous ones died, then releases them.
func fillAgain(t *testing.T, c *psync.Condition, mem *counter) {
	t.Helper()
	p := startMany(t, c, mem)
	atomic.StoreUint64(mem.p(), 1)
	if err := c.NotifyAll(); err != nil {
		t.Fatal(err)
	}
	c.Unlock()
	if err := p.Join(testCtx(t)); err != nil {
		if errors.Is(err, psync.ErrTooManyWaiters) {
			t.Fatalf("a dead waiter's slot was not reclaimed: %v", err)
		}
		t.Fatal(err)
	}
	if code, _ := p.ExitCode(); code != 0 {
		t.Fatalf("child exit code %d", code)
	}
}

// TestConditionNotifiedWaitersDied: waiters notified and then killed
// before they could see the notification must not keep their slots (the
// review's leaked slotNotified entries). The child is stopped first so
// that none of its waiters runs between the NotifyAll and the kill.
func TestConditionNotifiedWaitersDied(t *testing.T) {
	l := must(psync.NewLock())
	defer l.Close()
	c := must(psync.NewCondition(l))
	defer c.Close()
	mem := newCounter(t)
	p := startMany(t, c, mem)
	if err := syscall.Kill(p.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := c.NotifyAll(); err != nil {
		t.Fatal(err)
	}
	p.Kill()
	p.Join(testCtx(t))
	if err := c.NotifyAll(); err != nil {
		t.Fatal(err)
	}
	c.Unlock()
	fillAgain(t, c, mem)
}

// TestConditionDeadWaitersNoNotify: a full table of waiters is killed
// and nobody notifies: the next Waits must reclaim their slots.
func TestConditionDeadWaitersNoNotify(t *testing.T) {
	l := must(psync.NewLock())
	defer l.Close()
	c := must(psync.NewCondition(l))
	defer c.Close()
	mem := newCounter(t)
	p := startMany(t, c, mem)
	c.Unlock()
	p.Kill()
	p.Join(testCtx(t))
	fillAgain(t, c, mem)
}
