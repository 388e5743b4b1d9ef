package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiproc-go/multiproc/internal/engine"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/logs"
	"github.com/multiproc-go/multiproc/internal/wire"
)

var _ engine.Engine = (*Pool)(nil)

// NewEngine is the local engine's [engine.Factory].
func NewEngine(ctx context.Context, cfg Config) (engine.Engine, error) {
	p, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// maxSpawnFailures consecutive failed worker starts, with no live worker
// left, break the pool: queued work fails with the cause instead of waiting
// for workers that cannot start.
const maxSpawnFailures = 3

// Pool runs tasks on worker processes. All methods are safe for concurrent
// use.
type Pool struct {
	cfg Config
	log *logs.Limiter

	mu         sync.Mutex
	queue      deque
	workers    []*worker
	spawning   int
	pending    int // submitted, not finished
	closing    bool
	terminated bool
	broken     error
	done       chan struct{}
	doneClosed bool

	avgNs       float64 // moving average of task run time, 0 until known
	deaths      []time.Time
	backoff     time.Duration
	nextSpawn   time.Time
	spawnTimer  *time.Timer
	spawnFails  int
	wakeScratch []*worker
	watches     map[context.Context]*ctxWatch
	held        map[uint64]*held       // resources of queued and running tasks (resources.go)
	lateHooks   map[*Task][]func(bool) // hooks of settled tasks held back by a write (resources.go)
	// initDelivered: a worker was started with the initializer's resources.
	initDelivered atomic.Bool
	stopRelease   func()
	directs       int // callers reading a worker's stream themselves (Await)
	// fresh is the Awaited task being dispatched by its own Submit, whose
	// Await follows: the one task a parked worker may take as it is.
	fresh *Task

	stats counters

	wg sync.WaitGroup // reader, writer and spawner goroutines

	iso *poolIso // where workers' cgroups are made (issue 14)
}

type counters struct {
	done, failed, died, timedOut, cancelled, retried, restarts, recycled int64
	items                                                                int64
}

var workerSeq atomic.Int64

// New starts a pool and its workers (concurrently) and waits until every
// worker has run its initializer. If any worker cannot start, the others are
// stopped and the error is returned.
func New(ctx context.Context, cfg Config) (*Pool, error) {
	if cfg.Workers <= 0 {
		panic(fmt.Sprintf("multiproc: pool size %d; must be positive", cfg.Workers))
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 2 * time.Second
	}
	if cfg.RestartWindow <= 0 {
		cfg.RestartWindow = 10 * time.Second
	}
	if cfg.MaxRestarts <= 0 {
		cfg.MaxRestarts = 2*cfg.Workers + 2
	}
	if cfg.Name == "" {
		cfg.Name = "PoolWorker"
	}
	if cfg.MaxProcs <= 0 {
		cfg.MaxProcs = 1
	}
	if cfg.RetryOn == nil {
		cfg.RetryOn = func(err error) bool {
			return errors.Is(err, errs.ErrWorkerDied) || errors.Is(err, errs.ErrTimeout)
		}
	}
	p := &Pool{cfg: cfg, log: logs.New(cfg.Logger), done: make(chan struct{})}
	var err error
	if p.iso, err = newPoolIso(&p.cfg); err != nil {
		return nil, err
	}
	if err := p.adoptInit(); err != nil {
		return nil, err
	}
	p.stopRelease = wire.OnRelease(p.released)
	type started struct {
		w   *worker
		err error
	}
	ch := make(chan started, cfg.Workers)
	for range cfg.Workers {
		go func() {
			w, err := p.spawn(ctx)
			ch <- started{w, err}
		}()
	}
	var firstErr error
	var ws []*worker
	for range cfg.Workers {
		s := <-ch
		if s.err != nil {
			if firstErr == nil {
				firstErr = s.err
			}
			continue
		}
		ws = append(ws, s.w)
	}
	if firstErr != nil {
		for _, w := range ws {
			w.abandon()
		}
		p.stopRelease()
		p.mu.Lock()
		p.releaseInitLocked()
		p.mu.Unlock()
		return nil, firstErr
	}
	p.mu.Lock()
	for _, w := range ws {
		p.addLocked(w)
	}
	p.mu.Unlock()
	return p, nil
}

// Submit queues tasks, in order. It fails without calling any Done if the
// pool is closed or broken.
func (p *Pool) Submit(ts ...*Task) error {
	p.mu.Lock()
	if p.closing || p.broken != nil {
		err := p.broken
		if p.closing {
			err = errs.ErrPoolClosed
		}
		p.mu.Unlock()
		// Refused: Submit takes over the resources all the same, and their
		// hooks hear they were not delivered.
		for _, t := range ts {
			dropRes(t)
		}
		return err
	}
	for i, t := range ts {
		if err := p.adoptLocked(t); err != nil {
			var hs []hooks
			for _, d := range ts[:i] {
				hs = append(hs, p.releaseLocked(d))
			}
			for _, d := range ts[i+1:] {
				dropRes(d)
			}
			p.mu.Unlock()
			settleLate(hs)
			return err
		}
	}
	for _, t := range ts {
		p.pending++
		p.queue.pushBack(t)
		p.watchLocked(t)
	}
	if len(ts) == 1 && ts[0].Awaited {
		p.fresh = ts[0]
	}
	kick := p.dispatchKickLocked(false)
	p.fresh = nil
	// Copy: another dispatch may reuse the slice once p.mu is released.
	var few [4]*worker
	ws := append(few[:0], kick...)
	p.mu.Unlock()
	for _, w := range ws {
		w.kick()
	}
	return nil
}

// Cancel answers t with err (which should wrap context.Canceled or the
// context's error) and stops it wherever it is: a queued task is dropped, a
// running one has its context cancelled in the worker, and the worker is
// killed if the task has not stopped within the grace period. It reports
// whether t was still unfinished.
func (p *Pool) Cancel(t *Task, err error) bool {
	p.mu.Lock()
	ok := p.cancelLocked(t)
	p.mu.Unlock()
	if ok {
		p.finish(t, Result{Err: err, Outcome: engine.Cancelled})
	}
	return ok
}

// cancelLocked marks t cancelled and arranges for it to stop; the caller
// finishes it after unlocking. It returns false if t already finished or
// already ran, or if another settle of t is on its way.
func (p *Pool) cancelLocked(t *Task) bool {
	if claimedLocked(t) {
		return false
	}
	w := owner(t)
	idx := -1
	if w != nil {
		// A task its worker holds is in w.assigned until a result or the
		// worker's death takes it out, and whoever takes it out settles it.
		if idx = w.indexLocked(t); idx < 0 {
			return false
		}
		if !w.dead && w.done+uint64(idx)+1 <= w.words.Load(wordCompleted) {
			return false // it ran and its result is on the way: too late
		}
		if w.dead {
			idx = -1 // nothing to tell a dead worker
		}
	}
	p.claimLocked(t, engine.Cancelled)
	if w != nil && !w.dead {
		w.watchLocked() // its reply may come with no direct reader left
	}
	if idx >= 0 {
		if idx < len(w.assigned)-w.unsent && !t.Sched.CancelSent {
			// Already written to the worker: tell it. A task not yet
			// written goes out flagged as cancelled instead, and is never
			// run.
			t.Sched.CancelSent = true
			w.cancels = append(w.cancels, w.done+uint64(idx)+1)
			w.wakeWriter()
		}
		if idx == 0 {
			p.armHeadLocked(w)
		}
	}
	return true
}

// CancelPending cancels, with err, every task not yet handed to a worker
// process: queued tasks, and tasks assigned to a worker but not yet
// written to it (they go out flagged and never run). Tasks a worker has
// received count as running, as in CPython's executor, whose call queue
// cannot be cancelled. The choice is made under one lock, so no task can
// be written between being chosen and being cancelled.
func (p *Pool) CancelPending(err error) {
	p.mu.Lock()
	var ts []*Task
	for i := p.queue.head; i < len(p.queue.buf); i++ {
		if t := p.queue.buf[i]; p.cancelLocked(t) {
			ts = append(ts, t)
		}
	}
	for _, w := range p.workers {
		for _, t := range w.assigned[len(w.assigned)-w.unsent:] {
			if p.cancelLocked(t) {
				ts = append(ts, t)
			}
		}
	}
	p.mu.Unlock()
	for _, t := range ts {
		p.finish(t, Result{Err: err, Outcome: engine.Cancelled})
	}
}

// Running reports whether t has been handed to a worker process and has
// not finished: it runs, or waits in that worker's pipeline behind the
// tasks before it (CPython's executor calls those running too).
func (p *Pool) Running(t *Task) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := owner(t)
	if t.Finished() || w == nil || w.dead {
		return false
	}
	idx := w.indexLocked(t)
	return idx >= 0 && idx < len(w.assigned)-w.unsent
}

