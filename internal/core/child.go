package core

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/bufcache"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/pages"
	"github.com/multiproc-go/multiproc/internal/registry"
	"github.com/multiproc-go/multiproc/internal/shmword"
	"github.com/multiproc-go/multiproc/internal/wire"
)

func init() {
	boot.Handle("worker", func(s *boot.Session) int {
		code := serveWorker(s)
		recordExit(exitLibrary, code)
		return code
	})
}

// maxWindow bounds the tasks a pool hands one worker ahead; the worker's
// queue is larger, so its reader never blocks and cancels always get through.
const maxWindow = 512

type childTask struct {
	ord     uint64
	fn      *registry.Entry
	flags   byte
	payload []byte
	budget  time.Duration // the task's time budget, 0 for none (flagBudget)
	// res is the task's resource table (flagRes), with the descriptors
	// that arrived with the frame; lost says they could not be received.
	res  []childRes
	lost bool
	// wake, set instead of a task, makes an idle executor apply the
	// evictions that came in (see childWorker.evicts).
	wake bool
}

// pendingEvict is an evict frame: resources to drop once the tasks that
// came before it (ordinals up to after) have run.
type pendingEvict struct {
	after uint64
	ids   []uint64
}

// worker is the child side of a pool worker.
type childWorker struct {
	s     *boot.Session
	words *shmword.Words
	tasks chan childTask

	mu          sync.Mutex
	running     uint64          // ordinal being run, 0 when idle
	runningCtx  *taskCtx        // the running task's context
	budgetTimer *time.Timer     // ends the running task's budget; one per worker, reset per task
	cancelled   map[uint64]bool // ordinals cancelled before they ran
	evicts      []pendingEvict  // evict frames not yet applied, in order

	iso     *childIso           // limits, CPU guard, output capture (issue 14)
	scratch []byte              // result frame under construction (execute's goroutine only)
	limit   int                 // largest result the pool accepts (Config.MaxMessageSize)
	cache   map[uint64]*keptRes // resources held (execute's goroutine only)
	lastRun uint64              // ordinal of the last task run (execute's goroutine only)
	out     wire.Outgoing       // the running task's result's resources

	outMu    sync.Mutex
	outLen   int       // bytes of unsent result frames in the shared area
	outSince time.Time // when the oldest unsent result was added
	timer    *time.Timer
}

// flushDelay bounds how long a finished result may wait in the worker's
// buffer while the worker runs further tasks.
const flushDelay = 200 * time.Microsecond

func serveWorker(s *boot.Session) int {
	d := wire.NewBuf(s.Start.Payload)
	isoIn, err := readIso(d)
	if err != nil {
		fmt.Fprintf(os.Stderr, "multiproc: worker %d: bad start payload: %v\n", os.Getpid(), err)
		return 2
	}
	initName, initArg := d.String(), d.Bytes()
	procs := int(d.Uvarint())
	limit := d.Uvarint()
	if d.Err() == nil && (limit == 0 || limit > math.MaxUint32) {
		fmt.Fprintf(os.Stderr, "multiproc: worker %d: bad message limit %d in start payload\n", os.Getpid(), limit)
		return 2
	}
	files := s.Files() // the shared page, the initializer's resources, the isolation's files
	if d.Err() != nil || len(files) < 1+isoIn.files() {
		fmt.Fprintf(os.Stderr, "multiproc: worker %d: bad start payload: %v (%d files)\n", os.Getpid(), d.Err(), len(files))
		return 2
	}
	isoFiles := files[len(files)-isoIn.files():]
	files = files[:len(files)-isoIn.files()]
	initRes, err := parseResTable(d, files[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "multiproc: worker %d: bad start payload: %v\n", os.Getpid(), err)
		return 2
	}
	words, err := shmword.Open(files[0])
	files[0].Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "multiproc: worker %d: %v\n", os.Getpid(), err)
		return 2
	}
	childWords.Store(words)
	// One worker is one CPU's worth of work: with a single P, hand-offs
	// between its goroutines stay on one thread instead of waking another
	// CPU, which halves a small task's round trip on a virtual machine.
	runtime.GOMAXPROCS(procs)
	w := &childWorker{s: s, words: words, tasks: make(chan childTask, 2*maxWindow), cancelled: map[uint64]bool{}, cache: map[uint64]*keptRes{},
		// A result frame adds a few bytes to the result: keep the frame
		// within what its 4-byte header can say.
		limit: int(min(limit, math.MaxUint32-frameSlack))}
	// Task frames may carry descriptors: read them with recvmsg (a plain
	// read would discard them), and accept tasks up to the pool's limit.
	s.Reader.SetLimit(readerLimit(w.limit))
	s.Reader.ReceiveFiles(s.Conn)
	// Limits apply before any user code: the initializer is user code.
	iso, err := startIso(isoIn, isoFiles)
	if err != nil {
		buf, off := wire.BeginFrame(nil, kindInit)
		buf = append(buf, statusError)
		buf = registry.AppendFailure(buf, limitsName, err)
		if wire.EndFrame(buf, off, 0) == nil {
			s.Conn.Write(buf)
		}
		return 1
	}
	w.iso = iso
	// The initializer's resources stay for the worker's life.
	w.install(initRes, true)
	in := &taskIn{w: w, res: initRes}
	if initName != "" {
		err := runInit(initName, initArg, in)
		in.close()
		if err != nil {
			buf, off := wire.BeginFrame(nil, kindInit)
			buf = append(buf, statusError)
			buf = registry.AppendFailure(buf, initName, err)
			if wire.EndFrame(buf, off, 0) == nil {
				s.Conn.Write(buf)
			}
			return 1
		}
	}
	if _, err := s.Conn.Write(wire.AppendFrame(nil, kindInit, []byte{statusOK})); err != nil {
		return boot.ExitParentDied
	}
	go w.read()
	w.execute()
	return 0
}

