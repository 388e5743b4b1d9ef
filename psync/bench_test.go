package psync_test

import (
	"context"
	"sync"
	"testing"

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
		mu.Unlock()
	}
}
