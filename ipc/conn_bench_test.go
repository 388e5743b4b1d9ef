package ipc_test

import (
	"context"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/ipc"
)

func benchBandwidth(b *testing.B, size int) {
	ctx := context.Background()
	x, y, err := ipc.Pipe(true)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	defer y.Close()
	msg := make([]byte, size)
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = 1
	}
	done := make(chan error, 1)
	go func() {
		for range b.N {
			if _, err := y.RecvBytesInto(ctx, buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if err := x.SendBytes(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(ipc.Detaches()), "detaches")
}

func BenchmarkBandwidth1MiB(b *testing.B)  { benchBandwidth(b, 1<<20) }
func BenchmarkBandwidth64MiB(b *testing.B) { benchBandwidth(b, 64<<20) }

type benchItem struct {
	I int
	S string
	F float64
}

func BenchmarkSmallOneway(b *testing.B) {
	ctx := context.Background()
	x, y, _ := ipc.Pipe(true)
	defer x.Close()
	defer y.Close()
	done := make(chan error, 1)
	go func() {
		for range b.N {
			if _, err := ipc.Recv[benchItem](ctx, y); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range b.N {
		ipc.Send(ctx, x, benchItem{i, "hello", 3.14})
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

type sinkJob struct {
	C    *ipc.Conn
	N    int
	Size int
}

var bytesSink = multiproc.Register("ipctest.bytes_sink", func(ctx context.Context, j sinkJob) (int, error) {
	defer j.C.Close()
	// One untimed message into buf first: the first socket copy over a
	// new process's buffers is several times slower than the later ones
	// (see cmd/mpbench's pipe_bandwidth rows).
	buf := make([]byte, j.Size)
	if _, err := j.C.RecvBytesInto(ctx, buf); err != nil {
		return 0, err
	}
	j.C.SendBytes(ctx, []byte("ready"))
	for range j.N {
		if _, err := j.C.RecvBytesInto(ctx, buf); err != nil {
			return 0, err
		}
	}
	return 0, j.C.SendBytes(ctx, []byte("done"))
})

func benchProcessBandwidth(b *testing.B, size int) {
	ctx := context.Background()
	x, y, _ := ipc.Pipe(true)
	defer x.Close()
	p := multiproc.NewProcess(bytesSink, sinkJob{y, b.N, size})
	if err := p.Start(ctx); err != nil {
		b.Fatal(err)
	}
	y.Close()
	defer p.Join(ctx)
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = 1
	}
	if err := x.SendBytes(ctx, msg); err != nil {
		b.Fatal(err)
	}
	x.RecvBytes(ctx)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if err := x.SendBytes(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := x.RecvBytes(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(ipc.Detaches()), "detaches")
}

func BenchmarkProcessBandwidth1MiB(b *testing.B)  { benchProcessBandwidth(b, 1<<20) }
func BenchmarkProcessBandwidth64MiB(b *testing.B) { benchProcessBandwidth(b, 64<<20) }

var echoOnce = multiproc.Register("ipctest.bench_echo", func(ctx context.Context, c *ipc.Conn) (int, error) {
	defer c.Close()
	for {
		v, err := ipc.Recv[benchItem](ctx, c)
		if err != nil {
			return 0, nil
		}
		if err := ipc.Send(ctx, c, v); err != nil {
			return 0, err
		}
	}
})

func BenchmarkProcessRoundTrip(b *testing.B) {
	ctx := context.Background()
	x, y, _ := ipc.Pipe(true)
	p := multiproc.NewProcess(echoOnce, y)
	if err := p.Start(ctx); err != nil {
		b.Fatal(err)
	}
	y.Close()
	defer p.Join(ctx)
	defer x.Close()
	b.ResetTimer()
	for i := range b.N {
		ipc.Send(ctx, x, benchItem{i, "hello", 3.14})
		if _, err := ipc.Recv[benchItem](ctx, x); err != nil {
			b.Fatal(err)
		}
	}
}
