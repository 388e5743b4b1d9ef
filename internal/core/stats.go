package core

import "time"

// Stats is a snapshot of a pool's counters.
type Stats struct {
	Workers   int   // live workers
	Done      int64 // tasks (chunks count once) that succeeded
	Items     int64 // items in succeeded tasks
	Failed    int64 // tasks whose function returned an error or panicked
	Died      int64 // tasks lost to a worker's death
	TimedOut  int64 // tasks that exceeded their time limit
	Cancelled int64 // tasks whose context ended first
	Retried   int64 // re-runs after a death or timeout
	Restarts  int64 // workers started after the pool's start
	Recycled  int64 // workers retired by task count, memory or age
	Queued    int   // tasks waiting for a worker
	PerWorker []WorkerStats
}

// WorkerStats describes one live worker.
type WorkerStats struct {
	Name    string
	Pid     int
	Tasks   int64         // tasks answered
	Busy    time.Duration // time spent running tasks, as measured by the worker
	Age     time.Duration
	Holding int    // tasks assigned and not yet answered
	RSS     uint64 // resident bytes at the last check (0 if not checked)
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.stats
	s := Stats{
		Done: c.done, Items: c.items, Failed: c.failed, Died: c.died, TimedOut: c.timedOut,
		Cancelled: c.cancelled, Retried: c.retried, Restarts: c.restarts, Recycled: c.recycled,
		Queued: p.queue.len(),
	}
	for _, w := range p.workers {
		if w.dead {
			continue
		}
		s.Workers++
		s.PerWorker = append(s.PerWorker, WorkerStats{
			Name: w.name, Pid: w.pid, Tasks: w.tasks, Busy: w.busy,
			Age: time.Since(w.started), Holding: len(w.assigned), RSS: w.rss,
		})
	}
	return s
}
