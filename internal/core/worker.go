package core

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/engine"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/registry"
	"github.com/multiproc-go/multiproc/internal/shmword"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// worker is the parent's side of one worker process.
type worker struct {
	p       *Pool
	name    string
	child   *boot.Child
	pid     int
	words   *shmword.Words
	started time.Time
	wake    chan struct{} // cap 1: the writer has something to send
	quit    chan struct{} // closed when the worker is dead

	// Protected by p.mu.
	assigned    []*Task  // in the order sent; assigned[0] is (or will be) running
	unsent      int      // the last unsent tasks of assigned are not yet written
	done        uint64   // results received: ordinal of assigned[0] is done+1
	given       int      // tasks ever assigned
	cancels     []uint64 // ordinals to cancel, for the writer
	exitPending bool     // the writer must send EXIT
	exitSent    bool
	retiring    bool
	dead        bool
	needWake    bool
	headGen     uint64
	headTimer   *time.Timer
	busy        time.Duration
	tasks       int64
	rss         uint64
	rssChecked  time.Time

	// Held while frames are built and written, so they go out in order.
	writeMu  sync.Mutex
	fnRefs   map[*registry.Entry]uint64
	wbuf     []byte
	wbatch   []*Task
	wflags   []byte
	wcancels []uint64
	wsegs    []segment
	wiov     [][]byte
}

// spawn starts one worker and waits until its initializer ran.
func (p *Pool) spawn(ctx context.Context) (*worker, error) {
	words, f, err := shmword.New()
	if err != nil {
		return nil, err
	}
	initName := ""
	if p.cfg.Init != nil {
		initName = p.cfg.Init.Name
	}
	name := fmt.Sprintf("%s-%d", p.cfg.Name, workerSeq.Add(1))
	c, err := boot.Spawn(ctx, boot.Config{
		Role: "worker", Name: name, NewGroup: true,
		Payload: appendStartPayload(nil, initName, p.cfg.InitArg, p.cfg.MaxProcs),
		Files:   []*os.File{f},
		// Chunks of a map are often a megabyte or more.
		SocketBuffer: 2 << 20,
	})
	f.Close()
	if err != nil {
		words.Close()
		return nil, err
	}
	w := &worker{
		p: p, name: name, child: c, pid: c.Pid(), words: words, started: time.Now(),
		wake: make(chan struct{}, 1), quit: make(chan struct{}), fnRefs: map[*registry.Entry]uint64{},
	}
	if err := w.awaitInit(ctx, initName); err != nil {
		w.abandon()
		return nil, err
	}
	return w, nil
}

func (w *worker) awaitInit(ctx context.Context, initName string) error {
	stop := context.AfterFunc(ctx, func() { w.child.Conn.SetReadDeadline(time.Now()) })
	defer stop()
	kind, payload, err := w.child.Reader.Next()
	w.child.Conn.SetReadDeadline(time.Time{})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("multiproc: starting worker: %w", ctx.Err())
		}
		return fmt.Errorf("%w: worker %d exited during start-up (%v)", errs.ErrHandshake, w.pid, err)
	}
	if kind != kindInit || len(payload) == 0 {
		return fmt.Errorf("%w: worker %d sent frame kind %#x at start-up", errs.ErrHandshake, w.pid, kind)
	}
	if payload[0] == statusOK {
		return nil
	}
	re, err := errs.DecodeError(payload[1:])
	if err != nil {
		return fmt.Errorf("%w: worker %d: %w", errs.ErrHandshake, w.pid, err)
	}
	return fmt.Errorf("multiproc: worker initializer %q failed: %w", initName, re)
}

// abandon kills and reaps a worker that never joined the pool.
func (w *worker) abandon() {
	syscall.Kill(-w.pid, syscall.SIGKILL)
	w.child.Conn.Close()
	w.child.Cmd.Wait()
	w.words.Close()
}

// addLocked makes a started worker part of the pool.
func (p *Pool) addLocked(w *worker) {
	p.workers = append(p.workers, w)
	p.wg.Add(2)
	go w.readLoop()
	go w.writeLoop()
	p.dispatchLocked()
}

func (w *worker) wakeWriter() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) requestExit() {
	if !w.exitSent && !w.exitPending {
		w.exitPending = true
		w.wakeWriter()
	}
}