func runInit(name string, arg []byte, in wire.Incoming) error {
	e, err := registry.Lookup(name)
	if err != nil {
		return err
	}
	returned := false
	defer func() {
		if !returned { // runtime.Goexit (panics are recovered in Call)
			fmt.Fprintf(os.Stderr, "multiproc: initializer %q called runtime.Goexit; worker %d exits\n", name, os.Getpid())
			exit(2)
		}
	}()
	_, err = e.Call(wire.WithResources(context.Background(), in, nil), arg, nil)
	returned = true
	return err
}

// read parses frames from the pool. It runs beside execute so that a cancel
// reaches a task while it runs. End of stream means the parent is gone.
func (w *childWorker) read() {
	fns := map[uint64]*registry.Entry{}
	var ord uint64
	for {
		kind, payload, err := w.next()
		if err != nil {
			exit(boot.ExitParentDied)
		}
		switch kind {
		case kindTask:
			ord++
			t, err := parseTask(fns, payload, w.s.Reader.Files(), w.s.Reader.FilesLost())
			if err != nil {
				fmt.Fprintf(os.Stderr, "multiproc: worker %d: %v\n", os.Getpid(), err)
				exit(2)
			}
			t.ord = ord
			w.tasks <- t
		case kindEvict:
			d := wire.NewBuf(payload)
			n := d.Uvarint()
			if n > uint64(len(payload)) {
				os.Exit(2)
			}
			ids := make([]uint64, 0, n)
			for range n {
				ids = append(ids, d.Uvarint())
			}
			if d.Err() != nil {
				os.Exit(2)
			}
			// Applied in order with the tasks (the ones before may still
			// use them), by the executor; an idle one is woken. Never a
			// blocking send: the reader must stay free for cancels.
			w.mu.Lock()
			w.evicts = append(w.evicts, pendingEvict{after: ord, ids: ids})
			w.mu.Unlock()
			select {
			case w.tasks <- childTask{wake: true}:
			default: // full: the executor is busy and applies them soon
			}
		case kindCancel:
			o, n := binary.Uvarint(payload)
			if n <= 0 {
				exit(2)
			}
			w.mu.Lock()
			if o == w.running && w.runningCtx != nil {
				w.runningCtx.cancel(context.Canceled)
			} else if o > w.running {
				w.cancelled[o] = true
			}
			w.mu.Unlock()
		case kindExit:
			close(w.tasks)
			return
		default:
			fmt.Fprintf(os.Stderr, "multiproc: worker %d: unexpected frame kind %#x\n", os.Getpid(), kind)
			exit(2)
		}
	}
}

