package multiproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/multiproc-go/multiproc/internal/bufcache"
	"github.com/multiproc-go/multiproc/internal/core"
	eng "github.com/multiproc-go/multiproc/internal/engine"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/logs"
	"github.com/multiproc-go/multiproc/internal/pages"
	"github.com/multiproc-go/multiproc/internal/registry"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Workers is what runs tasks: a [*Pool] or an [*Executor]. Every function
// that runs work (Map, Imap, Apply, Submit...) takes one; the two types
// differ only in how they are shut down and which Python API they mirror.
type Workers interface {
	engine() *engine
}

// engine is what a Pool or an Executor runs on: an [eng.Engine] (the
// local worker-process engine unless an option chose another backend),
// plus what the typed layer adds on top of any engine: callbacks and
// progress bars.
type engine struct {
	core     eng.Engine
	cb       callbacks
	progress progressConfig
	size     int
	maxMsg   int // bytes one task's encoded argument may take
	// closedErr is what work submitted after the end is told: an Executor
	// says "executor shut down" where a Pool says "pool closed"; both
	// match ErrPoolClosed.
	closedErr error
}

// submit hands tasks to the engine, translating its refusal after a
// shutdown into this front end's words.
func (e *engine) submit(ts ...*core.Task) error {
	err := e.core.Submit(ts...)
	if err != nil && e.closedErr != nil && errors.Is(err, ErrPoolClosed) {
		return e.closedErr
	}
	return err
}

// checkTransfer refuses, before anything is submitted, an argument type that
// holds resources when the engine cannot carry descriptors (a remote one).
func (e *engine) checkTransfer(fe *registry.Entry) error {
	if fe.InHasResource && !e.core.CanTransfer() {
		return fmt.Errorf("%w: the argument of %q (%v) holds a resource (descriptors or shared memory) at %s, which this pool's backend cannot carry", ErrNotTransferable, fe.Name, fe.In, strings.Join(wire.ResourcePaths(fe.In, "argument"), ", "))
	}
	return nil
}

// checkSize fails an encoded argument over the message limit, so that the
// caller learns it synchronously instead of from a worker.
func (e *engine) checkSize(fn string, what string, payload []byte) error {
	if len(payload) > e.maxMsg {
		return &errs.TooLargeError{What: what, Func: fn, Size: int64(len(payload)), Limit: int64(e.maxMsg)}
	}
	return nil
}

func newEngine(ctx context.Context, n int, opts []PoolOption) (*engine, error) {
	if ctx == nil {
		panic("multiproc: nil context")
	}
	if n < 0 {
		return nil, fmt.Errorf("multiproc: pool size %d: must be positive (or 0 for CPUCount)", n)
	}
	if n == 0 {
		n = defaultPoolSize()
	}
	cfg := poolConfig{Workers: n}
	for _, o := range opts {
		if o == nil {
			panic("multiproc: nil PoolOption")
		}
		if err := o(&cfg); err != nil {
			closeSent(cfg.InitRes)
			return nil, err
		}
	}
	// Options apply in any order: the limits are checked again against
	// the final GOMAXPROCS (the pids floor depends on it).
	if err := cfg.Limits.Validate(max(cfg.MaxProcs, 1)); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	newCore := cfg.New
	if newCore == nil {
		newCore = core.NewEngine
	}
	c, err := newCore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	maxMsg := cfg.MaxMessageSize
	if maxMsg <= 0 {
		maxMsg = wire.DefaultMaxFrame
	}
	return &engine{core: c, size: c.Size(), progress: newProgressConfig(cfg), maxMsg: maxMsg, cb: callbacks{log: logs.New(cfg.Logger)}}, nil
}

func (e *engine) close() error { return e.closeContext(context.Background()) }

func (e *engine) closeContext(ctx context.Context) error {
	err := e.core.Close(ctx)
	if cerr := e.cb.waitContext(ctx); err == nil {
		err = cerr
	}
	return err
}

func (e *engine) terminate() error {
	err := e.core.Terminate()
	e.cb.wait()
	return err
}

