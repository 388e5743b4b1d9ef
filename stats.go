package multiproc

import (
	"time"

	eng "github.com/multiproc-go/multiproc/internal/engine"
)

// Stats is a snapshot of a pool's (or an executor's) counters. Each task is
// counted once, under its final outcome: Done, Failed, Died, TimedOut or
// Cancelled; Retried counts re-runs, not outcomes. A chunk of a Map counts
// as one task.
type Stats struct {
	Workers   int   // live workers
	Done      int64 // tasks that succeeded
	Items     int64 // items in tasks that succeeded (a chunk holds many)
	Failed    int64 // the function returned an error or panicked
	Died      int64 // lost with their worker (ErrWorkerDied)
	TimedOut  int64 // exceeded their time limit (ErrTimeout)
	Cancelled int64 // cancelled: Future.Cancel, the caller's context, a Shutdown
	Retried   int64 // re-runs after a death or a timeout ([Retries])
	Restarts  int64 // workers started after the pool's start
	Recycled  int64 // workers retired by task count, memory or age
	Queued    int   // tasks waiting for a worker
	// Backoff is the delay before the next worker start while starts back
	// off after repeated deaths without a task (a crash loop); 0 normally.
	Backoff time.Duration
	// Duplicates counts results that arrived for tasks already settled,
	// which a remote backend's at-least-once delivery can cause; always 0
	// for a local pool.
	Duplicates int64
	PerWorker  []WorkerStats
	// PerHost has a remote backend's per-host counts; nil for a local pool.
	PerHost []HostStats
}

// WorkerStats describes one live worker in [Stats].
type WorkerStats struct {
	Name    string
	Pid     int
	Host    string        // the worker's host for a remote backend; empty locally
	Tasks   int64         // tasks answered
	Busy    time.Duration // time spent running tasks, as measured by the worker
	Age     time.Duration // time since the worker started
	Holding int           // tasks handed to it and not yet answered
	RSS     uint64        // resident memory in bytes, read at the Stats call (0 off Linux)
}

// HostStats describes one host of a remote backend in [Stats].
type HostStats struct {
	Host    string
	Workers int
	Done    int64
	Failed  int64
	Died    int64
}

func statsOf(s eng.Stats) Stats {
	out := Stats{
		Workers: s.Workers, Done: s.Done, Items: s.Items, Failed: s.Failed, Died: s.Died,
		TimedOut: s.TimedOut, Cancelled: s.Cancelled, Retried: s.Retried, Restarts: s.Restarts,
		Recycled: s.Recycled, Queued: s.Queued, Backoff: s.Backoff, Duplicates: s.Duplicates,
	}
	for _, w := range s.PerWorker {
		out.PerWorker = append(out.PerWorker, WorkerStats(w))
	}
	for _, h := range s.PerHost {
		out.PerHost = append(out.PerHost, HostStats(h))
	}
	return out
}
