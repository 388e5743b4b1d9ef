package psync

import "sync/atomic"

// Imports returns how many primitives this process has imported.
func Imports() int64 { return imports.Load() }

// Contended reports whether a waiter sleeps on l (its waiters flag).
func Contended(l *Lock) bool { return l.m.Contended() }

// CondWaiters counts a Condition's waiting slots.
func CondWaiters(c *Condition) int {
	n := 0
	for i := range MaxConditionWaiters {
		if st, _, _ := c.slot(i); atomic.LoadUint32(st) == slotWaiting {
			n++
		}
	}
	return n
}

// Parked counts objects whose release waits for their lock to be free.
func Parked() int { return parkedCount() }