func (p *Pool) taskDone(t *Task) {
	p.mu.Lock()
	p.unwatchLocked(t)
	p.pending--
	if p.directs > 0 {
		// Settled by someone else than its direct reader, maybe (a
		// cancel, a timeout, Terminate): wake the reader. Its owner field
		// no longer names the worker once the task is claimed.
		for _, w := range p.workers {
			if w.rd.task == t {
				w.wakeDirectLocked()
			}
		}
	}
	p.maybeDoneLocked()
	p.mu.Unlock()
}

// aheadBytesMax bounds the task payload bytes one worker holds, bar its
// first task. A worker reads what it is sent at once, each task into a
// buffer of its own, so everything handed to it ahead is memory it must
// touch; in a fresh worker those are new pages, which on virtual machines
// cost microseconds each to fault in. The task-count window alone let a
// large Map hand each worker half its chunks at once (its estimate of a
// task's time came from tiny tasks run before): measured on a fresh
// Pool(2), a 1M-item Map of ints cost the workers 56 ms of CPU, against 10
// ms once warm. Two 256 KiB chunks ahead keep a worker from idling (the
// next chunk is in its socket while it runs one) at a fraction of that.
const aheadBytesMax = 512 << 10

// window is how many tasks one worker may hold: about a millisecond of
// work, plus one so a worker never idles for a round trip between tasks.
func (p *Pool) windowLocked() int {
	if p.avgNs <= 0 {
		return 1
	}
	n := 1 + int(float64(time.Millisecond)/p.avgNs)
	return min(n, maxWindow)
}

