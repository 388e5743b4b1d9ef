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
// it.
func (p *Pool) finish(t *Task, r Result) {
	if t.Settle(r) {
		p.taskDone(t)
	}
}
