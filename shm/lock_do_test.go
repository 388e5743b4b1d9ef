package shm_test

import (
	"errors"
	"testing"

	"github.com/multiproc-go/multiproc/shm"
)

// TestValueDoReturnsUnlockError: Value.Do and Array.Do used to drop
// Unlock's error; an f that unlocks itself must make Do report ErrNotHeld.
func TestValueDoReturnsUnlockError(t *testing.T) {
	ctx := t.Context()
	v, err := shm.NewValue[int64](0)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Do(ctx, func() { v.Unlock() }); !errors.Is(err, shm.ErrNotHeld) {
		t.Fatalf("Value.Do with f unlocking = %v, want ErrNotHeld", err)
	}
	if err := v.GetLock().Do(ctx, func() { v.Unlock() }); !errors.Is(err, shm.ErrNotHeld) {
		t.Fatalf("Lock.Do with f unlocking = %v, want ErrNotHeld", err)
	}
	if err := v.Do(ctx, func() { v.Store(v.Load() + 1) }); err != nil {
		t.Fatal(err)
	}
	if v.Load() != 1 {
		t.Fatalf("value = %d, want 1", v.Load())
	}
}