// dispatchLocked hands queued tasks to the least loaded workers and wakes
// their writers.
func (p *Pool) dispatchLocked() {
	for _, w := range p.dispatchKickLocked(false) {
		w.wakeWriter()
	}
}

// dispatchKickLocked hands queued tasks to the least loaded workers. It
// returns the workers whose frames the caller should write itself (kick,
// after unlocking p.mu): all of them if busyToo, otherwise only those that
// had nothing in flight, where a direct write saves latency; the writers of
// busy workers are woken instead, so that a stream of submissions is
// batched into few writes. The slice is valid until the next dispatch.
func (p *Pool) dispatchKickLocked(busyToo bool) []*worker {
	wake := p.wakeScratch[:0]
	window := p.windowLocked()
	for p.queue.len() > 0 {
		t := p.queue.front()
		if claimedLocked(t) {
			p.queue.popFront() // settled, or about to be by whoever claimed it
			continue
		}
		var best *worker
		for _, w := range p.workers {
			if w.dead || w.retiring || len(w.assigned) >= window ||
				len(w.assigned) > 0 && w.aheadBytes+len(t.Payload) > aheadBytesMax {
				continue
			}
			// A worker that grew old while idle retires before it takes
			// more work; one that never ran a task does not, or an age
			// shorter than a start-up would retire every worker unused.
			if p.cfg.MaxAge > 0 && w.given > 0 && time.Since(w.started) > p.cfg.MaxAge {
				p.retireLocked(w, "age")
				continue
			}
			if best == nil || len(w.assigned) < len(best.assigned) {
				best = w
			}
		}
		if best == nil {
			break
		}
		p.queue.popFront()
		if best.rd.parked && (t != p.fresh || len(t.Res) > 0) {
			best.unparkLocked() // nobody would read its reply (see readerState)
		}
		t.Sched.Owner = best
		best.assigned = append(best.assigned, t)
		best.aheadBytes += len(t.Payload)
		best.unsent++
		best.given++
		if len(best.assigned) == 1 {
			p.armHeadLocked(best)
		}
		if p.cfg.MaxTasksPerChild > 0 && best.given >= p.cfg.MaxTasksPerChild {
			p.retireLocked(best, "max tasks")
		}
		if !best.needWake {
			best.needWake = true
			wake = append(wake, best)
		}
	}
	kick := wake[:0]
	for _, w := range wake {
		w.needWake = false
		// Before this dispatch, w had in flight what it holds minus what
		// is unsent; what this dispatch added is all unsent.
		if busyToo || len(w.assigned) == w.unsent {
			kick = append(kick, w)
		} else {
			w.wakeWriter()
		}
	}
	clear(wake[len(kick):])
	p.wakeScratch = kick[:0]
	return kick
}

