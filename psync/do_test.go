package psync_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/psync"
)

// TestDoReturnsUnlockError: Do used to drop Unlock's error (defer
// l.Unlock()); an f that unlocks the lock itself must make Do report
// ErrNotHeld.
func TestDoReturnsUnlockError(t *testing.T) {
	ctx := testCtx(t)
	l := must(psync.NewLock())
	defer l.Close()
	r := must(psync.NewRLock())
	defer r.Close()
	c := must(psync.NewCondition(nil))
	defer c.Close()
	b := must(psync.NewBoundedSemaphore(1))
	defer b.Close()
	for _, tc := range []struct {
		name   string
		do     func() error
		unlock func() error
	}{
		{"Lock", func() error { return l.Do(ctx, func() { l.Unlock() }) }, l.Unlock},
		{"RLock", func() error { return r.Do(ctx, func() { r.Unlock() }) }, r.Unlock},
		{"Condition", func() error { return c.Do(ctx, func() { c.Unlock() }) }, c.Unlock},
		{"BoundedSemaphore", func() error { return b.Do(ctx, func() { b.Release() }) }, b.Release},
	} {
		err := tc.do()
		if !errors.Is(err, psync.ErrNotHeld) && !errors.Is(err, psync.ErrOverReleased) {
			t.Errorf("%s: Do with f releasing = %v, want Unlock's error", tc.name, err)
		}
	}
	// And a plain Do still returns nil and leaves the lock free.
	if err := l.Do(ctx, func() {}); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); !errors.Is(err, psync.ErrNotHeld) {
		t.Fatalf("Unlock after Do = %v, want ErrNotHeld", err)
	}
}

// TestDoRepairInsideF: after a holder died, a Do whose f repairs and
// calls MarkConsistent returns ErrOwnerDead and leaves the lock usable.
func TestDoRepairInsideF(t *testing.T) {
	ctx := testCtx(t)
	l := must(psync.NewLock())
	defer l.Close()
	join(t, start(t, multiproc.NewProcess(lockAndExit, l)))
	var markErr error
	if err := l.Do(ctx, func() { markErr = l.MarkConsistent() }); !errors.Is(err, psync.ErrOwnerDead) {
		t.Fatalf("Do after the holder died = %v, want ErrOwnerDead", err)
	}
	if markErr != nil {
		t.Fatal(markErr)
	}
	if err := l.Do(ctx, func() {}); err != nil {
		t.Fatalf("Do after the repair = %v, want nil", err)
	}
}

// TestDoRecover: f learns that the holder died, its nil marks the lock
// consistent; an f that fails after a death leaves the lock not
// recoverable; without a death f is told false and its error is returned.
func TestDoRecover(t *testing.T) {
	ctx := testCtx(t)
	l := must(psync.NewLock())
	defer l.Close()
	errRepair := errors.New("cannot repair")
	var told []bool
	if err := l.DoRecover(ctx, func(dead bool) error { told = append(told, dead); return errRepair }); err != errRepair {
		t.Fatalf("DoRecover with f failing, no death = %v, want f's error", err)
	}
	join(t, start(t, multiproc.NewProcess(lockAndExit, l)))
	if err := l.DoRecover(ctx, func(dead bool) error { told = append(told, dead); return nil }); err != nil {
		t.Fatalf("DoRecover repairing a death = %v, want nil", err)
	}
	if err := l.DoRecover(ctx, func(dead bool) error { told = append(told, dead); return nil }); err != nil {
		t.Fatalf("DoRecover after the repair = %v, want nil", err)
	}
	if want := []bool{false, true, false}; !slices.Equal(told, want) {
		t.Fatalf("f was told %v, want %v", told, want)
	}
	join(t, start(t, multiproc.NewProcess(lockAndExit, l)))
	err := l.DoRecover(ctx, func(dead bool) error { return errRepair })
	if !errors.Is(err, errRepair) || !errors.Is(err, psync.ErrOwnerDead) {
		t.Fatalf("DoRecover failing to repair = %v, want f's error and ErrOwnerDead", err)
	}
	ran := false
	if err := l.DoRecover(ctx, func(bool) error { ran = true; return nil }); !errors.Is(err, psync.ErrNotRecoverable) || ran {
		t.Fatalf("DoRecover after an unrepaired death = %v (f ran: %v), want ErrNotRecoverable", err, ran)
	}
}