// next returns the next frame from the pool. It waits in the net
// package's poller and reads without blocking (Reader.TryNext), through
// the scheduler: that read is what wakes the runtime's system monitor,
// asleep while the worker was idle, so that a long task is preempted like
// any goroutine (see wire's recvmsgNow).
func (w *childWorker) next() (kind byte, payload []byte, err error) {
	rc, err := w.s.Conn.SyscallConn()
	if err != nil {
		return 0, nil, err
	}
	var ok bool
	rerr := rc.Read(func(uintptr) bool {
		kind, payload, ok, err = w.s.Reader.TryNext()
		return ok || err != nil
	})
	if err == nil && !ok {
		err = rerr
	}
	return kind, payload, err
}

func parseTask(fns map[uint64]*registry.Entry, payload []byte, files []*os.File, lost bool) (childTask, error) {
	d := wire.NewBuf(payload)
	ref := d.Uvarint()
	flags := d.Byte()
	var t childTask
	if flags&flagDefine != 0 {
		name := d.String()
		e, err := registry.Lookup(name)
		if err != nil {
			// Answer the task with the lookup error (ErrNotRegistered)
			// rather than dying: the parent registered something this
			// child did not. Like a registered function that fails, the
			// stub returns dst, where the result would have gone.
			t.fn = &registry.Entry{Name: name,
				Call: func(_ context.Context, _, dst []byte) ([]byte, error) { return dst, err },
				CallChunk: func(_ context.Context, _, dst []byte) ([]byte, int, error) {
					return dst, 0, err
				}}
		} else {
			t.fn = e
		}
		fns[ref] = t.fn
	} else {
		t.fn = fns[ref]
	}
	if flags&flagBudget != 0 {
		b := d.Uvarint()
		t.budget = time.Duration(min(b, math.MaxInt64))
		if t.budget <= 0 {
			t.budget = 1 // spent already: the context ends at once
		}
	}
	if flags&flagRes != 0 {
		var err error
		if lost {
			// No descriptors came: read the table for its IDs alone.
			t.res, err = parseResTable(d, nil)
			if err != nil {
				err = nil
				t.res = nil
			}
			for i := range t.res {
				t.res[i].files = nil
			}
			t.lost = true
		} else if t.res, err = parseResTable(d, files); err != nil {
			closeFiles(files)
			return t, fmt.Errorf("multiproc: corrupt task frame (ref %d): %w", ref, err)
		}
	} else if len(files) > 0 {
		closeFiles(files)
		return t, fmt.Errorf("multiproc: corrupt task frame (ref %d): %d descriptors without a resource table: %w", ref, len(files), wire.ErrCorrupt)
	}
	if d.Err() != nil {
		return t, fmt.Errorf("multiproc: corrupt task frame (ref %d): %w", ref, d.Err())
	}
	if t.fn == nil {
		return t, fmt.Errorf("multiproc: corrupt task frame: function ref %d was never defined: %w", ref, wire.ErrCorrupt)
	}
	t.flags = flags
	rest, buf := d.Rest(), getPayload()
	if cap(buf) < len(rest) && len(rest) >= pages.Min {
		// A new large buffer, written through by the copy: populated in
		// bulk (internal/pages). A large allocation starts on a page, so
		// a raw chunk's arguments stay aligned for registry's CallChunk to
		// view them in place; smaller ones grow through append, as before.
		buf = make([]byte, 0, len(rest))
		pages.Populate(buf[:len(rest)])
	}
	t.payload = append(buf, rest...)
	return t, nil
}

// payloads recycles task argument buffers: the reader fills one per task,
// the executor returns it after the run. It keeps them across garbage
// collections (see internal/bufcache: fresh pages are costly to touch), up
// to 4 MiB, which only a worker that ran large Map chunks holds.
var payloads = &bufcache.Cache{Max: 4 << 20, MaxBuf: 1 << 20}

func getPayload() []byte { return payloads.Get() }

func putPayload(b []byte) { payloads.Put(b) }

