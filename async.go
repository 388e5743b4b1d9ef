package multiproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"

	eng "github.com/multiproc-go/multiproc/internal/engine"
	"github.com/multiproc-go/multiproc/internal/logs"
)

// ErrNotReady is returned by AsyncResult.Successful before the result is ready.
var ErrNotReady = errors.New("multiproc: result not ready")

// promise is the one-shot outcome shared by AsyncResult and Future.
//
// It costs no allocation of its own (it lives inside its call's single
// allocation, see call): ApplyAsync throughput is bounded by the parent's
// work per task, and a channel and a callback closure per task were two of
// its five allocations (issue 8). So the channel closed at settlement is
// made only when a waiter needs one before the outcome is known (wait, or
// doneChan for AsCompleted and Wait), and done tells the common case, a Get
// of a task that has finished, without taking mu.
type promise[T any] struct {
	// done is set, after val, err and cancelled are written, once the
	// outcome is recorded: a load that sees it true may read them.
	done atomic.Bool
	mu   sync.Mutex    // guards the fields below
	ch   chan struct{} // nil until a waiter asks; closed at settlement
	val  T
	err  error
	// cancelled is set when the engine settled the task as cancelled
	// (Future.Cancelled reads it: an error that merely wraps
	// context.Canceled is not enough, and a deadline is a cancellation too).
	cancelled bool
	cbs       []func()
	cb        *callbacks // where callbacks run (the pool's callback goroutine)
	// aw, if set, is the engine of task at, which can deliver at's outcome
	// on the waiting goroutine itself (Apply's fast path: see
	// eng.Awaiter); wait asks it before waiting for done.
	aw eng.Awaiter
	at *eng.Task
}

func newPromise[T any](cb *callbacks) *promise[T] {
	return &promise[T]{cb: cb}
}

// settle records the outcome once; it reports whether this call did.
func (p *promise[T]) settle(v T, err error) bool { return p.settleAs(v, err, false) }

// settleAs is settle recording whether the task was cancelled.
func (p *promise[T]) settleAs(v T, err error, cancelled bool) bool {
	p.mu.Lock()
	if p.done.Load() {
		p.mu.Unlock()
		return false
	}
	p.val, p.err, p.cancelled = v, err, cancelled
	p.done.Store(true)
	cbs := p.cbs
	p.cbs = nil
	if p.ch != nil {
		close(p.ch)
	}
	p.mu.Unlock()
	// The outcome is ready before callbacks run (as in concurrent.futures):
	// a callback may read it, or wait on any other result, without
	// waiting on itself.
	for _, cb := range cbs {
		p.cb.post(cb)
	}
	return true
}

// then runs cb once the outcome is known (now, if it is).
func (p *promise[T]) then(cb func()) {
	p.mu.Lock()
	if !p.done.Load() {
		p.cbs = append(p.cbs, cb)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.cb.post(cb)
}

// doneChan returns a channel closed once the outcome is known, the same
// channel at every call (Wait tells futures apart by it).
func (p *promise[T]) doneChan() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch == nil {
		p.ch = make(chan struct{})
		if p.done.Load() {
			close(p.ch)
		}
	}
	return p.ch
}

func (p *promise[T]) wait(ctx context.Context) error {
	if p.done.Load() {
		return nil
	}
	if p.aw != nil {
		p.aw.Await(ctx, p.at)
		if p.done.Load() {
			return nil
		}
	}
	select {
	case <-p.doneChan():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("multiproc: waiting for a result: %w", ctx.Err())
	}
}

func (p *promise[T]) get(ctx context.Context) (T, error) {
	if err := p.wait(ctx); err != nil {
		var zero T
		return zero, err
	}
	return p.val, p.err
}

// failed reports whether the outcome is an error other than a
// cancellation: what Wait's FirstException waits for (CPython's wait
// skips cancelled futures there too).
func (p *promise[T]) failed() bool {
	if !p.ready() {
		return false
	}
	// The fields were written before done was set.
	return p.err != nil && !p.cancelled
}

func (p *promise[T]) ready() bool { return p.done.Load() }

// AsyncResult is the pending result of ApplyAsync or MapAsync, Python's
// AsyncResult. Its methods are safe for concurrent use.
type AsyncResult[T any] struct{ p *promise[T] }

// Get waits for the result and returns it, or the task's error. If ctx ends
// first it returns an error wrapping ctx.Err() and the task goes on (cancel
// the context given to ApplyAsync to stop the task itself).
func (r *AsyncResult[T]) Get(ctx context.Context) (T, error) { return r.p.get(ctx) }

// Wait waits until the result is ready, or ctx ends (the error wraps ctx.Err()).
func (r *AsyncResult[T]) Wait(ctx context.Context) error { return r.p.wait(ctx) }

// Ready reports whether the call has completed.
func (r *AsyncResult[T]) Ready() bool { return r.p.ready() }

// Successful reports whether the call completed without error; before it
// completed it returns ErrNotReady.
func (r *AsyncResult[T]) Successful() (bool, error) {
	if !r.p.ready() {
		return false, ErrNotReady
	}
	return r.p.err == nil, nil
}

