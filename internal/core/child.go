package core

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/errs"
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
	// files arrived with the task frame (SCM_RIGHTS). The function can
	// reach them through TaskFiles while it runs; they are closed after.
	files []*os.File
}

type filesKey struct{}

// TaskFiles returns the descriptors that arrived with the task whose
// context ctx is, in a pool worker, and nil elsewhere. They are valid while
// the task runs and closed when it returns; a caller that keeps one must
// duplicate it. It is the hook through which the resources layer will hand
// descriptors to decoders.
func TaskFiles(ctx context.Context) []*os.File {
	fs, _ := ctx.Value(filesKey{}).([]*os.File)
	return fs
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

	iso     *childIso // limits, CPU guard, output capture (issue 14)
	scratch []byte    // result frame under construction (execute's goroutine only)
	limit   int       // largest result the pool accepts (Config.MaxMessageSize)

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
	initName, initArg := d.String(), d.Bytes()
	procs := int(d.Uvarint())
	limit := d.Uvarint()
	if d.Err() == nil && (limit == 0 || limit > math.MaxUint32) {
		fmt.Fprintf(os.Stderr, "multiproc: worker %d: bad message limit %d in start payload\n", os.Getpid(), limit)
		return 2
	}
	if d.Err() != nil {
		fmt.Fprintf(os.Stderr, "multiproc: worker %d: bad start payload: %v\n", os.Getpid(), d.Err())
		return 2
	}
	wf := os.NewFile(wordsFD, "multiproc-words")
	words, err := shmword.Open(wf)
	wf.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "multiproc: worker %d: %v\n", os.Getpid(), err)
		return 2
	}
	childWords.Store(words)
	// One worker is one CPU's worth of work: with a single P, hand-offs
	// between its goroutines stay on one thread instead of waking another
	// CPU, which halves a small task's round trip on a virtual machine.
	runtime.GOMAXPROCS(procs)
	w := &childWorker{s: s, words: words, tasks: make(chan childTask, 2*maxWindow), cancelled: map[uint64]bool{},
		// A result frame adds a few bytes to the result: keep the frame
		// within what its 4-byte header can say.
		limit: int(min(limit, math.MaxUint32-frameSlack))}
	// Task frames may carry descriptors: read them with recvmsg (a plain
	// read would discard them), and accept tasks up to the pool's limit.
	s.Reader.SetLimit(readerLimit(w.limit))
	s.Reader.ReceiveFiles(s.Conn)
	// Limits apply before any user code: the initializer is user code.
	iso, err := startIso(d, words)
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
	if initName != "" {
		if err := runInit(initName, initArg); err != nil {
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

func runInit(name string, arg []byte) error {
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
	_, err = e.Call(context.Background(), arg, nil)
	returned = true
	return err
}

// read parses frames from the pool. It runs beside execute so that a cancel
// reaches a task while it runs. End of stream means the parent is gone.
func (w *childWorker) read() {
	fns := map[uint64]*registry.Entry{}
	var ord uint64
	for {
		kind, payload, err := w.s.Reader.Next()
		if err != nil {
			exit(boot.ExitParentDied)
		}
		switch kind {
		case kindTask:
			ord++
			t, err := parseTask(fns, payload)
			if err != nil {
				fmt.Fprintf(os.Stderr, "multiproc: worker %d: %v\n", os.Getpid(), err)
				exit(2)
			}
			t.ord = ord
			t.files = w.s.Reader.Files()
			w.tasks <- t
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

func parseTask(fns map[uint64]*registry.Entry, payload []byte) (childTask, error) {
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
	if d.Err() != nil {
		return t, fmt.Errorf("multiproc: corrupt task frame (ref %d): %w", ref, d.Err())
	}
	if t.fn == nil {
		return t, fmt.Errorf("multiproc: corrupt task frame: function ref %d was never defined: %w", ref, wire.ErrCorrupt)
	}
	t.flags = flags
	t.payload = append(getPayload(), d.Rest()...)
	return t, nil
}

// payloads recycles task argument buffers: the reader fills one per task,
// the executor returns it after the run.
var payloads sync.Pool

func getPayload() []byte {
	if b, ok := payloads.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

func putPayload(b []byte) {
	if cap(b) == 0 || cap(b) > 16<<20 {
		return
	}
	payloads.Put(&b)
}

func (w *childWorker) execute() {
	for t := range w.tasks {
		w.run(t)
		for _, f := range t.files {
			f.Close()
		}
		putPayload(t.payload)
		if len(w.tasks) == 0 {
			w.flush()
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
	deadline time.Time  // zero without a budget
	files    []*os.File // TaskFiles

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
	if _, ok := key.(filesKey); ok && len(c.files) > 0 {
		return c.files
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
	w.mu.Lock()
	cancelled := t.flags&flagCancelled != 0 || w.cancelled[t.ord]
	delete(w.cancelled, t.ord)
	var ctx *taskCtx
	if !cancelled {
		ctx = &taskCtx{files: t.files}
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
	if cancelled {
		frame = append(frame, statusCancelled)
		frame = binary.LittleEndian.AppendUint64(frame, 0)
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
	w.scratch = w.appendResult(frame)
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
	if _, err := w.s.Conn.Write(b); err != nil {
		exit(boot.ExitParentDied)
	}
}
