package manager

import (
	"context"
	"testing"
)

// BenchmarkLocalDictSetGet is one Set and one Get through a local manager
// from this process (cmd/mpbench's manager_dict_ops measures it from a
// client process, against CPython).
func BenchmarkLocalDictSetGet(b *testing.B) {
	ctx := context.Background()
	m, err := Start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Shutdown(ctx)
	d, err := NewDict[string, int](ctx, m)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := d.Set(ctx, "k", i); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Get(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}
