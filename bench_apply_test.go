package multiproc_test

import (
	"context"
	"testing"

	"github.com/multiproc-go/multiproc"
)

// BenchmarkApply measures sequential Apply round trips on a ready Pool(2),
// the apply_latency row of cmd/mpbench.
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	p, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for i := 0; b.Loop(); i++ {
		if v, err := multiproc.Apply(ctx, p, square, i); err != nil || v != i*i {
			b.Fatalf("Apply(square, %d) = %d, %v", i, v, err)
		}
	}
}