func (w *worker) indexLocked(t *Task) int {
	for i, x := range w.assigned {
		if x == t {
			return i
		}
	}
	return -1
}

// killLocked kills the worker's process group. The pid cannot have been
// reused: a worker is reaped only after it is marked dead, under p.mu.
func (w *worker) killLocked() {
	if !w.dead {
		syscall.Kill(-w.pid, syscall.SIGKILL)
	}
}

// armHeadLocked (re)arms the time limit of the task w runs now: its
// timeout, or the grace period of a cancelled task.
func (p *Pool) armHeadLocked(w *worker) {
	w.headGen++
	if w.headTimer != nil {
		w.headTimer.Stop()
		w.headTimer = nil
	}
	if len(w.assigned) == 0 || w.dead {
		return
	}
	t := w.assigned[0]
	limit := t.Timeout
	if limit <= 0 {
		limit = p.cfg.TaskTimeout
	}
	if t.Sched.Cancelled {
		limit = p.cfg.Grace
	}
	if limit <= 0 {
		return
	}
	gen := w.headGen
	w.headTimer = time.AfterFunc(limit, func() { p.headExpired(w, t, gen) })
}

func (p *Pool) headExpired(w *worker, t *Task, gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w.headGen != gen || w.dead {
		return
	}
	if t.Sched.Cancelled || t.Sched.TimedOut {
		// Grace is over: it did not stop when asked.
		w.killLocked()
		return
	}
	t.Sched.TimedOut = true
	syscall.Kill(-w.pid, syscall.SIGTERM)
	w.headTimer = time.AfterFunc(p.cfg.Grace, func() { p.headExpired(w, t, gen) })
}

// writeLoop sends what the pool assigned to w when woken. Callers that can
// afford to write themselves do so through kick, sparing a goroutine
// hand-off on the latency path.
func (w *worker) writeLoop() {
	defer w.p.wg.Done()
	for {
		select {
		case <-w.wake:
		case <-w.quit:
			return
		}
		w.writeMu.Lock()
		ok := w.sendLocked()
		w.writeMu.Unlock()
		if !ok {
			return
		}
	}
}

// kick sends w's pending frames from the calling goroutine, unless another
// goroutine is writing to w, in which case the writer goroutine is woken to
// send them after it.
func (w *worker) kick() {
	if !w.writeMu.TryLock() {
		w.wakeWriter()
		return
	}
	w.sendLocked()
	w.writeMu.Unlock()
}

// sendLocked writes everything assigned to w and not yet sent, plus pending
// cancels and the exit request, in one write. w.writeMu must be held: it
// keeps frames in assignment order. It reports false once w is gone.
func (w *worker) sendLocked() bool {
	p := w.p
	p.mu.Lock()
	if w.dead {
		p.mu.Unlock()
		return false
	}
	batch := append(w.wbatch[:0], w.assigned[len(w.assigned)-w.unsent:]...)
	flags := w.wflags[:0]
	for _, t := range batch {
		var f byte
		if t.Sched.Cancelled {
			f |= flagCancelled
		}
		if t.Chunk {
			f |= flagChunk
		}
		flags = append(flags, f)
	}
	w.unsent = 0
	cancels := append(w.wcancels[:0], w.cancels...)
	w.cancels = w.cancels[:0]
	exit := w.exitPending && len(w.assigned) == 0
	if exit {
		w.exitPending, w.exitSent = false, true
	}
	p.mu.Unlock()

	w.wbuf = w.wbuf[:0]
	for i, t := range batch {
		w.appendTask(t, flags[i])
	}
	for _, o := range cancels {
		w.wbuf = appendCancel(w.wbuf, o)
	}
	if exit {
		w.wbuf = wire.AppendFrame(w.wbuf, kindExit, nil)
	}
	clear(batch)
	w.wbatch, w.wflags, w.wcancels = batch[:0], flags[:0], cancels[:0]
	if len(w.wbuf) == 0 {
		return true
	}
	if err := w.writeBatch(); err != nil {
		// The reader sees the death and settles the tasks.
		p.mu.Lock()
		w.killLocked()
		p.mu.Unlock()
		return false
	}
	return true
}

// maxTaskFrame bounds a task frame (a variable so tests can lower it).
var maxTaskFrame = wire.DefaultMaxFrame