// retireLocked stops giving w tasks; it exits once it has answered those
// it holds. Its replacement starts once it has been reaped (workerExited):
// users size pools by memory, so a pool never has more than its size of
// worker processes, not even while one is recycled.
func (p *Pool) retireLocked(w *worker, why string) {
	if w.retiring || w.dead {
		return
	}
	w.retiring = true
	if why != "close" {
		p.stats.recycled++
	}
	if len(w.assigned) == 0 {
		w.requestExit()
	}
}

// ensureWorkersLocked starts workers until the pool has its size, unless
// restarts must back off. Every worker process counts from its start
// (p.spawning) until it has been reaped (it leaves p.workers only then),
// retiring and dead ones included, so that a replacement never overlaps
// the worker it replaces.
func (p *Pool) ensureWorkersLocked() {
	if p.terminated || p.broken != nil || (p.closing && p.pending == 0) {
		return
	}
	for live := p.spawning + len(p.workers); live < p.cfg.Workers; live++ {
		if wait := time.Until(p.nextSpawn); wait > 0 {
			if p.spawnTimer == nil {
				p.spawnTimer = time.AfterFunc(wait, func() {
					p.mu.Lock()
					p.spawnTimer = nil
					p.ensureWorkersLocked()
					p.mu.Unlock()
				})
			}
			return
		}
		p.spawning++
		// Restarts counts worker processes started after the pool's start,
		// counted here, when the start begins, so that whoever sees a
		// task's ErrWorkerDied sees its replacement counted too.
		p.stats.restarts++
		p.wg.Add(1)
		go p.respawn()
	}
}

func (p *Pool) respawn() {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	w, err := p.spawn(ctx)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spawning--
	if err != nil {
		p.spawnFails++
		p.noteFailureLocked()
		live := 0
		for _, w := range p.workers {
			if !w.dead {
				live++
			}
		}
		if live == 0 && p.spawning == 0 && p.spawnFails >= maxSpawnFailures {
			p.breakLocked(err)
			return
		}
		p.ensureWorkersLocked()
		p.maybeDoneLocked()
		return
	}
	p.spawnFails = 0
	if p.terminated || (p.closing && p.pending == 0) {
		w.abandon()
		p.maybeDoneLocked()
		return
	}
	p.addLocked(w)
}

// noteFailureLocked records a worker death without a task (an idle death)
// or a failed start (start-up or initializer failure) and computes the
// restart back-off, after Erlang/OTP's restart intensity. A worker that died
// running a task is not noted: that is the task's failure, and its
// replacement starts at once (a workload whose tasks crash now and then
// would otherwise crawl at back-off speed).
func (p *Pool) noteFailureLocked() {
	now := time.Now()
	cut := 0
	for cut < len(p.deaths) && now.Sub(p.deaths[cut]) > p.cfg.RestartWindow {
		cut++
	}
	p.deaths = append(p.deaths[cut:], now)
	if len(p.deaths) > p.cfg.MaxRestarts {
		if p.backoff == 0 {
			// Once when a crash loop starts, not once per death; the limiter
			// also folds a loop that stops and starts again into one line
			// per interval.
			p.log.Warn("backoff", "multiproc: workers keep failing without a task; delaying restarts",
				"pool", p.cfg.Name, "failures", len(p.deaths), "window", p.cfg.RestartWindow)
		}
		p.backoff = min(max(2*p.backoff, 50*time.Millisecond), 5*time.Second)
		p.nextSpawn = now.Add(p.backoff)
	} else {
		p.backoff = 0
	}
}

// backoffLocked is the current restart back-off: non-zero while the
// failures within the restart window exceed the intensity.
func (p *Pool) backoffLocked() time.Duration {
	if p.backoff == 0 || p.broken != nil || p.terminated {
		// No start is coming.
		return 0
	}
	now, n := time.Now(), 0
	for _, d := range p.deaths {
		if now.Sub(d) <= p.cfg.RestartWindow {
			n++
		}
	}
	if n > p.cfg.MaxRestarts {
		return p.backoff
	}
	return 0
}

// breakLocked fails all queued work: no worker can be started.
func (p *Pool) breakLocked(cause error) {
	p.broken = fmt.Errorf("%w: workers cannot start: %w", errs.ErrPoolBroken, cause)
	var ts []*Task
	for p.queue.len() > 0 {
		if t := p.queue.popFront(); p.claimLocked(t, engine.Failed) {
			ts = append(ts, t)
		}
	}
	err := p.broken
	// Finishing takes p.mu (taskDone), which the caller holds.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for _, t := range ts {
			p.finish(t, Result{Err: err, Outcome: engine.Failed})
		}
	}()
}

