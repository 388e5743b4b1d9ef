package multiproc_test

import (
	"context"
	"slices"
	"testing"

	"github.com/multiproc-go/multiproc"
)

// TestAsCompletedDistinct guards AsCompleted against repeats: a future
// given twice is yielded once, as CPython's as_completed does (it takes a
// set of futures).
func TestAsCompletedDistinct(t *testing.T) {
	ex := newExecutor(t, 2)
	ctx := ctxT(t)
	f := multiproc.Submit(ctx, ex, square, 2)
	g := multiproc.Submit(ctx, ex, square, 3)
	seen := map[*multiproc.Future[int]]int{}
	for h, err := range multiproc.AsCompleted(ctx, f, f, g, f) {
		if err != nil {
			t.Fatal(err)
		}
		seen[h]++
	}
	if len(seen) != 2 || seen[f] != 1 || seen[g] != 1 {
		t.Fatalf("yielded f %d times and g %d times (%d futures), want once each", seen[f], seen[g], len(seen))
	}
}

// TestWaitDistinct guards Wait against repeats: each distinct future is in
// done or notDone once, in the order first given.
func TestWaitDistinct(t *testing.T) {
	ex := newExecutor(t, 2)
	ctx := ctxT(t)
	blocker, stop := context.WithCancel(ctx)
	defer stop()
	slow := multiproc.Submit(blocker, ex, block, blockArg{})
	fast := multiproc.Submit(ctx, ex, square, 2)
	other := multiproc.Submit(ctx, ex, square, 3)

	done, notDone, err := multiproc.Wait(ctx, []*multiproc.Future[int]{slow, fast, slow, fast, other}, multiproc.FirstCompleted)
	if err != nil {
		t.Fatal(err)
	}
	if len(done)+len(notDone) != 3 || slices.Contains(done, slow) || !slices.Equal(notDone[:1], []*multiproc.Future[int]{slow}) {
		t.Fatalf("FirstCompleted: got %d done and %d not done (slow first among them: %v), want 3 distinct futures with slow not done",
			len(done), len(notDone), len(notDone) > 0 && notDone[0] == slow)
	}
	stop()
	done, notDone, err = multiproc.Wait(ctx, []*multiproc.Future[int]{fast, slow, fast, other, slow}, multiproc.AllCompleted)
	if want := []*multiproc.Future[int]{fast, slow, other}; err != nil || !slices.Equal(done, want) || len(notDone) != 0 {
		t.Fatalf("AllCompleted: got %d done (in order given: %v), %d not done, %v; want fast, slow, other done once each",
			len(done), slices.Equal(done, want), len(notDone), err)
	}
}