func (w *childWorker) execute() {
	var (
		spin   spinPolicy
		idle   time.Time // when the worker ran out of tasks; zero while it has some
		rc     syscall.RawConn
		noTask = func() bool { return len(w.tasks) > 0 }
	)
	if spinReads {
		if c, err := w.s.Conn.SyscallConn(); err == nil {
			rc = c // nil otherwise: never polls
		}
	}
	for t := range w.tasks {
		if !idle.IsZero() {
			spin.saw(time.Since(idle))
			idle = time.Time{}
		}
		if t.wake {
			w.applyEvicts(w.lastRun)
			continue
		}
		w.applyEvicts(t.ord - 1)
		w.run(t)
		w.lastRun = t.ord
		w.applyEvicts(t.ord)
		putPayload(t.payload)
		if len(w.tasks) == 0 {
			w.flush()
			// Out of tasks: poll for the next one before sleeping when it
			// pays (spin.go). The read loop takes what arrived once this
			// goroutine blocks on w.tasks. A task the read loop queued
			// meanwhile (it runs beside this goroutine when GOMAXPROCS > 1)
			// counts as an arrival.
			idle = time.Now()
			if rc != nil && spin.poll() {
				spin.polled(spinPending(rc, idle, noTask) || noTask())
			}
		}
	}
	w.flush()
}

// budgetSpent ends the running task's context with DeadlineExceeded if
// its budget is over (the one timer may fire late for an earlier task).
func (w *childWorker) budgetSpent() {
	w.mu.Lock()
	ctx := w.runningCtx
	w.mu.Unlock()
	if ctx != nil && !ctx.deadline.IsZero() && !time.Now().Before(ctx.deadline) {
		ctx.cancel(context.DeadlineExceeded)
	}
}

// taskCtx is a task's context in a worker: cancelled by the pool (a cancel
// frame) or by its budget, which one timer per worker measures. The
// standard library's WithTimeout would cost a timer and four allocations
// per task, a third of a small task's time in a worker; this costs one
// allocation and a timer reset. It implements AfterFunc, so contexts
// derived from it (WithCancel, WithTimeout) propagate its end without a
// goroutine each.
type taskCtx struct {
	deadline time.Time // zero without a budget
	in       wire.Incoming
	out      *wire.Outgoing

	mu    sync.Mutex
	done  chan struct{} // made on demand
	err   error
	after []*func()
}

func (c *taskCtx) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

func (c *taskCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *taskCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *taskCtx) Value(key any) any {
	switch key {
	case wire.IncomingKey:
		if c.in != nil {
			return c.in
		}
	case wire.OutgoingKey:
		if c.out != nil {
			return c.out
		}
	}
	return nil
}

func (c *taskCtx) String() string { return "multiproc.taskContext" }

// AfterFunc is what context.AfterFunc and the context package's
// propagation use for a parent of a type they do not know.
func (c *taskCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	fp := &f
	c.after = append(c.after, fp)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.after {
			if x == fp {
				c.after = append(c.after[:i], c.after[i+1:]...)
				return true
			}
		}
		return false
	}
}

func (c *taskCtx) cancel(err error) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	after := c.after
	c.after = nil
	c.mu.Unlock()
	for _, f := range after {
		go (*f)()
	}
}

