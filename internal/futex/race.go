//go:build race

package futex

import "sync/atomic"

// HB makes the race detector see the happens-before edges that a word in
// shared memory creates: the detector does not track atomic operations on
// memory outside Go's heap (a memfd mapping), so without it a lock would
// look like no synchronisation at all to -race. Release before the
// operation that publishes (Unlock, Set, Release), Acquire after the one
// that observes (Lock, Wait, Acquire). It costs nothing without -race.
type HB struct{ v atomic.Uint64 }

// Release marks a publishing operation.
func (h *HB) Release() { h.v.Add(1) }

// Acquire marks an observing operation.
func (h *HB) Acquire() { h.v.Load() }
