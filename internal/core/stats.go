package core

import (
	"time"

	"github.com/multiproc-go/multiproc/internal/engine"
)

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
		s.PerWorker = append(s.PerWorker, engine.WorkerStats{
			Name: w.name, Pid: w.pid, Tasks: w.tasks, Busy: w.busy,
			Age: time.Since(w.started), Holding: len(w.assigned), RSS: w.rss,
		})
	}
	return s
}
