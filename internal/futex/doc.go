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
// A [Mutex] word holds its holder's identity, a thread or process id and a
// 32-bit tag of its start time, set by one 64-bit compare-and-swap:
// acquiring and releasing an uncontended mutex is one CAS each, with no
// robust-list edit and no system call (measured on the project's machine,
// linking every held lock into a kernel robust list costs 46–50 ns per
// lock+unlock, against 16–19 ns for sync.Mutex, which rules it out of the
// fast path).
//
// Three layers report a dead holder, fastest first:
//
//   - The kernel's robust list ([NewMutex], robust_linux.go). Every word a
//     process has a handle on is linked, once, into the robust list of one
//     dedicated thread of that process, and the words it acquires are
//     stamped with that thread's id. When the process dies the thread
//     exits, and the kernel's walk of its list marks the words it holds
//     (owner-died bit, id cleared) and wakes a waiter, before the dead
//     process's memory is torn down: ~0.1–0.4 ms after a SIGKILL on a
//     quiet machine here, against 1.5–3 ms for a Go process's pidfd.
//   - A pidfd watch: a waiter that finds the word held by another process
//     (or thread) opens a pidfd on it, polled by Go's netpoller (no
//     thread), which FUTEX_WAKEs the word when the holder exits.
//   - Every sleep is bounded by [Chunk], after which the waiter checks
//     /proc/ID/stat (state, start time), so a death is seen within 100 ms
//     even where neither of the above is available.
//
// The id and start time together make id reuse harmless: a live process
// with the holder's id but another start time is a stranger. None of this
// uses glibc's robust list (glibc owns every pthread's list in cgo
// binaries; the dedicated thread's is replaced, and it never locks a glibc
// robust mutex), so cgo and pure-Go binaries behave the same.
//
// What it deliberately does not do: allocate or map memory (internal/memfd),
// lay out public objects (psync, shm), or notice a holder that is alive but
// has exec'd another program (its pid and start time are unchanged).
package futex