// OnResult registers fn to run with the result if the call succeeds
// (Python's callback). Callbacks of one pool run one at a time, in the
// order results arrive, on a goroutine of the pool's (so they need no
// locking among themselves); they must not block for long. They run just
// after the result becomes ready, so a Get that returns may not yet see a
// callback's effects; Close, Terminate and Join wait for pending callbacks.
//
// A callback may call Close, Terminate or Join of its own pool (or
// [Executor.Shutdown]): they then stop intake and wait for the tasks and
// workers as usual, but not for the calling callback or the callbacks
// queued behind it, which run once it returns. A callback that panics is
// recovered: the panic and its stack are logged (through the pool's
// logger, slog.Default() unless set) and the other callbacks still run.
// It returns r, to chain.
func (r *AsyncResult[T]) OnResult(fn func(T)) *AsyncResult[T] {
	r.p.then(func() {
		if r.p.err == nil {
			fn(r.p.val)
		}
	})
	return r
}

// OnError registers fn to run with the error if the call fails (Python's
// error_callback), under the same rules as OnResult.
func (r *AsyncResult[T]) OnError(fn func(error)) *AsyncResult[T] {
	r.p.then(func() {
		if r.p.err != nil {
			fn(r.p.err)
		}
	})
	return r
}

func (r *AsyncResult[T]) doneChan() <-chan struct{} { return r.p.doneChan() }
func (r *AsyncResult[T]) failed() bool              { return r.p.failed() }

// callbacks runs a pool's callbacks one at a time, in order, on a goroutine
// that exists only while there are callbacks to run.
//
// Close, Terminate, Join and Shutdown wait for pending callbacks, but a
// callback may call them too: waiting would then wait for the waiter. So
// the loop records which goroutine it is, and wait returns at once when its
// caller is that goroutine; the callbacks queued behind the caller run once
// it returns. Go has no goroutine-local storage and these methods take no
// argument that could carry a token from the loop to the call, so the
// goroutine id (read from runtime.Stack, about a microsecond) is the only
// way to recognise the caller; it is read once per start of the loop, not
// per callback.
type callbacks struct {
	// log receives callback panics. The engine sets it when the pool is
	// built (slog.Default() then, unless the pool was given a logger); nil
	// means slog.Default() at the time of the panic.
	log *logs.Limiter

	mu      sync.Mutex // guards the fields below
	q       []func()
	running bool
	loopID  uint64     // goroutine id of the running loop; 0 when none
	idle    *sync.Cond // signalled when running turns false
}

func (c *callbacks) post(f func()) {
	c.mu.Lock()
	c.q = append(c.q, f)
	if !c.running {
		c.running = true
		go c.loop()
	}
	c.mu.Unlock()
}

func (c *callbacks) loop() {
	id := goroutineID()
	c.mu.Lock()
	c.loopID = id
	c.mu.Unlock()
	for {
		c.mu.Lock()
		if len(c.q) == 0 {
			c.running = false
			c.loopID = 0
			c.q = nil
			if c.idle != nil {
				c.idle.Broadcast()
			}
			c.mu.Unlock()
			return
		}
		f := c.q[0]
		c.q[0] = nil
		c.q = c.q[1:]
		c.mu.Unlock()
		c.call(f)
	}
}

// call runs one callback. A panic in user code would otherwise end the
// program from a goroutine the user never started; it is logged instead,
// and the callbacks after it still run.
func (c *callbacks) call(f func()) {
	defer func() {
		if v := recover(); v != nil {
			if c.log == nil {
				c.log = logs.New(nil) // a zero callbacks, in tests
			}
			// Rate-limited: a callback that panics on every result would
			// otherwise write one stack per task.
			c.log.Error("callback-panic", "multiproc: callback panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	f()
}

// onLoop reports whether the caller is running a callback of c.
func (c *callbacks) onLoop() bool {
	c.mu.Lock()
	id := c.loopID
	c.mu.Unlock()
	// goroutineID is only read when a loop runs: a callback is the only
	// goroutine that can match, and the close paths are not hot.
	return id != 0 && id == goroutineID()
}

// wait waits until every posted callback has run. Unlike a WaitGroup it
// may race with post: callbacks registered on finished results after a
// pool's Close simply start the goroutine again. Called from a callback of
// c, it returns at once (see callbacks).
func (c *callbacks) wait() {
	if c.onLoop() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle == nil {
		c.idle = sync.NewCond(&c.mu)
	}
	for c.running {
		c.idle.Wait()
	}
}

// waitContext is wait bounded by ctx: if ctx ends first it returns an
// error wrapping ctx.Err(), and the callbacks go on running.
func (c *callbacks) waitContext(ctx context.Context) error {
	if ctx.Done() == nil || c.onLoop() {
		c.wait()
		return nil
	}
	c.mu.Lock()
	running := c.running
	c.mu.Unlock()
	if !running {
		return nil
	}
	done := make(chan struct{})
	go func() { c.wait(); close(done) }() // ends with the callbacks
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("multiproc: waiting for callbacks: %w", ctx.Err())
	}
}

// goroutineID returns the id of the calling goroutine, from the first line
// of its stack trace ("goroutine 123 [running]:"), or 0 if that line cannot
// be read.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, ok := bytes.CutPrefix(b, []byte("goroutine "))
	if !ok {
		return 0
	}
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0
	}
	return id
}
