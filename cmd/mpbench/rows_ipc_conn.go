package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/ipc"
)

// Work sizes of one sample at scale 1, the same as bench/python/ipc_conn_rows.py's.
const (
	pipeOnewayItems = 100_000
	pipeRoundTrips  = 20_000
	pipeBandwidth   = 256 << 20 // bytes per sample
)

// pipeItem is the Go counterpart of CPython's (i, 'hello', 3.14): the small-record codec's
// struct {int, string, float64}.
type pipeItem struct {
	I int
	S string
	F float64
}

func init() {
	register(
		Row{
			Name: "pipe_small_oneway", Unit: "msgs/s", HigherIsBetter: true,
			Doc: "ipc.Send of 100k {int, string, float64} items over a Pipe to a child that " +
				"Recvs them all (CPython: Pipe().send of (i, 'hello', 3.14)); timed from the child's ready to its done",
			Go:     pipeSmallOneway,
			Python: PyRow{Script: "ipc_conn_rows.py", Name: "pipe_small_oneway"},
		},
		Row{
			Name: "pipe_roundtrip", Unit: "rt/s", HigherIsBetter: true,
			Doc:    "ping-pong of one {int, string, float64} item over a Pipe with a child (Send, Recv)",
			Go:     pipeRoundtrip,
			Python: PyRow{Script: "ipc_conn_rows.py", Name: "pipe_roundtrip"},
			Limit:  "limit.socketpair_pingpong",
			Note: "pipe_roundtrip's bar: at most 2x limit.socketpair_pingpong's time per round trip, " +
				"i.e. a rate of at least half of it.",
		},
		Row{
			Name: "pipe_bandwidth.1MiB", Unit: "GB/s", HigherIsBetter: true,
			Doc: "SendBytes of 1 MiB messages over a Pipe, RecvBytesInto one reused buffer in the child " +
				"(after one untimed message into it: the steady state)",
			Go:     func(ctx context.Context, env *Env) (float64, error) { return pipeBandwidthRow(ctx, env, 1<<20) },
			Python: PyRow{Script: "ipc_conn_rows.py", Name: "pipe_bandwidth.1MiB"},
			Limit:  "limit.unix_bandwidth",
		},
		Row{
			Name: "pipe_bandwidth.64MiB", Unit: "GB/s", HigherIsBetter: true,
			Doc:    "same as pipe_bandwidth.1MiB with 64 MiB messages",
			Go:     func(ctx context.Context, env *Env) (float64, error) { return pipeBandwidthRow(ctx, env, 64<<20) },
			Python: PyRow{Script: "ipc_conn_rows.py", Name: "pipe_bandwidth.64MiB"},
			Limit:  "limit.unix_bandwidth",
			Note: "pipe_bandwidth's bar: at least 70% of limit.unix_bandwidth (64 KiB raw writes) in " +
				"the same run.",
		},
	)
}

// pipeJob tells pipePeer what to do with its end.
type pipeJob struct {
	C    *ipc.Conn
	Mode string // "sink", "echo", "bytes"
	N    int
	Size int
}

// pipePeer is the child of the pipe rows: it says "ready", serves its mode, says "done".
var pipePeer = multiproc.Register("mpbench.pipe_peer", multiproc.NoResult(func(ctx context.Context, j pipeJob) error {
	c := j.C
	defer c.Close()
	var buf []byte
	if j.Mode == "bytes" {
		// One untimed message first, received into buf before the ready:
		// the first pass of a socket copy over a process's fresh buffers
		// is several times slower than the later ones on this machine
		// (raw syscalls, one 64 MiB message between two new processes:
		// ~0.5 GB/s; the same after one untimed message: ~4.5 GB/s), and a
		// first touch costs ~13 µs a page. The row measures the reused
		// buffer's steady state, as limit.unix_bandwidth does.
		buf = make([]byte, j.Size)
		n, err := c.RecvBytesInto(ctx, buf)
		if err != nil {
			return err
		}
		if n != j.Size {
			return fmt.Errorf("warm-up message of %d bytes, want %d", n, j.Size)
		}
	}
	if err := c.SendBytes(ctx, []byte("ready")); err != nil {
		return err
	}
	switch j.Mode {
	case "sink":
		for i := range j.N {
			v, err := ipc.Recv[pipeItem](ctx, c)
			if err != nil {
				return err
			}
			if v.I != i {
				return fmt.Errorf("item %d arrived as %d", i, v.I)
			}
		}
	case "echo":
		for range j.N {
			v, err := ipc.Recv[pipeItem](ctx, c)
			if err != nil {
				return err
			}
			if err := ipc.Send(ctx, c, v); err != nil {
				return err
			}
		}
	case "bytes":
		for range j.N {
			n, err := c.RecvBytesInto(ctx, buf)
			if err != nil {
				return err
			}
			if n != j.Size {
				return fmt.Errorf("message of %d bytes, want %d", n, j.Size)
			}
		}
	default:
		return errors.New("unknown mode " + j.Mode)
	}
	return c.SendBytes(ctx, []byte("done"))
}))

