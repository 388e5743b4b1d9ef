// Package futex is the project's one implementation of futex-based waiting
// on words in shared memory, and of the robust mutex built on it: the
// public psync package and shm's get_lock both use it, neither importing
// the other.
//
// A word is any 4-byte-aligned uint32 (a [Mutex], an 8-byte-aligned
// uint64) inside a MAP_SHARED mapping (internal/memfd): the kernel keys a
// shared futex by the mapped file and offset, so processes that map the same
// memfd at different addresses wait and wake on the same word.
//
// # Owner death
//
// A [Mutex] word holds its holder's pid and a 32-bit tag of that process's
// start time, set by one 64-bit compare-and-swap: acquiring and releasing an
// uncontended mutex is one CAS each, with no robust-list edit and no system
// call (measured on the project's machine, linking every held lock into a
// kernel robust list costs 46–50 ns per lock+unlock, against 16–19 ns for
// sync.Mutex, which rules it out of the fast path). A waiter that finds the
// word held by another process watches that process: a pidfd, polled by
// Go's netpoller (no thread), wakes the waiter when the holder exits (seen
// ~0.6 ms after a SIGKILL here), and every sleep is also bounded by
// [Chunk], after which the waiter checks /proc/PID/stat (state, start time),
// so a death is seen within that bound even where pidfd_open is not
// available. The pid and start time together make pid reuse harmless: a
// live process with the holder's pid but another start time is a stranger.
// The same check works in cgo and pure-Go binaries alike (glibc owns the
// main thread's robust list in cgo binaries; this design needs none).
//
// What it deliberately does not do: allocate or map memory (internal/memfd),
// lay out public objects (psync, shm), or notice a holder that is alive but
// has exec'd another program (its pid and start time are unchanged).
package futex
