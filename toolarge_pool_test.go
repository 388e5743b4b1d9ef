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

// poolLen returns len(s).
var poolLen = multiproc.Register("test.poolLen", multiproc.Plain(func(s string) int { return len(s) }))

// TestImapArgumentTooLarge: Imap's feeder submits chunks itself; an
// argument over MaxMessageSize in a later chunk ends the loop with
// ErrTooLarge naming the function, after no more than the results of the
// chunks before it, and the input is not read further.
func TestImapArgumentTooLarge(t *testing.T) {
	const limit = 4096
	p := newPool(t, 1, multiproc.MaxMessageSize(limit))
	ctx := ctxT(t)
	read := 0
	seq := func(yield func(string) bool) {
		for i := 0; i < 1000; i++ {
			read++
			s := "x"
			if i == 5 {
				s = strings.Repeat("y", 2*limit)
			}
			if !yield(s) {
				return
			}
		}
	}
	var got []int
	var gotErr error
	for v, err := range multiproc.Imap(ctx, p, poolLen, seq) {
		if err != nil {
			gotErr = err
			break
		}
		got = append(got, v)
	}
	if !errors.Is(gotErr, errs.ErrTooLarge) || !strings.Contains(gotErr.Error(), "test.poolLen") {
		t.Fatalf("error %v; want ErrTooLarge naming test.poolLen", gotErr)
	}
	if len(got) > 5 {
		t.Fatalf("yielded %d results; at most the 5 before the large item", len(got))
	}
	for _, v := range got {
		if v != 1 {
			t.Fatalf("results %v; want 1s", got)
		}
	}
	if read > 6 {
		t.Fatalf("read %d items; the input should stop at the large one (6)", read)
	}
}