// inlinePayload is the size up to which a payload is copied next to its
// frame header; larger ones are written from where they lie (writev).
const inlinePayload = 1024

// segment marks a large payload to write after w.wbuf[:end].
type segment struct {
	end     int
	payload []byte
}

// appendTask adds t's frame to the batch being built in w.wbuf and w.wsegs.
func (w *worker) appendTask(t *Task, flags byte) {
	ref, known := w.fnRefs[t.Fn]
	if !known {
		ref = uint64(len(w.fnRefs) + 1)
		w.fnRefs[t.Fn] = ref
		flags |= flagDefine
	}
	start := len(w.wbuf)
	buf, off := wire.BeginFrame(w.wbuf, kindTask)
	buf = binary.AppendUvarint(buf, ref)
	buf = append(buf, flags)
	if !known {
		buf = wire.AppendString(buf, t.Fn.Name)
	}
	size := 0
	if flags&flagCancelled == 0 {
		size = len(t.Payload)
	}
	if err := wire.EndFrameWith(buf, off, size, maxTaskFrame); err != nil {
		// Too large to send: answer it here and send a cancelled stub so
		// ordinals stay aligned. The stub defines the function afresh if
		// this frame was to define it.
		w.wbuf = buf[:start]
		if !known {
			delete(w.fnRefs, t.Fn)
		}
		// No pool lock is held here, so the caller is answered at once; the
		// stub's reply will find the task finished.
		w.p.failUnsent(t, fmt.Errorf("multiproc: task %q: argument of %d bytes: %w", t.Fn.Name, size, err))
		w.appendTask(t, (flags&^flagDefine)|flagCancelled)
		return
	}
	switch {
	case size == 0:
	case size <= inlinePayload:
		buf = append(buf, t.Payload...)
	default:
		w.wsegs = append(w.wsegs, segment{end: len(buf), payload: t.Payload})
	}
	w.wbuf = buf
}

// writeBatch writes w.wbuf with the large payloads spliced in, in one
// vectored write, and resets the batch.
func (w *worker) writeBatch() error {
	var err error
	if len(w.wsegs) == 0 {
		_, err = w.child.Conn.Write(w.wbuf)
	} else {
		bufs := w.wiov[:0]
		prev := 0
		for _, sg := range w.wsegs {
			bufs = append(bufs, w.wbuf[prev:sg.end], sg.payload)
			prev = sg.end
		}
		if prev < len(w.wbuf) {
			bufs = append(bufs, w.wbuf[prev:])
		}
		nb := net.Buffers(bufs)
		_, err = nb.WriteTo(w.child.Conn)
		clear(bufs)
		w.wiov = bufs[:0]
		clear(w.wsegs)
		w.wsegs = w.wsegs[:0]
	}
	if cap(w.wbuf) > 4<<20 {
		w.wbuf = nil
	} else {
		w.wbuf = w.wbuf[:0]
	}
	return err
}

// readLoop receives results until the worker's socket closes.
func (w *worker) readLoop() {
	p := w.p
	defer p.wg.Done()
	for {
		kind, payload, err := w.child.Reader.Next()
		if err != nil {
			p.workerExited(w)
			return
		}
		if kind != kindResult {
			p.protocolError(w, fmt.Sprintf("unexpected frame kind %#x", kind))
			continue
		}
		t, r, ok := p.acceptResult(w, payload)
		if ok {
			p.finish(t, r)
		}
		// Refill the workers once per batch of results, not once per
		// result: one write carries all the tasks the batch made room for.
		if !w.child.Reader.BufferedFrame() {
			p.refill()
		}
	}
}

// refill dispatches queued tasks and writes them from this goroutine.
func (p *Pool) refill() {
	var few [4]*worker
	p.mu.Lock()
	kick := append(few[:0], p.dispatchKickLocked(true)...)
	p.mu.Unlock()
	for _, k := range kick {
		k.kick()
	}
}

