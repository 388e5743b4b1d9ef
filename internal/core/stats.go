package core

import (
	"time"

	"github.com/multiproc-go/multiproc/internal/engine"
)

// Stats returns a snapshot of the pool's counters. The resident size of
// each worker is read now (0 where it cannot be read), whether or not the
// pool recycles by memory.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	c := p.stats
	s := Stats{
		Done: c.done, Items: c.items, Failed: c.failed, Died: c.died, TimedOut: c.timedOut,
		Cancelled: c.cancelled, Retried: c.retried, Restarts: c.restarts, Recycled: c.recycled,
		Queued: p.queuedLocked(), Backoff: p.backoffLocked(),
	}
	for _, w := range p.workers {
		if w.dead {
			continue
		}
		s.Workers++
		s.PerWorker = append(s.PerWorker, engine.WorkerStats{
			Name: w.name, Pid: w.pid, Tasks: w.tasks, Busy: w.busy,
			Age: time.Since(w.started), Holding: len(w.assigned),
		})
	}
	p.mu.Unlock()
	// Outside the lock: a read of /proc must not hold up scheduling. A pid
	// cannot have been reused yet, but the worker may have exited since;
	// then its size is unknown and reads as 0.
	for i := range s.PerWorker {
		if rss, err := residentBytes(s.PerWorker[i].Pid); err == nil {
			s.PerWorker[i].RSS = rss
		}
	}
	return s
}

// claimed marks a task whose settle is on its way (Sched.Owner): whoever
// took it out of the queue or a worker's list settles it, nobody else.
var claimed = new(struct{ byte })

// claimedLocked reports whether t is settled or someone took the right to
// settle it: a canceller (Sched.Cancelled) or another claimLocked.
// queuedLocked counts the queued tasks still waiting for a worker. A task
// cancelled while queued is counted Cancelled at once but leaves the queue
// only when a dispatch reaches it; it must not be counted twice.
func (p *Pool) queuedLocked() int {
	n := 0
	for _, t := range p.queue.buf[p.queue.head:] {
		if !claimedLocked(t) {
			n++
		}
	}
	return n
}

func claimedLocked(t *Task) bool {
	return t.Finished() || t.Sched.Cancelled || t.Sched.Owner == any(claimed)
}

// claimLocked takes the right to settle t with outcome o and counts t under
// o, unless someone else has it. Every settle in this package goes through
// it, so a task is counted once, under its final outcome, even when a
// result, a death, a cancel and a shutdown race for it. It reports whether
// the caller must finish t.
func (p *Pool) claimLocked(t *Task, o engine.Outcome) bool {
	if claimedLocked(t) {
		return false
	}
	if o == engine.Cancelled {
		// The owner stays: a running task still has to be told, or killed
		// after the grace period.
		t.Sched.Cancelled = true
	} else {
		t.Sched.Owner = claimed
	}
	switch o {
	case engine.Done:
		p.stats.done++
		p.stats.items += int64(t.Items)
	case engine.Failed:
		p.stats.failed++
	case engine.Died:
		p.stats.died++
	case engine.TimedOut:
		p.stats.timedOut++
	case engine.Cancelled:
		p.stats.cancelled++
	}
	return true
}

// claimResultLocked classifies the result a worker sent for t with status
// and claims t under that outcome. It reports false if someone else
// settles t: a canceller already answered the caller, so the reply of a
// cancelled task (the context's error, say) counts nothing. An error from a
// task whose caller's context has ended (cancelled or past its deadline)
// is that cancellation: the task most likely returned ctx.Err(). A
// deadline counts once it has passed, before the context's timer fires.
func (p *Pool) claimResultLocked(t *Task, status byte) (engine.Outcome, bool) {
	o := engine.Failed
	switch {
	case status == statusOK:
		o = engine.Done
	case t.Ctx != nil && ctxErr(t.Ctx) != nil:
		o = engine.Cancelled
	}
	return o, p.claimLocked(t, o)
}

// resultOf gives r the outcome it was claimed under; a cancelled task's
// answer says so, whatever the function returned.
func resultOf(t *Task, o engine.Outcome, r Result) Result {
	if o == engine.Cancelled {
		return Result{Err: cancelled(t, t.Ctx), Outcome: o}
	}
	r.Outcome = o
	return r
}

// failUnsent settles t, which is being written to its worker, with err: it
// cannot be sent (too large). The worker gets a cancelled stub in its
// place, whose reply counts nothing.
func (p *Pool) failUnsent(t *Task, err error) {
	p.mu.Lock()
	ok := p.claimLocked(t, engine.Failed)
	p.mu.Unlock()
	if ok {
		p.finish(t, Result{Err: err, Outcome: engine.Failed})
	}
}
