package main

import (
	"context"
	"os"
	"sync"
	"time"
)

// limitChildEnv makes a re-executed mpbench a limit child: main checks it before anything
// else (before multiproc.Main), so the limit rows measure the bare re-exec and socket costs
// and depend on nothing in the library.
const limitChildEnv = "MPBENCH_LIMIT_CHILD"

// The roles a limit child serves on fd 3. Every child first writes one "ready" byte.
const (
	roleHandshake = "handshake" // exit after the ready byte
	rolePingpong  = "pingpong"  // echo each byte until EOF
	roleBandwidth = "bandwidth" // read and discard until EOF, then write one byte
	roleSpin      = "spin"      // burn a CPU until EOF
)

// Work sizes of one sample at scale 1.
const (
	handshakeProcs  = 10
	pingpongTrips   = 20000
	bandwidthWrites = 8192 // of bandwidthChunk: 512 MiB
	bandwidthChunk  = 64 << 10
	memcpySize      = 64 << 20
	memcpyCopies    = 4
)

// limitChildMain serves a limit child's role and exits when $MPBENCH_LIMIT_CHILD is set; it
// returns at once otherwise. It must be the first call in main (and in TestMain).
func limitChildMain() {
	role, ok := os.LookupEnv(limitChildEnv)
	if !ok {
		return
	}
	os.Exit(serveLimitChild(role))
}

func init() {
	register(
		Row{
			Name: "limit.reexec_handshake_first_byte", Unit: "ms/proc",
			Doc: "re-exec of mpbench with a socketpair end as fd 3: Start -> first byte read by the parent",
			Go: func(ctx context.Context, env *Env) (float64, error) {
				return reexecHandshake(ctx, env, false)
			},
		},
		Row{
			Name: "limit.reexec_handshake_and_wait", Unit: "ms/proc",
			Doc: "same as limit.reexec_handshake_first_byte, then Wait for the child's exit",
			Go: func(ctx context.Context, env *Env) (float64, error) {
				return reexecHandshake(ctx, env, true)
			},
		},
		Row{
			Name: "limit.socketpair_pingpong", Unit: "rt/s", HigherIsBetter: true,
			Doc: "1-byte socketpair ping-pong with a re-exec'd child, raw blocking syscall.Read/Write on both sides",
			Go:  socketpairPingpong,
		},
		Row{
			Name: "limit.unix_bandwidth", Unit: "GB/s", HigherIsBetter: true,
			Doc: "unix socketpair bandwidth, parent -> re-exec'd child, 64 KiB raw writes",
			Go:  unixBandwidth,
		},
		Row{
			Name: "limit.memcpy", Unit: "GB/s", HigherIsBetter: true,
			Doc: "copy of 64 MiB between two pre-faulted Go slices, 1 goroutine",
			Go:  memcpy,
		},
	)
}

// memcpyBufs are allocated and faulted in once per run: a first-touch page fault costs
// ~13 µs on this machine, which would otherwise dwarf the copy itself.
var memcpyBufs struct {
	once     sync.Once
	src, dst []byte
}

// memcpy measures copy() of 64 MiB, several times per sample, in GB/s (1e9 bytes/s).
func memcpy(ctx context.Context, env *Env) (float64, error) {
	memcpyBufs.once.Do(func() {
		memcpyBufs.src = make([]byte, memcpySize)
		memcpyBufs.dst = make([]byte, memcpySize)
		for i := range memcpyBufs.src {
			memcpyBufs.src[i] = byte(i)
		}
		copy(memcpyBufs.dst, memcpyBufs.src)
	})
	src, dst := memcpyBufs.src, memcpyBufs.dst
	n := env.N(memcpyCopies)
	start := time.Now()
	for range n {
		copy(dst, src)
	}
	elapsed := time.Since(start)
	return float64(n) * memcpySize / elapsed.Seconds() / 1e9, ctx.Err()
}