// acceptResult matches a result frame with the task it answers and updates
// the pool. ok is false if the frame is bad (the worker is being killed) or
// answers a task that was cancelled (its canceller answers it); otherwise
// the caller must finish t with r. r.Data aliases payload.
func (p *Pool) acceptResult(w *worker, payload []byte) (t *Task, r Result, ok bool) {
	d := wire.NewBuf(payload)
	ord := d.Uvarint()
	status := d.Byte()
	dur := time.Duration(d.Uint64())
	data := d.Rest()
	if d.Err() != nil {
		p.protocolError(w, d.Err().Error())
		return nil, r, false
	}
	p.mu.Lock()
	if len(w.assigned) == 0 || ord != w.done+1 {
		p.mu.Unlock()
		p.protocolError(w, fmt.Sprintf("result for task %d, expected %d", ord, w.done+1))
		return nil, r, false
	}
	t = w.assigned[0]
	w.assigned[0] = nil
	w.assigned = w.assigned[1:]
	w.done++
	w.busy += dur
	w.tasks++
	if status != statusCancelled {
		const alpha = 0.05
		if p.avgNs == 0 {
			p.avgNs = float64(dur) + 1
		} else {
			p.avgNs += alpha * (float64(dur) + 1 - p.avgNs)
		}
	}
	outcome, mine := p.claimResultLocked(t, status)
	p.armHeadLocked(w)
	p.checkRecycleLocked(w)
	if w.retiring && len(w.assigned) == 0 {
		w.requestExit()
	}
	p.mu.Unlock()
	if !mine {
		// A task the pool cancelled (or failed) is answered, and counted, by
		// whoever did: do not race them.
		return t, Result{}, false
	}
	return t, resultOf(t, outcome, decodeResult(w, status, data)), true
}

// recoverResults delivers the results a dead worker finished but had not
// sent: they are still in the area it shared with us.
func (p *Pool) recoverResults(w *worker) {
	n := w.words.Load(wordOutLen)
	area := w.words.Area()
	if n == 0 || n > uint64(len(area)) {
		return
	}
	buf := append([]byte(nil), area[:n]...)
	for len(buf) > 0 {
		kind, payload, size, err := wire.ParseFrame(buf, len(area))
		if err != nil || size == 0 || kind != kindResult {
			return
		}
		buf = buf[size:]
		ord, k := binary.Uvarint(payload)
		p.mu.Lock()
		seen := k > 0 && ord <= w.done
		p.mu.Unlock()
		if seen {
			continue // sent before it died, already delivered
		}
		t, r, ok := p.acceptResult(w, payload)
		if t == nil {
			return // a bad frame
		}
		if ok {
			p.finish(t, r)
		}
	}
	p.refill()
}

func decodeResult(w *worker, status byte, data []byte) Result {
	switch status {
	case statusOK:
		return Result{Data: data}
	case statusError:
		re, err := errs.DecodeError(data)
		if err != nil {
			return Result{Err: fmt.Errorf("multiproc: worker %d sent a bad error envelope: %w", w.pid, err)}
		}
		return Result{Err: re}
	case statusPartial:
		d := wire.NewBuf(data)
		n := d.Uvarint()
		res := d.Bytes()
		if d.Err() != nil {
			return Result{Err: fmt.Errorf("multiproc: worker %d sent a bad partial result: %w", w.pid, d.Err())}
		}
		re, err := errs.DecodeError(d.Rest())
		if err != nil {
			return Result{Err: fmt.Errorf("multiproc: worker %d sent a bad error envelope: %w", w.pid, err)}
		}
		return Result{Data: res, N: int(n), Err: re, Partial: true}
	}
	return Result{Err: fmt.Errorf("multiproc: worker %d sent unknown status %d", w.pid, status)}
}

// protocolError kills a worker that broke the protocol; its death settles
// its tasks like any other.
func (p *Pool) protocolError(w *worker, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !w.dead {
		p.log.Error("protocol", "multiproc: a worker broke the protocol; killing it", "worker", w.name, "pid", w.pid, "problem", what)
		w.killLocked()
	}
}

// checkRecycleLocked retires w if it is too old or too big.
func (p *Pool) checkRecycleLocked(w *worker) {
	if w.retiring {
		return
	}
	if p.cfg.MaxAge > 0 && time.Since(w.started) > p.cfg.MaxAge {
		p.retireLocked(w, "age")
		return
	}
	if p.cfg.MaxMemory > 0 && time.Since(w.rssChecked) > 20*time.Millisecond {
		w.rssChecked = time.Now()
		if rss, err := residentBytes(w.pid); err == nil {
			w.rss = rss
			if rss > p.cfg.MaxMemory {
				p.retireLocked(w, "memory")
			}
		}
	}
}

