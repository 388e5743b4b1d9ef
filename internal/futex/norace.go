//go:build !race

package futex

// HB makes the race detector see the happens-before edges of shared-memory
// words (see the race build's file); without -race it is empty.
type HB struct{}

// Release marks a publishing operation.
func (h *HB) Release() {}

// Acquire marks an observing operation.
func (h *HB) Acquire() {}
