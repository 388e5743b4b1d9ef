package core

import (
	"github.com/multiproc-go/multiproc/internal/engine"
)

// The engine contract's types, used throughout this package.
type (
	Task   = engine.Task
	Result = engine.Result
	Config = engine.Config
	Stats  = engine.Stats
)

// owner returns the worker holding t, nil while it is queued.
func owner(t *Task) *worker {
	w, _ := t.Sched.Owner.(*worker)
	return w
}

// finish settles t with r unless it was settled already, then accounts for
// it and closes the pool's copies of its descriptors. It reports whether
// this call settled t.
func (p *Pool) finish(t *Task, r Result) bool {
	if !t.Settle(r) {
		return false
	}
	if len(t.Res) > 0 {
		p.mu.Lock()
		h := p.releaseLocked(t)
		p.mu.Unlock()
		h.run()
	}
	p.taskDone(t)
	return true
}