// startPeer starts pipePeer on one end of a new Pipe, sends it warm (mode "bytes": its
// untimed warm-up message) and waits for its ready: the timed part of a row starts after the
// child runs.
func startPeer(ctx context.Context, j pipeJob, warm []byte) (*ipc.Conn, *multiproc.Process, error) {
	a, b, err := ipc.Pipe(true)
	if err != nil {
		return nil, nil, err
	}
	j.C = b
	p := multiproc.NewProcess(pipePeer, j)
	err = p.Start(ctx)
	b.Close()
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	if warm != nil {
		if err := a.SendBytes(ctx, warm); err != nil {
			a.Close()
			p.Kill()
			p.Join(context.Background())
			return nil, nil, fmt.Errorf("pipe peer: warm-up message: %w", err)
		}
	}
	if m, err := a.RecvBytes(ctx); err != nil || string(m) != "ready" {
		a.Close()
		p.Kill()
		p.Join(context.Background())
		return nil, nil, fmt.Errorf("pipe peer: %q, %w", m, err)
	}
	return a, p, nil
}

// finish waits for the peer's done (returning when it came), closes and joins.
func finish(ctx context.Context, a *ipc.Conn, p *multiproc.Process) (time.Time, error) {
	m, err := a.RecvBytes(ctx)
	at := time.Now()
	if err == nil && string(m) != "done" {
		err = fmt.Errorf("pipe peer said %q", m)
	}
	a.Close()
	if err != nil {
		p.Kill()
	}
	if jerr := p.Join(ctx); err == nil {
		err = jerr
	}
	if _, rerr := multiproc.Result[struct{}](p); err == nil {
		err = rerr
	}
	return at, err
}

func pipeSmallOneway(ctx context.Context, env *Env) (float64, error) {
	n := env.N(pipeOnewayItems)
	a, p, err := startPeer(ctx, pipeJob{Mode: "sink", N: n}, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for i := range n {
		if err := ipc.Send(ctx, a, pipeItem{i, "hello", 3.14}); err != nil {
			a.Close()
			p.Kill()
			p.Join(context.Background())
			return 0, err
		}
	}
	end, err := finish(ctx, a, p)
	if err != nil {
		return 0, err
	}
	return float64(n) / end.Sub(start).Seconds(), nil
}

func pipeRoundtrip(ctx context.Context, env *Env) (float64, error) {
	n := env.N(pipeRoundTrips)
	a, p, err := startPeer(ctx, pipeJob{Mode: "echo", N: n}, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for i := range n {
		err := ipc.Send(ctx, a, pipeItem{i, "hello", 3.14})
		var v pipeItem
		if err == nil {
			v, err = ipc.Recv[pipeItem](ctx, a)
		}
		if err == nil && v.I != i {
			err = fmt.Errorf("round trip %d answered %d", i, v.I)
		}
		if err != nil {
			a.Close()
			p.Kill()
			p.Join(context.Background())
			return 0, err
		}
	}
	elapsed := time.Since(start)
	if _, err := finish(ctx, a, p); err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}

// pipeBuf is the sender's message, allocated and faulted in once per size.
var pipeBuf = map[int][]byte{}

func pipeBandwidthRow(ctx context.Context, env *Env, size int) (float64, error) {
	n := max(1, env.N(pipeBandwidth/size))
	buf := pipeBuf[size]
	if buf == nil {
		buf = make([]byte, size)
		for i := range buf {
			buf[i] = byte(i)
		}
		pipeBuf[size] = buf
	}
	a, p, err := startPeer(ctx, pipeJob{Mode: "bytes", N: n, Size: size}, buf)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for range n {
		if err := a.SendBytes(ctx, buf); err != nil {
			a.Close()
			p.Kill()
			p.Join(context.Background())
			return 0, err
		}
	}
	end, err := finish(ctx, a, p)
	if err != nil {
		return 0, err
	}
	return float64(n) * float64(size) / end.Sub(start).Seconds() / 1e9, nil
}
