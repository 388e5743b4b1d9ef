package psync

// Imports returns how many primitives this process has imported.
func Imports() int64 { return imports.Load() }

// Contended reports whether a waiter sleeps on l (its waiters flag).
func Contended(l *Lock) bool { return l.m.Contended() }