func (p *Pool) maybeDoneLocked() {
	if !p.closing {
		return
	}
	if p.pending == 0 {
		for _, w := range p.workers {
			if !w.retiring {
				p.retireLocked(w, "close")
			}
		}
	}
	if p.pending == 0 && len(p.workers) == 0 && p.spawning == 0 && !p.doneClosed {
		p.doneClosed = true
		p.releaseInitLocked()
		p.stopRelease()
		if p.spawnTimer != nil {
			p.spawnTimer.Stop()
			p.spawnTimer = nil
		}
		close(p.done)
	}
}

// Close stops accepting tasks, lets queued and running tasks finish, then
// stops the workers and waits for them to exit. If ctx ends first it
// proceeds as Terminate (unfinished tasks fail with ErrPoolClosed, workers
// are killed and reaped) and returns an error wrapping ctx.Err().
func (p *Pool) Close(ctx context.Context) error {
	p.StartClose()
	select {
	case <-p.done:
		p.wg.Wait()
		return nil
	case <-ctx.Done():
	}
	p.Terminate()
	return fmt.Errorf("multiproc: close did not finish in time, pool terminated: %w", ctx.Err())
}

// CanTransfer reports whether tasks may carry descriptors: the local
// engine passes a task's resources with SCM_RIGHTS in the sendmsg that
// carries its frame.
func (p *Pool) CanTransfer() bool { return true }

// StartClose stops accepting tasks and lets the pool wind down once its work
// is done, without waiting: Submit fails with ErrPoolClosed from its return
// on. Close or Join waits for the end.
func (p *Pool) StartClose() {
	p.mu.Lock()
	p.closing = true
	p.maybeDoneLocked()
	p.mu.Unlock()
}

// Terminate fails every unfinished task with ErrPoolClosed, kills the
// workers (and their process groups) and waits for them to exit.
func (p *Pool) Terminate() error {
	p.mu.Lock()
	p.closing, p.terminated = true, true
	var ts []*Task
	for p.queue.len() > 0 {
		if t := p.queue.popFront(); p.claimLocked(t, engine.Cancelled) {
			ts = append(ts, t)
		}
	}
	for _, w := range p.workers {
		for _, t := range w.assigned {
			if p.claimLocked(t, engine.Cancelled) {
				ts = append(ts, t)
			}
		}
		w.killLocked()
	}
	p.mu.Unlock()
	for _, t := range ts {
		p.finish(t, Result{Err: fmt.Errorf("%w: terminated", errs.ErrPoolClosed), Outcome: engine.Cancelled})
	}
	p.mu.Lock()
	p.maybeDoneLocked()
	p.mu.Unlock()
	<-p.done
	p.wg.Wait()
	return nil
}

// Join waits until a Close or Terminate has finished. It fails if neither
// was called, like Python's Pool.join.
func (p *Pool) Join(ctx context.Context) error {
	p.mu.Lock()
	closing := p.closing
	p.mu.Unlock()
	if !closing {
		return errors.New("multiproc: Join on a running pool: call Close or Terminate first")
	}
	select {
	case <-p.done:
		p.wg.Wait()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("multiproc: pool join: %w", ctx.Err())
	}
}

// Size returns the configured number of workers.
func (p *Pool) Size() int { return p.cfg.Workers }

// deque is a FIFO of tasks that can also take tasks back at the front.
type deque struct {
	buf  []*Task
	head int
}

func (d *deque) len() int         { return len(d.buf) - d.head }
func (d *deque) front() *Task     { return d.buf[d.head] }
func (d *deque) pushBack(t *Task) { d.buf = append(d.buf, t) }
func (d *deque) popFront() *Task {
	t := d.buf[d.head]
	d.buf[d.head] = nil
	d.head++
	if d.head == len(d.buf) {
		d.buf, d.head = d.buf[:0], 0
	} else if d.head > 1024 && d.head > len(d.buf)/2 {
		n := copy(d.buf, d.buf[d.head:])
		clear(d.buf[n:])
		d.buf, d.head = d.buf[:n], 0
	}
	return t
}

// pushFront puts ts back at the front, keeping their order.
func (d *deque) pushFront(ts []*Task) {
	if len(ts) == 0 {
		return
	}
	if d.head >= len(ts) {
		d.head -= len(ts)
		copy(d.buf[d.head:], ts)
		return
	}
	nb := make([]*Task, 0, len(ts)+d.len()+16)
	nb = append(nb, ts...)
	nb = append(nb, d.buf[d.head:]...)
	d.buf, d.head = nb, 0
}
