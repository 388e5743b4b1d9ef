package ipc_test

import (
	"context"
	"testing"

	"github.com/multiproc-go/multiproc/ipc"
)

// BenchmarkQueuePutGet: one goroutine, Put then Get: the uncontended cost
// of an item's round through the ring (encode, two lock sections, copy in,
// decode out).
func BenchmarkQueuePutGet(b *testing.B) {
	ctx := context.Background()
	q := newQ[qitem](b)
	v := qitem{1, "hello", 3.14}
	for b.Loop() {
		q.Put(ctx, v)
		q.Get(ctx)
	}
}

// BenchmarkQueueStream: a producer goroutine and a consumer goroutine (the
// in-process shape of queue_small.1to1).
func BenchmarkQueueStream(b *testing.B) {
	ctx := context.Background()
	q := newQ[qitem](b)
	done := make(chan struct{})
	n := b.N
	go func() {
		defer close(done)
		for i := range n {
			q.Put(ctx, qitem{i, "hello", 3.14})
		}
	}()
	b.ResetTimer()
	for range n {
		q.Get(ctx)
	}
	<-done
}

var _ = ipc.ErrClosed
