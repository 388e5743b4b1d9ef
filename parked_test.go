package multiproc_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
)

// killAt SIGKILLs its worker on item 500 and returns the others.
var killAt = multiproc.Register("test.kill-at", multiproc.Plain(func(x int) int {
	if x == 500 {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Hour)
	}
	return x
}))

// applies runs n synchronous Applies, which park the workers' streams
// (Apply's fast path, internal/core's direct.go), and checks them.
func applies(t *testing.T, ctx context.Context, p *multiproc.Pool, n int) {
	t.Helper()
	for i := range n {
		if v, err := multiproc.Apply(ctx, p, square, i); err != nil || v != i*i {
			t.Fatalf("Apply(square, %d) = %d, %v", i, v, err)
		}
	}
}

// TestMapDeathAfterApplies: after a run of Applies (streams parked), a Map
// whose worker dies in the middle of a chunk fails with ErrWorkerDied, and
// the pool goes on serving Applies and Maps.
func TestMapDeathAfterApplies(t *testing.T) {
	p := newPool(t, 2)
	ctx := ctxT(t)
	applies(t, ctx, p, 200)
	items := make([]int, 2000)
	for i := range items {
		items[i] = i
	}
	_, err := multiproc.Map(ctx, p, killAt, items, multiproc.Chunksize(100))
	var ee *multiproc.ExitError
	if !errors.Is(err, multiproc.ErrWorkerDied) || !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		t.Fatalf("Map whose worker was killed: %v, want ErrWorkerDied by SIGKILL", err)
	}
	applies(t, ctx, p, 100)
	out, err := multiproc.Map(ctx, p, square, items[:1000], multiproc.Chunksize(100))
	if err != nil || len(out) != 1000 || out[999] != 999*999 {
		t.Fatalf("Map after the death: %d results, %v", len(out), err)
	}
	applies(t, ctx, p, 100)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestResourceApplyAfterApplies: an Apply whose argument carries a
// descriptor, between runs of Applies (streams parked), still passes it
// (it goes through the connection: see internal/core's readerState).
func TestResourceApplyAfterApplies(t *testing.T) {
	p := newPool(t, 2)
	ctx := ctxT(t)
	r, w := pipe(t)
	for round := range 3 {
		applies(t, ctx, p, 50)
		if n, err := multiproc.Apply(ctx, p, writeToFiles, fileJob{Out: w, Note: "x"}); err != nil || n != 1 {
			t.Fatalf("round %d: Apply(writeToFiles) = %d, %v", round, n, err)
		}
	}
	applies(t, ctx, p, 50)
	w.Close()
	var b []byte
	for bytes.Count(b, []byte("x from")) < 3 {
		chunk := make([]byte, 256)
		k, err := r.Read(chunk)
		if err != nil {
			t.Fatalf("read: %v (so far %q)", err, b)
		}
		b = append(b, chunk[:k]...)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}
