// Package core is the worker-management engine shared by multiproc's Pool
// and Executor. It knows nothing of Go types: a task is a registered
// function and encoded bytes, a result is encoded bytes or an error.
//
// A Pool owns worker processes (re-executed children in process groups of
// their own), a FIFO of queued tasks and, per worker, an ordered list of
// tasks handed to it. Each worker has one reader and one writer goroutine in
// the parent. Tasks are pipelined: a worker holds up to a window of tasks
// sized from the measured task time (about a millisecond of work, at least
// one), so tiny tasks are batched into few system calls while long tasks are
// not held up behind each other.
//
// A worker publishes in a shared page how many tasks it has started and
// finished; when it dies, that tells exactly which task it held (that one
// fails with an error matching ErrWorkerDied, or is retried), which ones it
// finished without reporting (they fail too: they ran, their results are
// lost), and which it never started (they go back to the front of the queue).
//
// What this package deliberately does not do: typed encoding, chunking,
// callbacks and progress display (the root package's job).
package core