// Pool is a pool of worker processes: Python's multiprocessing.Pool. Work
// goes in through the package-level functions [Map], [Imap],
// [ImapUnordered], [Starmap], [Apply], [ApplyAsync], [MapAsync] (and
// [Submit]), which take the pool as an argument because Go methods cannot
// have type parameters.
//
// Unlike Python's, a Pool survives its workers: a worker that dies (crash,
// os.Exit, OOM kill, a signal) fails only the task it was running, with an
// error matching [ErrWorkerDied], and is replaced; tasks can have time
// limits and be cancelled through their context; workers can be recycled
// by task count, memory or age.
//
// A Pool is safe for concurrent use. Close it when done (defer p.Close()).
type Pool struct{ e *engine }

func (p *Pool) engine() *engine { return p.e }

// NewPool starts a pool of n worker processes (0 means [CPUCount]), all at
// once, and returns when every worker is ready (has run its
// [Initializer]). If a worker cannot start, NewPool stops the others and
// returns the error. ctx bounds the start-up only.
func NewPool(ctx context.Context, n int, opts ...PoolOption) (*Pool, error) {
	e, err := newEngine(ctx, n, opts)
	if err != nil {
		return nil, err
	}
	return &Pool{e: e}, nil
}

// Size returns the number of workers the pool keeps.
func (p *Pool) Size() int { return p.e.size }

// Close stops the pool from taking work, waits for queued and running tasks
// and their callbacks to finish, then stops the workers and waits for them
// to exit: Python's close() followed by join(). Called from a callback of
// this pool it does not wait for that callback or those queued behind it
// (see [AsyncResult.OnResult]). It is safe to call more than once and
// after Terminate. It takes no context so that it can be deferred;
// [Pool.CloseContext] bounds the wait.
func (p *Pool) Close() error { return p.e.close() }

// CloseContext is Close bounded by ctx: if ctx ends before the work is done,
// it proceeds as [Pool.Terminate] (unfinished tasks fail with
// [ErrPoolClosed], the workers are killed and reaped) and returns an error
// wrapping ctx.Err(). If ctx ends while callbacks are still running, it
// returns such an error without waiting for them; they go on.
func (p *Pool) CloseContext(ctx context.Context) error { return p.e.closeContext(ctx) }

// Terminate stops the pool at once: unfinished tasks fail with
// [ErrPoolClosed], workers (and anything they started) are killed, and it
// returns once they are reaped and the pending callbacks have run (from a
// callback: all but that one and those queued behind it).
func (p *Pool) Terminate() error { return p.e.terminate() }

