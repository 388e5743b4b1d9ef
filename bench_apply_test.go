package multiproc_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
)

// BenchmarkApply measures sequential Apply round trips on a ready Pool(2),
// the apply_latency row of cmd/mpbench. Besides the time it reports the CPU
// time of this process (parent-us/op) and of the workers (workers-us/op)
// per call, which a loaded machine disturbs less than the wall time.
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	p, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if _, err := multiproc.Apply(ctx, p, square, 1); err != nil {
		b.Fatal(err)
	}
	p0, w0 := cpuTimes(b, p)
	for i := 0; b.Loop(); i++ {
		if v, err := multiproc.Apply(ctx, p, square, i); err != nil || v != i*i {
			b.Fatalf("Apply(square, %d) = %d, %v", i, v, err)
		}
	}
	p1, w1 := cpuTimes(b, p)
	b.ReportMetric(float64((p1-p0).Microseconds())/float64(b.N), "parent-us/op")
	b.ReportMetric(float64((w1-w0).Microseconds())/float64(b.N), "workers-us/op")
}

// BenchmarkMap measures Map(square) over 1M ints on a ready Pool(2), the
// pool_map_trivial rows of cmd/mpbench (Chunksize 0 is Python's default).
// The heap is given back to the kernel before each map, as between
// mpbench's samples, so first-touch page faults are in the measurement.
// Besides the time it reports the CPU time of this process (parent-ms/op)
// and of the workers (workers-ms/op) per map, which a loaded machine
// disturbs less than the wall time.
func BenchmarkMap(b *testing.B) {
	for _, cs := range []int{0, 10000} {
		b.Run(fmt.Sprintf("chunk=%d", cs), func(b *testing.B) {
			ctx := context.Background()
			p, err := multiproc.NewPool(ctx, 2)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			var opts []multiproc.CallOption
			if cs > 0 {
				opts = append(opts, multiproc.Chunksize(cs))
			}
			const n = 1_000_000
			var parent, workers time.Duration
			for range b.N {
				b.StopTimer()
				debug.FreeOSMemory()
				p0, w0 := cpuTimes(b, p)
				b.StartTimer()
				items := make([]int, n)
				for i := range items {
					items[i] = i
				}
				out, err := multiproc.Map(ctx, p, square, items, opts...)
				if last := n - 1; err != nil || len(out) != n || out[n-1] != last*last {
					b.Fatalf("Map: %d results, %v", len(out), err)
				}
				b.StopTimer()
				p1, w1 := cpuTimes(b, p)
				parent += p1 - p0
				workers += w1 - w0
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
			b.ReportMetric(parent.Seconds()*1e3/float64(b.N), "parent-ms/op")
			b.ReportMetric(workers.Seconds()*1e3/float64(b.N), "workers-ms/op")
		})
	}
}

// cpuTimes returns the CPU time used so far by this process and by p's
// workers (from /proc; zero where it cannot be read).
func cpuTimes(b *testing.B, p *multiproc.Pool) (self, workers time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for _, w := range p.Stats().PerWorker {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", w.Pid))
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: utime and
		// stime are the 12th and 13th, in clock ticks (100 Hz here).
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
		if len(f) > 12 {
			u, _ := strconv.Atoi(f[11])
			s, _ := strconv.Atoi(f[12])
			workers += time.Duration(u+s) * 10 * time.Millisecond
		}
	}
	return self, workers
}

// BenchmarkImap measures Imap(square) over 1M ints with Chunksize(1000) on
// a ready Executor(2), the executor_map row of cmd/mpbench.
func BenchmarkImap(b *testing.B) {
	ctx := context.Background()
	x, err := multiproc.NewExecutor(ctx, 2)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Shutdown(true, true)
	const n = 1_000_000
	seq := func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
	for b.Loop() {
		i := 0
		for v, err := range multiproc.Imap(ctx, x, square, seq, multiproc.Chunksize(1000)) {
			if err != nil || v != i*i {
				b.Fatalf("Imap item %d: %d, %v", i, v, err)
			}
			i++
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
}