func (w *childWorker) run(t childTask) {
	// What arrived is held from now on, whether the task runs or not: the
	// parent counts it as held.
	missing := w.install(t.res, false)
	in := &taskIn{w: w, res: t.res}
	defer in.close()
	defer in.closeOwn() // after the result went out (see closeOwn)
	w.mu.Lock()
	cancelled := t.flags&flagCancelled != 0 || w.cancelled[t.ord]
	delete(w.cancelled, t.ord)
	var ctx *taskCtx
	if !cancelled && !t.lost && missing == 0 {
		ctx = &taskCtx{in: in, out: &w.out}
		if t.budget > 0 {
			// The budget is relative: it starts now, in this process, so
			// the hosts' clocks need not agree.
			ctx.deadline = time.Now().Add(t.budget)
			if w.budgetTimer == nil {
				w.budgetTimer = time.AfterFunc(t.budget, w.budgetSpent)
			} else {
				w.budgetTimer.Reset(t.budget)
			}
		}
		w.running, w.runningCtx = t.ord, ctx
	}
	w.mu.Unlock()

	// The frame is built in a scratch buffer owned by this goroutine, then
	// copied to the output buffer, which the flush timer may be writing out.
	// Layout: ordinal, status, fixed 8-byte duration, data.
	frame, _ := wire.BeginFrame(w.scratch[:0], kindResult)
	frame = binary.AppendUvarint(frame, t.ord)
	if cancelled || missing != 0 {
		st := byte(statusCancelled)
		if !cancelled {
			st = statusResend
		}
		frame = append(frame, st)
		frame = binary.LittleEndian.AppendUint64(frame, 0)
		w.scratch = w.appendResult(frame)
		return
	}
	if t.lost {
		frame = append(frame, statusError)
		frame = binary.LittleEndian.AppendUint64(frame, 0)
		frame = registry.AppendFailure(frame, t.fn.Name, fmt.Errorf("%w: worker %d could not receive the descriptors of the task's resources (its descriptor table is full)", errs.ErrFDLimit, os.Getpid()))
		w.scratch = w.appendResult(frame)
		return
	}
	statusAt := len(frame)
	frame = append(frame, statusOK)
	frame = binary.LittleEndian.AppendUint64(frame, 0)
	dataAt := len(frame)
	w.words.Store(wordStarted, t.ord)
	w.iso.begin()
	start := time.Now()
	var (
		n   int
		err error
	)
	func() {
		returned := false
		defer func() {
			if !returned {
				// Panics are recovered in Call, so the task called
				// runtime.Goexit (t.FailNow, say): this goroutine is
				// ending and the task would never be answered. Die, so
				// that the pool fails it like any other death.
				fmt.Fprintf(os.Stderr, "multiproc: task %q called runtime.Goexit; worker %d exits\n", t.fn.Name, os.Getpid())
				exit(2)
			}
		}()
		if t.flags&flagChunk != 0 {
			frame, n, err = t.fn.CallChunk(ctx, t.payload, frame)
		} else {
			frame, err = t.fn.Call(ctx, t.payload, frame)
		}
		returned = true
	}()
	dur := time.Since(start)
	output := w.iso.end(w.words, err != nil)
	// The budget timer is left as it is: resetting it for the next task
	// costs the same whether it is armed or not, and a late firing finds a
	// task whose deadline has not come.
	w.mu.Lock()
	w.running, w.runningCtx = 0, nil
	w.mu.Unlock()
	ctx.cancel(context.Canceled) // what the task left watching it may end

	chunk := t.flags&flagChunk != 0
	if err == nil && len(frame)-dataAt > w.limit {
		// Too large for the pool to read: answer with an error that says
		// so (the parent would otherwise see a frame over its limit and
		// kill this worker).
		what := "result"
		if chunk {
			what = "result of a Map chunk"
		}
		err = &errs.TooLargeError{What: what, Func: t.fn.Name, Size: int64(len(frame) - dataAt), Limit: int64(w.limit)}
		frame = frame[:dataAt]
		n, chunk = 0, false
	}
	if chunk && err != nil && len(frame)-dataAt > w.limit {
		// The results before the failing item are too large to send: send
		// the failure alone.
		frame, chunk = frame[:dataAt], false
	}
	// A result that holds resources (a partial chunk's results too) ends
	// with their table and goes out at once with their descriptors.
	var fds []int
	hasRes := len(w.out.Res) > 0 && (err == nil || chunk)
	if hasRes {
		var derr error
		if fds, derr = wire.Descriptors(w.out.Res); derr != nil {
			err = fmt.Errorf("multiproc: %q: passing the result's resources: %w", t.fn.Name, derr)
			frame, chunk, hasRes, n = frame[:dataAt], false, false, 0
		}
	}
	if err != nil {
		if chunk {
			// CallChunk appended the n results before the failure.
			res := append([]byte(nil), frame[dataAt:]...)
			frame = binary.AppendUvarint(frame[:dataAt], uint64(n))
			frame = wire.AppendBytes(frame, res)
			frame[statusAt] = statusPartial
		} else {
			frame = frame[:dataAt]
			frame[statusAt] = statusError
		}
		frame = registry.AppendFailureOutput(frame, t.fn.Name, err, output)
	}
	binary.LittleEndian.PutUint64(frame[statusAt+1:], uint64(dur))
	if hasRes {
		frame[statusAt] |= statusRes
		frame = wire.AppendTrailer(frame, w.out.Res)
		w.scratch = w.sendWithFiles(frame, fds)
	} else {
		w.scratch = w.appendResult(frame)
	}
	// The kernel holds its own references to what went out; a write that
	// fails ends this process (sendWithFiles), so reaching here with hasRes
	// means the result's resources were handed to the parent.
	w.out.Finish(hasRes)
	// Completion is published only once the result has left: written to the
	// socket or to the shared area, where the parent finds it even if this
	// process dies now. Until then the parent counts the task as running
	// (so a death fails or retries it, and a cancel can still reach it).
	w.words.Store(wordCompleted, t.ord)
}

