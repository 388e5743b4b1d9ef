package engine

import "context"

// Awaiter is an optional interface of an Engine: one that can make a
// caller's wait for a task cheaper than waiting for its Settle, by doing the
// work of delivering it on the caller's goroutine (the local engine reads
// the worker's reply itself instead of being woken by the goroutine that
// would). The root calls Await before it waits for a task's outcome; an
// engine without it costs nothing.
type Awaiter interface {
	// Await returns once t is settled or ctx has ended, or at once when it
	// cannot help. It never settles t differently from how it would be
	// settled otherwise; the caller still takes the outcome from Settle.
	// For a task submitted with Awaited set, the submitter must call it
	// once Submit has returned, before it waits in any other way.
	Await(ctx context.Context, t *Task)
}
