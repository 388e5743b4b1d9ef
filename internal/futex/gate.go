package futex

import (
	"context"
	"fmt"
	"time"
)

// Chunk bounds every sleep in the kernel: a waiter re-checks its condition
// (and, for a mutex, whether the holder lives) at least this often, which
// bounds how late it can learn of a death its pidfd watch could not report,
// and how late it sees a cancellation that raced with its going to sleep.
const Chunk = 50 * time.Millisecond

// Gate multiplexes one process's waiters on one word: a goroutine blocked
// in a futex system call holds an OS thread, so 1000 goroutines sleeping in
// the kernel would be 1000 threads (and a pids limit counts threads). Only
// the goroutine that holds the gate sleeps in the kernel; the others wait
// for the gate on a channel, which parks the goroutine and holds no thread.
// That is sound for waiters that are interchangeable (a mutex, a semaphore,
// an event, a barrier): whoever holds the gate re-checks the condition
// before sleeping, so a wake meant for "one waiter of this process" is
// never lost, and the next holder checks again before it sleeps.
//
// The cost: threads in the kernel are one per (process, word) being
// waited on, not one per waiting goroutine.
type Gate struct{ ch chan struct{} }

// NewGate returns an open gate.
func NewGate() *Gate { return &Gate{ch: make(chan struct{}, 1)} }

// Check reports the value to sleep on (done false), or that the wait is
// over (done true) with its result.
type Check func() (val uint32, done bool, err error)

// Wait returns when check reports done, or when ctx ends (an error
// wrapping ctx.Err()). check runs first without the gate; after that only
// the gate holder runs it, and sleeps while *addr equals the value it
// returned, at most [Chunk] at a time. nwait, when not nil, counts the
// processes sleeping on addr (incremented before the first check under the
// gate, decremented after the last), so that wakers can skip the wake
// system call when it is zero.
func (g *Gate) Wait(ctx context.Context, addr *uint32, nwait *uint32, check Check) error {
	if _, done, err := check(); done {
		return err
	}
	select {
	case g.ch <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("psync: wait: %w", ctx.Err())
	}
	defer func() { <-g.ch }()
	if nwait != nil {
		addU32(nwait, 1)
		defer addU32(nwait, ^uint32(0))
	}
	if ctx.Done() != nil {
		// Cancellation wakes every sleeper of addr (they re-check); one
		// that raced ahead of this into the kernel is bounded by Chunk.
		stop := context.AfterFunc(ctx, func() { Wake(addr, 0) })
		defer stop()
	}
	for {
		val, done, err := check()
		if done {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("psync: wait: %w", err)
		}
		Wait(addr, val, Chunk)
	}
}
