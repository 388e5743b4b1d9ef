package ipc_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/wire"
	"github.com/multiproc-go/multiproc/ipc"
)

// Regression tests for the review of the queues (notes/review-queue.md).

// A Queue[any] round-trips strings and []byte (the raw fast path is for a
// static T of string or []byte only), and nothing is lost.
func TestQueueAnyStrings(t *testing.T) {
	ctx := qctx(t)
	q := newQ[any](t)
	in := []any{"hello", []byte("x"), 7, "", 3.5}
	for _, v := range in {
		if err := q.Put(ctx, v); err != nil {
			t.Fatalf("Put(%#v): %v", v, err)
		}
	}
	for _, want := range in {
		got, err := q.Get(ctx)
		if err != nil {
			t.Fatalf("Get (want %#v): %v", want, err)
		}
		if wb, ok := want.([]byte); ok {
			if gb, ok := got.([]byte); !ok || !bytes.Equal(gb, wb) {
				t.Fatalf("Get = %#v, want %#v", got, want)
			}
			continue
		}
		if got != want {
			t.Fatalf("Get = %#v, want %#v", got, want)
		}
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("Len = %d after draining", n)
	}
	// Named string and byte-slice types still take the codec and
	// round-trip.
	type name string
	qn := newQ[name](t)
	if err := qn.Put(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	if v, err := qn.Get(ctx); err != nil || v != "n" {
		t.Fatalf("Queue[name]: %q, %v", v, err)
	}
}

// qMixed has func and chan fields beside a field the codec can carry: gob
// would drop them silently.
type qMixed struct {
	N int
	F func()
	C chan int
}

type qOnlyFunc struct{ F func() }

// Put of a value whose type holds a func or a chan fails with a
// *wire.TypeError naming the field, and adds nothing.
func TestQueuePutFuncChanFields(t *testing.T) {
	ctx := qctx(t)
	check := func(name string, put func() error, n func() int, field string) {
		t.Helper()
		err := put()
		var te *wire.TypeError
		if !errors.As(err, &te) {
			t.Fatalf("%s: Put = %v, want a *wire.TypeError", name, err)
		}
		if !strings.HasSuffix(te.Path, field) {
			t.Fatalf("%s: TypeError path %q, want it to end in %q", name, te.Path, field)
		}
		if n() != 0 {
			t.Fatalf("%s: a failed Put added an item", name)
		}
	}
	qm := newQ[qMixed](t)
	check("qMixed", func() error { return qm.Put(ctx, qMixed{N: 1, F: func() {}, C: make(chan int)}) }, qm.Len, ".F")
	qo := newQ[qOnlyFunc](t)
	check("qOnlyFunc", func() error { return qo.TryPut(qOnlyFunc{F: func() {}}) }, qo.Len, ".F")
	qp := newQ[*qMixed](t)
	check("*qMixed", func() error { return qp.Put(ctx, &qMixed{N: 1}) }, qp.Len, ".F")
	qs := newQ[[]chan int](t)
	check("[]chan int", func() error { return qs.Put(ctx, nil) }, qs.Len, "[]")
}

// A nil pointer crosses as nil (internal/wire encodes a nil top-level
// pointer), and a non-nil one after it still arrives.
func TestQueueNilPointer(t *testing.T) {
	ctx := qctx(t)
	q := newQ[*int](t)
	seven := 7
	if err := q.Put(ctx, nil); err != nil {
		t.Fatalf("Put(nil): %v", err)
	}
	if err := q.Put(ctx, &seven); err != nil {
		t.Fatal(err)
	}
	v, err := q.Get(ctx)
	if err != nil || v != nil {
		t.Fatalf("Get = %v, %v; want nil, nil", v, err)
	}
	v, err = q.Get(ctx)
	if err != nil || v == nil || *v != 7 {
		t.Fatalf("Get = %v, %v; want &7", v, err)
	}
	qs := newQ[*qitem](t)
	if err := qs.Put(ctx, nil); err != nil {
		t.Fatalf("Put(nil *qitem): %v", err)
	}
	if v, err := qs.Get(ctx); err != nil || v != nil {
		t.Fatalf("Get = %v, %v; want nil, nil", v, err)
	}
}

// A cancelled wait says ipc, not the futex layer's "psync: wait", and
// still matches ctx's error.
func TestQueueCancelMessage(t *testing.T) {
	q := qmust(ipc.NewJoinableQueue[int](ipc.MaxItems(1)))
	defer q.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := q.Put(ctx, 1); err != nil {
		t.Fatal(err)
	}
	errs := map[string]error{"Put": q.Put(ctx, 2)}
	q2 := newQ[int](t)
	_, errs["Get"] = q2.Get(ctx)
	errs["Join"] = q.Join(ctx)
	for name, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: %v, want DeadlineExceeded", name, err)
		}
		if strings.Contains(err.Error(), "psync") || !strings.HasPrefix(err.Error(), "ipc: "+name) {
			t.Fatalf("%s: message %q", name, err)
		}
	}
}

// qPoolFds puts into the queue it is given and reports the worker's open
// descriptors and its queue mappings.
var qPoolFds = multiproc.Register("ipc_test.pool_fds", func(ctx context.Context, q *ipc.Queue[int]) ([2]int, error) {
	if err := q.Put(ctx, 1); err != nil {
		return [2]int{}, err
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return [2]int{}, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return [2]int{}, err
	}
	return [2]int{len(fds), bytes.Count(maps, []byte("multiproc-queue"))}, nil
})

// A pool worker drops a queue when its creator releases it: 200 fresh
// queues through one worker leave its descriptors and queue mappings flat
// (they grew by one each before).
func TestQueuePoolWorkerDropsReleased(t *testing.T) {
	ctx := qctx(t)
	p, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var first, last [2]int
	for i := range 200 {
		q := qmust(ipc.NewQueue[int]())
		got, err := multiproc.Apply(ctx, p, qPoolFds, q)
		if err != nil {
			q.Release()
			t.Fatalf("task %d: %v", i, err)
		}
		if v, err := q.TryGet(); err != nil || v != 1 {
			t.Fatalf("task %d: the worker's item: %v, %v", i, v, err)
		}
		if q.Closed() {
			t.Fatalf("task %d: the queue is closed", i)
		}
		if err := q.Release(); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			first = got
		}
		last = got
	}
	// Each task sees its own queue (one mapping) and at most the previous
	// one, whose evict may come after this task; slack for the runtime's
	// own descriptors.
	if last[1] > 2 || last[0] > first[0]+3 {
		t.Fatalf("worker after 200 queues: %d fds, %d queue mappings; after 2: %d fds, %d mappings", last[0], last[1], first[0], first[1])
	}
}
