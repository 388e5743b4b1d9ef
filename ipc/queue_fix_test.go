package ipc_test

import (
	"bytes"
	"testing"

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
	_ = ipc.ErrClosed
}
