package ipc

import (
	"context"
	"sync/atomic"
)

// DieHoldingQueueLock takes q's lock and leaves it held, after doing part
// of a critical section: stage 0 nothing, 1 a claim cut short (the item at
// rd stamped READING, rd not moved), 2 a whole reservation (a WRITING
// record that will never be written). The caller then exits, as a process
// killed inside the lock would.
func DieHoldingQueueLock[T any](q *Queue[T], stage int) error {
	c := q.c
	if err := c.lock(context.Background()); err != nil {
		return err
	}
	switch stage {
	case 1:
		st, _, ow := c.rec(atomic.LoadUint64(c.u64(qOffRd)))
		atomic.StoreUint64(ow, c.self)
		atomic.StoreUint32(st, qReading)
	case 2:
		c.reserve(24)
	}
	return nil
}

// QueueSleepers returns how many processes' Gets sleep on q's items word.
func QueueSleepers[T any](q *Queue[T]) uint32 { return atomic.LoadUint32(q.c.u32(qOffItemWait)) }

// PutBroken adds an item of n bytes whose writer fails, as an encoder that
// broke its size contract would (see putWith).
func PutBroken[T any](ctx context.Context, q *JoinableQueue[T], n int) error {
	return q.c.putWith(ctx, n, true, func([]byte) bool { return false })
}
