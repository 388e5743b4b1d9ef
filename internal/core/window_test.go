package core

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/wire"
)

var (
	lenFn   = mustAdd("core.test.len", func(_ context.Context, b []byte) (int, error) { return len(b), nil })
	blockFn = mustAdd("core.test.block", func(ctx context.Context, _ int) (int, error) {
		<-ctx.Done()
		return 0, nil
	})
)

// TestAheadBytes: however large the task-count window, a worker is handed
// at most aheadBytesMax payload bytes (bar one task of any size), so a large
// Map does not make a fresh worker take half its chunks at once. The
// worker here runs a task that blocks, so what it was handed stays assigned
// while the test looks; once that task is cancelled, every task still
// completes with its own result.
func TestAheadBytes(t *testing.T) {
	p := newTestPool(t, Config{})
	// Tiny tasks teach the pool that tasks are fast: its window opens wide.
	for range 32 {
		workerPid(t, p)
	}
	p.mu.Lock()
	window := p.windowLocked()
	p.mu.Unlock()
	const n, size = 12, 200 << 10
	if window <= n {
		t.Fatalf("window %d: the test needs one larger than %d tasks to mean anything", window, n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan Result, n)
	done := func(r Result) {
		r.Data = append([]byte(nil), r.Data...)
		results <- r
	}
	blocked := make(chan Result, 1)
	tasks := []*Task{{Fn: blockFn, Payload: encode(t, 0), Ctx: ctx, Items: 1, Done: func(r Result) { blocked <- r }}}
	for i := range n {
		b := make([]byte, size+i)
		tasks = append(tasks, &Task{Fn: lenFn, Payload: encode(t, b), Ctx: context.Background(), Items: 1, Done: done})
	}
	if err := p.Submit(tasks...); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	w := p.workers[0]
	held, bytes := len(w.assigned), w.aheadBytes
	sum := 0
	for _, a := range w.assigned {
		sum += len(a.Payload)
	}
	p.mu.Unlock()
	// The blocker and two 200 KiB tasks fit in 512 KiB; a third does not.
	if held != 3 || bytes != sum || bytes > aheadBytesMax {
		t.Fatalf("worker holds %d tasks, %d payload bytes (counted %d); want 3 tasks within %d bytes",
			held, sum, bytes, aheadBytesMax)
	}

	cancel()
	select {
	case r := <-blocked:
		if !errors.Is(r.Err, context.Canceled) {
			t.Fatalf("blocking task: %v, want it cancelled", r.Err)
		}
	case <-time.After(deadline):
		t.Fatalf("the blocking task was not cancelled within %v", deadline)
	}
	lens := map[int]bool{}
	for range n {
		select {
		case r := <-results:
			if r.Err != nil {
				t.Fatalf("task failed: %v", r.Err)
			}
			v, err := wire.For[int]().Decode(r.Data)
			if err != nil {
				t.Fatal(err)
			}
			lens[v] = true
		case <-time.After(deadline):
			t.Fatalf("%d results within %v, want %d", len(lens), deadline, n)
		}
	}
	for i := range n {
		if !lens[size+i] {
			t.Fatalf("no result for the task of %d bytes", size+i)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(w.assigned) != 0 || w.aheadBytes != 0 {
		t.Fatalf("after all results: %d tasks, %d bytes still counted", len(w.assigned), w.aheadBytes)
	}
}
