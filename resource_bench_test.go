package multiproc_test

import (
	"context"
	"os"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// benchRes is a kept resource (it has an ID) backed by one descriptor, as
// a shared Value is: what resource_pass measures, without shm.
type benchRes struct {
	id uint64
	f  *os.File
}

func (r *benchRes) NeedsDescriptors() bool { return r.f != nil }
func (r *benchRes) ExportResource(x *wire.Exported) error {
	x.ID, x.Files = r.id, []*os.File{r.f}
	return nil
}
func (r *benchRes) ImportResource(_ []byte, fs []*os.File) error { r.f = fs[0]; return nil }
func (r *benchRes) Close() error                                 { return r.f.Close() }

var (
	benchIdent   = multiproc.Register("bench.ident", multiproc.Plain(func(x int) int { return x }))
	benchWithRes = multiproc.Register("bench.with-res", multiproc.Plain(func(r *benchRes) int { return int(r.id) }))
)

func benchApplyAsync[In any](b *testing.B, f multiproc.Func[In, int], arg In) {
	ctx := context.Background()
	p, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	const n = 10000
	rs := make([]*multiproc.AsyncResult[int], n)
	b.ResetTimer()
	for b.Loop() {
		for i := range rs {
			rs[i] = multiproc.ApplyAsync(ctx, p, f, arg)
		}
		for _, r := range rs {
			if _, err := r.Get(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkApplyAsyncPlain and BenchmarkApplyAsyncResource compare 10k
// ApplyAsync calls with an int argument and with a kept resource: the
// resource path's cost per task (issue 9's resource_pass bar is ≥ 0.8x).
func BenchmarkApplyAsyncPlain(b *testing.B) { benchApplyAsync(b, benchIdent, 1) }

func BenchmarkApplyAsyncResource(b *testing.B) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	benchApplyAsync(b, benchWithRes, &benchRes{id: wire.NewID(), f: f})
}
