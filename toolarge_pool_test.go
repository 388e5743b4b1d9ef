package multiproc_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/errs"
)

// poolBigResult returns n bytes.
var poolBigResult = multiproc.Register("test.poolBigResult", multiproc.Plain(func(n int) []byte { return make([]byte, n) }))

// TestResultTooLarge guards the worker's size check: a result over
// MaxMessageSize, alone or as a Map chunk's results, used to make the
// worker exit (code 2, an ErrWorkerDied for the caller and a replaced
// worker). It must fail the task with ErrTooLarge, say whether it was a
// chunk, and leave the worker serving.
func TestResultTooLarge(t *testing.T) {
	const limit = 4096
	p := newPool(t, 1, multiproc.MaxMessageSize(limit))
	ctx := ctxT(t)
	pid0 := p.Stats().PerWorker[0].Pid
	check := func(what string, err error, chunk bool) {
		t.Helper()
		if !errors.Is(err, errs.ErrTooLarge) {
			t.Fatalf("%s: got %v, want ErrTooLarge", what, err)
		}
		if got := strings.Contains(err.Error(), "Map chunk"); got != chunk || !strings.Contains(err.Error(), "test.poolBigResult") {
			t.Fatalf("%s: error %q should name the function and say (%v) it was a Map chunk", what, err, chunk)
		}
		if v, err := multiproc.Apply(ctx, p, pid, 0); err != nil || v != pid0 {
			t.Fatalf("%s: next task ran in %d (%v), want the same worker %d", what, v, err, pid0)
		}
	}
	if b, err := multiproc.Apply(ctx, p, poolBigResult, limit-64); err != nil || len(b) != limit-64 {
		t.Fatalf("result under the limit: %d bytes, %v", len(b), err)
	}
	_, err := multiproc.Apply(ctx, p, poolBigResult, limit+1)
	check("Apply", err, false)
	_, err = multiproc.Map(ctx, p, poolBigResult, []int{limit / 2, limit / 2, 1}, multiproc.Chunksize(3))
	check("Map", err, true)
	if s := p.Stats(); s.Died != 0 || s.Restarts != 0 {
		t.Fatalf("Died %d, Restarts %d; want 0 (the worker must live)", s.Died, s.Restarts)
	}
}
