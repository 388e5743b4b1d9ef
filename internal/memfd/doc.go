// Package memfd is the project's one implementation of shared memory backed
// by a file: it creates anonymous segments, reserves their backing store,
// and maps and unmaps them. The pool's shared page (internal/shmword), the
// public shm package and, later, the futex-based locks all build on it, so
// that the kernel quirks below are handled in one place.
//
// An anonymous segment is a memfd on Linux: it has no name in any file
// system, so it cannot leak; the kernel frees it with its last descriptor or
// mapping. Its size is sealed once allocated (F_SEAL_SHRINK, F_SEAL_GROW), so
// no process holding the descriptor can truncate it under the others'
// mappings. Elsewhere it is a temporary file unlinked at once, which
// likewise disappears with its last user, but cannot be sealed.
//
// The backing store is reserved when a segment is created ([Allocate]):
// measured on the project's machine, a full /dev/shm lets ftruncate succeed
// and then kills the process with SIGBUS on its first write to the mapping,
// while fallocate fails with ENOSPC up front, which callers get as an error.
//
// Errors are the standard library's *os.SyscallError and *fs.PathError
// values (they match syscall errnos with errors.Is), without a package
// prefix: callers wrap them with their own ("shm: ...", "multiproc: ...").
//
// What this package deliberately does not do: name segments, sweep stale
// ones, lay anything out inside a mapping, or synchronise access. Those are
// its callers' jobs.
package memfd