// workerExited settles everything w held once its socket closed: reap it,
// work out from its shared counters which task it was running, fail or
// retry that one, fail the ones it finished without reporting, and queue
// again the ones it never started. Only then, with w reaped, may its
// replacement start.
//
// Blame decides back-off: a worker that died running a task (exit, signal,
// OOM kill, a timeout or a cancel that did not stop) is that task's failure,
// and the replacement starts at once; a death without a task counts toward
// the restart intensity.
func (p *Pool) workerExited(w *worker) {
	w.child.Conn.Close()
	p.mu.Lock()
	w.dead = true
	w.headGen++
	if w.headTimer != nil {
		w.headTimer.Stop()
	}
	close(w.quit)
	p.mu.Unlock()

	w.child.Cmd.Wait()
	code, sig := boot.ExitStatus(w.child.Cmd.ProcessState)
	started, completed := w.words.Load(wordStarted), w.words.Load(wordCompleted)
	p.recoverResults(w)
	w.words.Close()

	type failure struct {
		t *Task
		r Result
	}
	var fails []failure
	p.mu.Lock()
	for i, x := range p.workers {
		if x == w {
			p.workers = append(p.workers[:i], p.workers[i+1:]...)
			break
		}
	}
	// Running a task: one started and not completed. Whether it was still
	// unsettled (a cancelled one was answered already) does not matter: it
	// is what the worker died of.
	running := started > completed
	var requeue []*Task
	for i, t := range w.assigned {
		ord := w.done + uint64(i) + 1
		if claimedLocked(t) {
			continue // its canceller (or Terminate) answers it
		}
		if p.terminated {
			// Terminate killed it and answers its tasks; whichever answer
			// lands first must say the same thing.
			if p.claimLocked(t, engine.Cancelled) {
				fails = append(fails, failure{t, Result{Err: fmt.Errorf("%w: terminated", errs.ErrPoolClosed), Outcome: engine.Cancelled}})
			}
			continue
		}
		died := &errs.ExitError{Pid: w.pid, Code: code, Signal: sig, Worker: true}
		switch {
		case ord <= completed:
			// Unreachable while workers publish completion only after the
			// result left (socket or shared area); kept as a safety net.
			died.Reason = fmt.Sprintf("it ran task %q but died before reporting the result", t.Fn.Name)
			if p.claimLocked(t, engine.Died) {
				fails = append(fails, failure{t, Result{Err: died, Outcome: engine.Died}})
			}
		case ord == started:
			var err error = died
			outcome := engine.Died
			if t.Sched.TimedOut {
				err = fmt.Errorf("%w: %q ran longer than its limit; worker %d was stopped (%v)", errs.ErrTimeout, t.Fn.Name, w.pid, died)
				outcome = engine.TimedOut
			} else {
				died.Reason = fmt.Sprintf("while running task %q", t.Fn.Name)
			}
			if t.Sched.Attempts < p.cfg.Retries && p.cfg.RetryOn(err) {
				// A re-run, not an outcome: the task is counted once it
				// ends for good.
				t.Sched.Attempts++
				t.Sched.TimedOut = false
				t.Sched.Owner = nil
				t.Sched.CancelSent = false
				p.stats.retried++
				requeue = append(requeue, t)
				continue
			}
			if p.claimLocked(t, outcome) {
				fails = append(fails, failure{t, Result{Err: err, Outcome: outcome}})
			}
		default:
			t.Sched.Owner = nil
			t.Sched.CancelSent = false
			requeue = append(requeue, t)
		}
	}
	w.assigned, w.unsent = nil, 0
	p.queue.pushFront(requeue)
	if !running && !w.retiring && !p.terminated {
		p.noteFailureLocked()
	}
	p.ensureWorkersLocked()
	if p.broken != nil && len(p.workers) == 0 {
		for p.queue.len() > 0 {
			if t := p.queue.popFront(); p.claimLocked(t, engine.Failed) {
				fails = append(fails, failure{t, Result{Err: p.broken, Outcome: engine.Failed}})
			}
		}
	}
	p.dispatchLocked()
	p.maybeDoneLocked()
	p.mu.Unlock()
	for _, f := range fails {
		p.finish(f.t, f.r)
	}
}
