package manager

import (
	"context"
	"errors"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/wire"
)

var poolIncr = multiproc.Register("manager_test.poolIncr", func(ctx context.Context, a struct {
	D *Dict[string, int]
	K string
}) (int, error) {
	return a.D.Incr(ctx, a.K, 1)
})

// TestProxyToPoolTasks passes one proxy to many pool tasks: every
// increment counts, and the workers keep one connection each.
func TestProxyToPoolTasks(t *testing.T) {
	ctx := testCtx(t)
	m := startManager(t)
	d, _ := NewDict[string, int](ctx, m)
	p, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	type arg = struct {
		D *Dict[string, int]
		K string
	}
	var rs []*multiproc.AsyncResult[int]
	for range 50 {
		rs = append(rs, multiproc.ApplyAsync(ctx, p, poolIncr, arg{d, "n"}))
	}
	for _, r := range rs {
		if _, err := r.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := d.Get(ctx, "n"); err != nil || n != 50 {
		t.Fatalf("n = %d, %v", n, err)
	}
}

// TestProxyNeedsDescriptors: a transport that carries bytes only (the
// cluster) refuses a proxy with ErrNotTransferable, so the key never
// travels in clear.
func TestProxyNeedsDescriptors(t *testing.T) {
	ms := newMemServer(t, t.Name(), true)
	ctx := testCtx(t)
	m := ms.client(t, t.Name())
	q, _ := NewQueue[int](ctx, m, 0)
	type task struct{ Q *Queue[int] }
	out := &wire.Outgoing{NoDescriptors: true}
	_, err := wire.AppendOut(wire.For[task](), nil, task{q}, out)
	if !errors.Is(err, ErrNotTransferable) {
		t.Fatalf("encoding a proxy for a bytes-only transport: %v", err)
	}
	// With descriptors: the state carries no key, the memfd does.
	var out2 wire.Outgoing
	b, err := wire.AppendOut(wire.For[task](), nil, task{q}, &out2)
	if err != nil {
		t.Fatal(err)
	}
	defer out2.Close()
	if len(out2.Res) != 1 || len(out2.Res[0].Files) != 1 {
		t.Fatalf("resources %+v", out2.Res)
	}
	if containsKey(b, m.c.key) {
		t.Fatal("the encoding carries the key")
	}
}

func containsKey(b, key []byte) bool {
	for i := 0; i+len(key) <= len(b); i++ {
		if string(b[i:i+len(key)]) == string(key) {
			return true
		}
	}
	return false
}
