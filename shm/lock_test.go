package shm_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/shm"
)

type incrJob struct {
	V *shm.Value[int64]
	A *shm.Array[int64]
	N int
}

// incrUnderLock increments the Value and the Array's first element N times
// each, with plain loads and stores (not atomic): only the locks make the
// final counts exact.
var incrUnderLock = multiproc.Register("shm_test.incr_under_lock", multiproc.NoResult(func(ctx context.Context, j incrJob) error {
	defer j.V.Close()
	defer j.A.Close()
	s := j.A.Slice()
	for range j.N {
		if err := j.V.Do(ctx, func() { j.V.Store(j.V.Load() + 1) }); err != nil {
			return err
		}
		if err := j.A.Lock(ctx); err != nil {
			return err
		}
		s[0]++
		if err := j.A.Unlock(); err != nil {
			return err
		}
	}
	return nil
}))

// TestValueLockAcrossProcesses: the lock travels in the segment; four
// processes and two goroutines here increment under it, and the counts are
// exact.
func TestValueLockAcrossProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	v := must(shm.NewValue[int64](0))
	defer v.Close()
	a := must(shm.NewArray[int64](4))
	defer a.Close()
	const n = 2000
	var ps []*multiproc.Process
	for range 4 {
		p := multiproc.NewProcess(incrUnderLock, incrJob{V: v, A: a, N: n})
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ps = append(ps, p)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range n {
				if err := v.Do(ctx, func() { v.Store(v.Load() + 1) }); err != nil {
					t.Error(err)
					return
				}
				if err := a.GetLock().Do(ctx, func() { a.Slice()[0]++ }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := multiproc.Result[struct{}](p); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := v.Load(), int64(6*n); got != want {
		t.Errorf("Value = %d, want %d", got, want)
	}
	if got, want := a.Slice()[0], int64(6*n); got != want {
		t.Errorf("Array[0] = %d, want %d", got, want)
	}
}

// TestValueLockPoolTask: a pool task increments under the lock of a Value
// it is passed; the worker's kept copy shares the lock.
func TestValueLockPoolTask(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	v := must(shm.NewValue[int64](0))
	defer v.Close()
	a := must(shm.NewArray[int64](1))
	defer a.Close()
	pool := must(multiproc.NewPool(ctx, 2))
	defer pool.Close()
	var rs []*multiproc.AsyncResult[struct{}]
	for range 20 {
		rs = append(rs, multiproc.ApplyAsync(ctx, pool, incrUnderLock, incrJob{V: v, A: a, N: 100}))
	}
	for _, r := range rs {
		if _, err := r.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if v.Load() != 2000 || a.Slice()[0] != 2000 {
		t.Fatalf("counts %d, %d; want 2000", v.Load(), a.Slice()[0])
	}
}

type holdJob struct {
	V *shm.Value[int64]
}

// lockValueAndHang takes the value's lock, half-updates the value and
// never returns: the test kills it.
var lockValueAndHang = multiproc.Register("shm_test.lock_and_hang", multiproc.NoResult(func(ctx context.Context, j holdJob) error {
	if err := j.V.Lock(ctx); err != nil {
		return err
	}
	j.V.Store(-1) // inconsistent until repaired
	<-ctx.Done()
	return ctx.Err()
}))

// unlockValue tries to release a lock this (child) process does not hold.
var unlockValue = multiproc.Register("shm_test.unlock_value", multiproc.NoResult(func(ctx context.Context, j holdJob) error {
	defer j.V.Close()
	if err := j.V.Unlock(); err != nil {
		return fmt.Errorf("child: %w", err)
	}
	return nil
}))

// TestValueLockOwnerDead: a child dies holding the value's lock; the next
// Lock here gets ErrOwnerDead (holding it), repairs and marks consistent;
// a second death without repair makes the lock not recoverable. A child's
// Unlock of the parent's lock is ErrNotHeld, matched across the boundary.
func TestValueLockOwnerDead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	v := must(shm.NewValue[int64](7))
	defer v.Close()
	if err := v.Unlock(); !errors.Is(err, shm.ErrNotHeld) {
		t.Fatalf("Unlock of a free lock = %v, want ErrNotHeld", err)
	}
	kill := func() {
		t.Helper()
		p := multiproc.NewProcess(lockValueAndHang, holdJob{V: v})
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		testutil.WaitFor(t, processTimeout, func() bool { return v.Load() == -1 }, "the child never took the lock")
		p.Kill()
		p.Join(ctx)
	}
	kill()
	err := v.Lock(ctx)
	if !errors.Is(err, shm.ErrOwnerDead) || !errors.Is(err, multiproc.ErrOwnerDead) {
		t.Fatalf("Lock after the holder's death = %v, want ErrOwnerDead", err)
	}
	v.Store(7) // repaired
	if err := v.MarkConsistent(); err != nil {
		t.Fatal(err)
	}
	pool := must(multiproc.NewPool(ctx, 1))
	defer pool.Close()
	if _, err := multiproc.Apply(ctx, pool, unlockValue, holdJob{V: v}); !errors.Is(err, shm.ErrNotHeld) {
		t.Fatalf("a child's Unlock of the parent's lock = %v, want ErrNotHeld", err)
	}
	if err := v.Unlock(); err != nil {
		t.Fatal(err)
	}
	kill()
	if ok, err := v.TryLock(); !ok || !errors.Is(err, shm.ErrOwnerDead) {
		t.Fatalf("TryLock after the second death = %v, %v", ok, err)
	}
	v.Unlock() // not repaired: not recoverable
	if err := v.Lock(ctx); !errors.Is(err, shm.ErrNotRecoverable) {
		t.Fatalf("Lock = %v, want ErrNotRecoverable", err)
	}
}

// TestValueLockAfterClose: the lock goes with Close.
func TestValueLockAfterClose(t *testing.T) {
	v := must(shm.NewValue[int64](0))
	if err := v.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	v.Close()
	defer func() {
		if recover() == nil {
			t.Fatal("Lock after Close did not panic")
		}
	}()
	v.Lock(context.Background())
}
