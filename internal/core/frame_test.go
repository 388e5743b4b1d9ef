package core

import (
	"context"
	"sync"
	"testing"

	"github.com/multiproc-go/multiproc/internal/registry"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// TestOversizedFirstTask guards the stub sent for a task too large to
// send: when it is the first use of its function on a worker, the stub
// must still carry the function's name, or the worker reads a corrupt frame.
func TestOversizedFirstTask(t *testing.T) {
	defer func(old int) { maxTaskFrame = old }(maxTaskFrame)
	maxTaskFrame = 64
	e := &registry.Entry{Name: "core.big"}
	var wg sync.WaitGroup
	wg.Add(1)
	task := &Task{Fn: e, Payload: make([]byte, 100), Ctx: context.Background(), Done: func(r Result) {
		if r.Err == nil {
			t.Error("oversized task answered without an error")
		}
		wg.Done()
	}}
	w := &worker{p: &Pool{}, fnRefs: map[*registry.Entry]uint64{}}
	w.appendTask(task, 0)
	wg.Wait()

	kind, payload, n, err := wire.ParseFrame(w.wbuf, 0)
	if err != nil || n != len(w.wbuf) || kind != kindTask {
		t.Fatalf("frame: kind %#x, %d of %d bytes, %v", kind, n, len(w.wbuf), err)
	}
	fns := map[uint64]*registry.Entry{}
	ct, err := parseTask(fns, payload)
	if err != nil {
		t.Fatalf("the worker would reject the stub: %v", err)
	}
	if ct.flags&flagCancelled == 0 || ct.fn.Name != "core.big" || len(ct.payload) != 0 {
		t.Fatalf("stub: flags %#x, fn %q, %d payload bytes", ct.flags, ct.fn.Name, len(ct.payload))
	}
}
