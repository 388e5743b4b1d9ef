package core

import (
	"context"
	"fmt"
	"reflect"
	"time"
)

// ctxWatch cancels the unfinished tasks of one context when it ends. Tasks
// submitted with the same context share one watch: a burst of tasks under
// one context registers one context.AfterFunc, not one each (each
// registration takes the context's lock and allocates).
type ctxWatch struct {
	stop  func() bool
	tasks []*Task // submitted with the context; some may be finished
	live  int     // unfinished among tasks
}

// watchLocked makes t's context cancel it.
func (p *Pool) watchLocked(t *Task) {
	ctx := t.Ctx
	if ctx == nil || ctx.Done() == nil {
		return
	}
	if !reflect.TypeOf(ctx).Comparable() {
		// Cannot be a map key: watch this task alone.
		t.Sched.Stop = context.AfterFunc(ctx, func() { p.Cancel(t, cancelled(t, ctx)) })
		return
	}
	w := p.watches[ctx]
	if w == nil {
		w = &ctxWatch{}
		w.stop = context.AfterFunc(ctx, func() { p.contextDone(ctx) })
		if p.watches == nil {
			p.watches = map[context.Context]*ctxWatch{}
		}
		p.watches[ctx] = w
	}
	if len(w.tasks) >= 64 && len(w.tasks) > 2*w.live {
		// A context that always has work in flight never ends its watch:
		// drop the finished tasks now and then so the list stays bounded.
		kept := w.tasks[:0]
		for _, x := range w.tasks {
			if !x.Finished() {
				kept = append(kept, x)
			}
		}
		clear(w.tasks[len(kept):])
		w.tasks = kept
	}
	w.tasks = append(w.tasks, t)
	w.live++
	t.Sched.Watched = true
}

// unwatchLocked forgets a finished task; a watch without live tasks ends.
func (p *Pool) unwatchLocked(t *Task) {
	if !t.Sched.Watched {
		return
	}
	t.Sched.Watched = false
	w := p.watches[t.Ctx]
	if w == nil {
		return
	}
	if w.live--; w.live == 0 {
		w.stop()
		delete(p.watches, t.Ctx)
	}
}

func (p *Pool) contextDone(ctx context.Context) {
	p.mu.Lock()
	w := p.watches[ctx]
	var ts []*Task
	if w != nil {
		for _, t := range w.tasks {
			if !t.Finished() {
				ts = append(ts, t)
			}
		}
	}
	p.mu.Unlock()
	for _, t := range ts {
		p.Cancel(t, cancelled(t, ctx))
	}
}

func cancelled(t *Task, ctx context.Context) error {
	return fmt.Errorf("multiproc: task %q cancelled: %w", t.Fn.Name, ctxErr(ctx))
}

// ctxErr is ctx's error, or context.DeadlineExceeded once its deadline has
// passed even if its timer has not fired yet: a worker's budget ends no
// earlier than the caller's deadline, so its answer can arrive before a
// late timer does (on a loaded machine), and the task is cancelled all the
// same. nil if ctx has not ended.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}
