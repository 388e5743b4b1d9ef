package psync_test

import (
	"context"
	"sync"
	"testing"

	"github.com/multiproc-go/multiproc"

	"github.com/multiproc-go/multiproc/psync"
)

// BenchmarkLockUncontended and BenchmarkSyncMutex are the lock_uncontended
// row's two sides (cmd/mpbench runs them in one process).
func BenchmarkLockUncontended(b *testing.B) {
	l, err := psync.NewLock()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for b.Loop() {
		l.Lock(ctx)
		l.Unlock()
	}
}

func BenchmarkSyncMutex(b *testing.B) {
	var mu sync.Mutex
	for b.Loop() {
		mu.Lock()
		//lint:ignore SA2001 the empty critical section is what is measured
		mu.Unlock()
	}
}

// BenchmarkEventPingPong: a round trip between this process and a child
// on two Events (the event_pingpong row).
func BenchmarkEventPingPong(b *testing.B) {
	ping, pong := must(psync.NewEvent()), must(psync.NewEvent())
	defer ping.Close()
	defer pong.Close()
	ctx := context.Background()
	p := multiproc.NewProcess(ponger, pingJob{Ping: ping, Pong: pong, N: 1 << 30})
	if err := p.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { p.Kill(); p.Join(ctx); p.Close() }()
	for b.Loop() {
		ping.Set()
		if err := pong.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		pong.Clear()
	}
}