// appendResult adds a result frame (header included) to the output area
// and makes sure it is flushed soon even if the next task runs long. The
// area is shared with the parent, so a result that is finished but not yet
// sent survives this process's death. It returns frame's buffer for reuse.
func (w *childWorker) appendResult(frame []byte) []byte {
	if err := wire.EndFrame(frame, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "multiproc: worker %d: result too large: %v\n", os.Getpid(), err)
		exit(2)
	}
	w.outMu.Lock()
	defer w.outMu.Unlock()
	area := w.words.Area()
	if w.outLen == 0 && len(w.tasks) == 0 {
		// Nothing else to do and nothing unsent before it: the result goes
		// out now, as the flush after this task would send it, without the
		// copy into the area or the flush timer (a synchronous Apply's
		// path).
		w.write(frame)
		return reuse(frame)
	}
	if len(frame) >= len(area)/8 || w.outLen+len(frame) > len(area) {
		w.flushLocked()
		if len(frame) >= len(area)/8 {
			// A big result (a map chunk) goes out now, before the next task
			// can start, so it cannot be lost either; copying it into the
			// area would cost more than the write saves.
			w.write(frame)
			return reuse(frame)
		}
	}
	first := w.outLen == 0
	copy(area[w.outLen:], frame)
	w.outLen += len(frame)
	// The length is published after the bytes: the parent trusts only what
	// the length covers.
	w.words.Store(wordOutLen, uint64(w.outLen))
	if first {
		w.outSince = time.Now()
	}
	if w.outLen >= len(area)/2 || time.Since(w.outSince) >= flushDelay {
		w.flushLocked()
	} else if w.timer == nil {
		w.timer = time.AfterFunc(flushDelay, w.flush)
	} else if first {
		w.timer.Reset(flushDelay)
	}
	return reuse(frame)
}

// sendWithFiles sends a result frame (header included) that holds
// resources, with their descriptors, after the results waiting in the
// shared area, which cannot carry descriptors.
func (w *childWorker) sendWithFiles(frame []byte, fds []int) []byte {
	if len(fds) > 0 {
		frame = slices.Insert(frame, wire.HeaderSize, binary.AppendUvarint(nil, uint64(len(fds)))...)
		frame[wire.HeaderSize-1] |= wire.FlagFiles
	}
	if err := wire.EndFrame(frame, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "multiproc: worker %d: result too large: %v\n", os.Getpid(), err)
		os.Exit(2)
	}
	w.outMu.Lock()
	defer w.outMu.Unlock()
	w.flushLocked()
	var err error
	if len(fds) > 0 {
		err = wire.WriteFiles(w.s.Conn, frame, []wire.Attach{{At: 0, Fds: fds}})
	} else {
		_, err = w.s.Conn.Write(frame)
	}
	if err != nil {
		os.Exit(boot.ExitParentDied)
	}
	return reuse(frame)
}

func reuse(frame []byte) []byte {
	if cap(frame) > 1<<20 {
		return nil // do not pin a huge scratch buffer
	}
	return frame[:0]
}

func (w *childWorker) flush() {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	w.flushLocked()
}

func (w *childWorker) flushLocked() {
	if w.outLen == 0 {
		return
	}
	w.write(w.words.Area()[:w.outLen])
	w.outLen = 0
	w.words.Store(wordOutLen, 0)
	if w.timer != nil {
		w.timer.Stop() // nothing left to flush: no wake-up for nothing
	}
}

func (w *childWorker) write(b []byte) {
	// A raw write first (no system call through the scheduler: the read
	// of the task already woke the system monitor, see next); what the
	// socket does not take goes through the connection, which waits for
	// room.
	b = b[writeNow(w.s.Conn, b):]
	if len(b) == 0 {
		return
	}
	if _, err := w.s.Conn.Write(b); err != nil {
		exit(boot.ExitParentDied)
	}
}