// Join waits, like Python's join(), until a Close or Terminate running in
// another goroutine has finished and the pending callbacks have run (from a
// callback: all but that one and those queued behind it); it fails if
// neither was called. If ctx ends first it returns an error wrapping
// ctx.Err().
func (p *Pool) Join(ctx context.Context) error {
	if err := p.e.core.Join(ctx); err != nil {
		return err
	}
	return p.e.cb.waitContext(ctx)
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats { return statsOf(p.e.core.Stats()) }

// Apply runs f(arg) on a worker and waits for the result: Python's apply.
// It is ApplyAsync followed by Get. (The task is marked as awaited at
// once, which lets the local engine leave the worker's stream to this
// Get between consecutive Applies: see internal/core's direct.go.)
func Apply[In, Out any](ctx context.Context, w Workers, f Func[In, Out], arg In, opts ...CallOption) (Out, error) {
	return applyAsync(ctx, w, f, arg, opts, true).Get(ctx)
}

// ApplyAsync submits f(arg) and returns at once: Python's apply_async. The
// argument is encoded before it returns; an argument that cannot be
// encoded, a closed pool or an unregistered function make the result fail
// at once. Cancelling ctx cancels the task (queued: dropped; running: its
// context in the worker is cancelled, and the worker is killed if it does
// not stop within the grace period).
func ApplyAsync[In, Out any](ctx context.Context, w Workers, f Func[In, Out], arg In, opts ...CallOption) *AsyncResult[Out] {
	return applyAsync(ctx, w, f, arg, opts, false)
}

// applyAsync is ApplyAsync; awaited says that Get follows at once (Apply).
func applyAsync[In, Out any](ctx context.Context, w Workers, f Func[In, Out], arg In, opts []CallOption, awaited bool) *AsyncResult[Out] {
	e := w.engine()
	a := new(struct {
		r AsyncResult[Out]
		c call[Out]
	})
	a.r.p = &a.c.p
	startCall(&a.c, ctx, e, f, arg, callOptions(opts), awaited)
	return &a.r
}

// call is the state of one task in flight — its promise, its core task,
// its decoder and a small buffer for its argument — kept in one allocation
// with the AsyncResult or Future that exposes it.
type call[T any] struct {
	p   promise[T]
	t   core.Task
	out wire.Value[T]
	res wire.Outgoing // the argument's resources (one inline)
	inl [16]byte
	// ts holds &t for submit: a variadic slice made at the call would
	// escape through the engine interface, one allocation per task.
	ts [1]*core.Task
}

// startCall encodes f(arg) into c and submits it; any failure settles c's
// promise at once.
func startCall[In, Out any](c *call[Out], ctx context.Context, e *engine, f Func[In, Out], arg In, cfg callConfig, awaited bool) {
	c.p.cb = &e.cb
	err := cfg.err
	if err == nil {
		err = f.check()
	}
	if err == nil {
		err = e.checkTransfer(f.e)
	}
	if err == nil {
		var payload []byte
		c.res.NoDescriptors = !e.core.CanTransfer()
		payload, err = wire.AppendOut(f.in, c.inl[:0], arg, &c.res)
		if err != nil {
			err = fmt.Errorf("multiproc: argument of %q: %w", f.e.Name, err)
		} else if err = e.checkSize(f.e.Name, "argument", payload); err != nil {
			c.res.Close()
		} else {
			c.out = f.out
			c.t = core.Task{Fn: f.e, Payload: payload, Res: c.res.Res, Items: 1, Ctx: ctx, Timeout: cfg.timeout, Sink: c}
			if aw, ok := e.core.(eng.Awaiter); ok {
				c.p.aw, c.p.at = aw, &c.t
				c.t.Awaited = awaited
			}
			c.ts[0] = &c.t
			err = e.submit(c.ts[:]...) // takes the resources, even when it fails
		}
	}
	if err != nil {
		var zero Out
		c.p.settle(zero, err)
	}
}

// TaskDone receives the outcome from the pool.
func (c *call[T]) TaskDone(res core.Result) {
	if res.Err != nil {
		var zero T
		c.p.settleAs(zero, res.Err, res.Outcome == eng.Cancelled)
		return
	}
	if res.Res == nil {
		c.p.settle(c.out.Decode(res.Data))
		return
	}
	v, err := wire.DecodeIn(c.out, res.Data, res.Res)
	res.Res.Close() // what the decoder did not take
	c.p.settle(v, err)
}

// outgoing returns the resource table for an argument sent through e: an
// engine that cannot carry descriptors gets an argument holding one
// refused, with the resource's path.
func (e *engine) outgoing() wire.Outgoing {
	return wire.Outgoing{NoDescriptors: !e.core.CanTransfer()}
}

// closeSent closes the descriptors a resource table owns.
func closeSent(res []wire.Sent) {
	o := wire.Outgoing{Res: res}
	o.Close()
}

// decodeChunk decodes a chunk's results into dst, taking their resources
// from r.
func decodeChunk[Out any](c wire.Value[Out], dst []Out, r core.Result) ([]Out, error) {
	if r.Res == nil {
		return c.DecodeSlice(dst, r.Data)
	}
	defer r.Res.Close()
	return wire.DecodeSliceIn(c, dst, r.Data, r.Res)
}

// Map runs f on every item, in chunks, and returns the results in order:
// Python's Pool.map. It fails with the first error any item returned, and
// then cancels the work still queued. It is MapAsync followed by Get.
func Map[In, Out any](ctx context.Context, w Workers, f Func[In, Out], items []In, opts ...CallOption) ([]Out, error) {
	return MapAsync(ctx, w, f, items, opts...).Get(ctx)
}

// Starmap is Map over argument tuples, Python's starmap: register a
// two-argument function with [Register2] and pass [Args2] values.
func Starmap[A, B, Out any](ctx context.Context, w Workers, f Func[Args2[A, B], Out], args []Args2[A, B], opts ...CallOption) ([]Out, error) {
	return Map(ctx, w, f, args, opts...)
}

// MapAsync is the asynchronous Map: Python's map_async. Items are encoded
// before it returns (an unencodable item fails the result at once).
func MapAsync[In, Out any](ctx context.Context, w Workers, f Func[In, Out], items []In, opts ...CallOption) *AsyncResult[[]Out] {
	e := w.engine()
	r := &AsyncResult[[]Out]{p: newPromise[[]Out](&e.cb)}
	cfg := callOptions(opts)
	if err := cfg.err; err != nil {
		r.p.settle(nil, err)
		return r
	}
	if err := f.check(); err != nil {
		r.p.settle(nil, err)
		return r
	}
	if err := e.checkTransfer(f.e); err != nil {
		r.p.settle(nil, err)
		return r
	}
	n := len(items)
	if n == 0 {
		r.p.settle([]Out{}, nil)
		return r
	}
	cs := cfg.chunksize
	if cs <= 0 {
		cs = defaultChunksize(n, e.size)
	}
	out := make([]Out, n)
	// Written through once: populated in bulk, not faulted in a page at a
	// time (see internal/pages).
	pages.Populate(out)
	mctx, cancel := context.WithCancel(ctx)
	bar := e.progress.start(f.e.Name, n)
	nchunks := (n + cs - 1) / cs
	var remaining atomic.Int64
	remaining.Store(int64(nchunks))
	fail := func(err error) {
		if r.p.settle(nil, err) {
			cancel()
			bar.abort()
		}
	}
	// Chunks are encoded and submitted a few at a time, so the first ones
	// run while the rest are encoded.
	const group = 8
	tasks := make([]*core.Task, 0, min(nchunks, group))
	for lo := 0; lo < n; lo += cs {
		hi := min(lo+cs, n)
		res := e.outgoing()
		payload, err := wire.AppendSliceOut(f.in, chunkBufs.Get(), items[lo:hi], &res)
		if err == nil {
			err = e.checkSize(f.e.Name, fmt.Sprintf("chunk of %d items", hi-lo), payload)
		}
		if err != nil {
			res.Close()
			cancel()
			bar.abort()
			r.p.settle(nil, fmt.Errorf("multiproc: items %d..%d of %q: %w", lo, hi-1, f.e.Name, err))
			return r // the chunks already submitted are cancelled with mctx
		}
		tasks = append(tasks, &core.Task{
			Fn: f.e, Chunk: true, Payload: payload, Res: res.Res, Items: hi - lo, Ctx: mctx, Timeout: cfg.timeout,
			Done: func(res core.Result) {
				if res.Err != nil {
					if res.Res != nil {
						res.Res.Close()
					}
					fail(res.Err)
					return
				}
				// The worker answered, so nothing writes the payload any more.
				chunkBufs.Put(payload)
				got, err := decodeChunk(f.out, out[lo:lo], res)
				if err == nil && len(got) != hi-lo {
					err = fmt.Errorf("multiproc: %q: chunk of %d items returned %d results", f.e.Name, hi-lo, len(got))
				}
				if err != nil {
					fail(err)
					return
				}
				bar.add(hi - lo)
				if remaining.Add(-1) == 0 {
					cancel()
					bar.done()
					r.p.settle(out, nil)
				}
			},
		})
		if len(tasks) == group || hi == n {
			if err := e.submit(tasks...); err != nil {
				cancel()
				bar.abort()
				r.p.settle(nil, err)
				return r
			}
			tasks = tasks[:0]
		}
	}
	return r
}

// maxAutoChunk caps the automatic chunk size. Python's default (four chunks
// per worker) makes megabyte chunks of a large map: fresh memory for each,
// and on virtual machines a first-touch page fault costs microseconds per
// page. Chunks of tens of thousands of items keep buffers reusable while
// per-chunk costs stay negligible (measured with mpbench: 4096 was slower,
// 16384 to 65536 alike).
const maxAutoChunk = 32768

// defaultChunksize is Python's default, about four chunks per worker, capped
// at maxAutoChunk items.
func defaultChunksize(n, workers int) int {
	return max(1, min((n+4*workers-1)/(4*workers), maxAutoChunk))
}

// chunkBufs recycles the encoded chunks of maps: a large map would otherwise
// allocate (and on first touch fault in) its whole input once more. It
// keeps them across garbage collections (see internal/bufcache), up to
// 16 MiB: a map of a million 8-byte items in flight at once.
var chunkBufs = &bufcache.Cache{Max: 16 << 20, MaxBuf: 1 << 20}
