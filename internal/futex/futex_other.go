//go:build !linux

package futex

import "time"

// Supported reports whether this platform has futexes (Linux).
const Supported = false

// Wait is unavailable: callers check [Supported] first (psync's
// constructors return errors.ErrUnsupported). It returns at once.
func Wait(addr *uint32, val uint32, timeout time.Duration) {}

// Wake is unavailable; it wakes nobody.
func Wake(addr *uint32, n int) int { return 0 }
