package ipc

import (
	"context"
	"fmt"
)

// ctxLock is a mutex whose Lock gives up when a context ends: a receive
// waiting for another receive, Poll or Wait on the same Conn must still
// honour its own context (a sync.Mutex would make it wait for the holder,
// possibly forever).
type ctxLock chan struct{}

func newCtxLock() ctxLock { return make(ctxLock, 1) }

// lock acquires l, or fails with an error wrapping ctx.Err() (op names
// the caller) when ctx ends first.
func (l ctxLock) lock(ctx context.Context, op string) error {
	select {
	case l <- struct{}{}:
		return nil
	default:
	}
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ipc: %s: %w", op, ctx.Err())
	}
}

// tryLock acquires l if it is free.
func (l ctxLock) tryLock() bool {
	select {
	case l <- struct{}{}:
		return true
	default:
		return false
	}
}

func (l ctxLock) unlock() { <-l }
