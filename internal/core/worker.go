package core

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
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
	aheadBytes  int      // the payload bytes of assigned (see aheadBytesMax)
	unsent      int      // the last unsent tasks of assigned are not yet written
	done        uint64   // results received: ordinal of assigned[0] is done+1
	given       int      // tasks ever assigned
	cancels     []uint64 // ordinals to cancel, for the writer
	exitPending bool     // the writer must send EXIT
	exitSent    bool
	cache       map[uint64]*cached // the resources the worker holds (see resources.go)
	evicts      []uint64           // resources it must drop, for the writer
	retiring    bool
	dead        bool
	needWake    bool
	headGen     uint64
	headTimer   *time.Timer
	headSince   time.Time // when the head task's time limit started (if it has one)
	busy        time.Duration
	tasks       int64
	rss         uint64
	rssChecked  time.Time
	poolKilled  bool // the pool signalled it (a timeout, a cancel, a protocol error)

	iso *workerIso // its cgroup, crash report and output files

	// Held while frames are built and written, so they go out in order.
	writeMu  sync.Mutex
	fnRefs   map[*registry.Entry]uint64
	wbuf     []byte
	wbatch   []*Task
	wflags   []byte
	wcancels []uint64
	wsegs    []segment
	wiov     [][]byte
	wsegLen  int     // bytes of the payloads in wsegs
	wfds     [][]int // per task of wbatch: duplicates of its descriptors to send
	wtab     []byte  // resource tables of the batch's tasks
	wtabEnd  []int   // per task of wbatch: end of its table in wtab (-1: none)
	wevicts  []uint64
	wseq     uint64        // writes so far, for the cache's LRU order
	watt     []wire.Attach // descriptors of the batch, by stream offset (they are closed after the write)
	wfail    []*Task       // tasks whose descriptors could not be duplicated
	wfailErr []error
	wres     []resWrite // tasks whose frames in this write carry resources

	rd readerState // who reads the worker's stream (direct.go)

	// The socket: sock is the pool's own descriptor (nil where streams are
	// never parked); lconn the connection registered with the poller that
	// the read loop waits on, nil while the stream is parked. lconn is
	// protected by p.mu and cannot be closed while writeMu is held.
	sock  *sockFD
	lconn *net.UnixConn
	pw    *pidWatch
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
	wi, err := p.newWorkerIso(name)
	if err != nil {
		f.Close()
		words.Close()
		return nil, err
	}
	files := append([]*os.File{f}, p.initFiles()...)
	bc := boot.Config{
		Role: "worker", Name: name, NewGroup: true,
		Payload: appendStartPayload(appendIsoPayload(nil, &p.cfg), initName, p.cfg.InitArg, p.cfg.InitRes, p.cfg.MaxProcs, p.msgLimit()),
		Files:   append(files, wi.files()...),
		// Chunks of a map are often a megabyte or more.
		SocketBuffer: 2 << 20,
	}
	wi.configure(&bc)
	c, err := boot.Spawn(ctx, bc)
	f.Close()
	wi.started()
	if err != nil {
		wi.release()
		words.Close()
		return nil, err
	}
	if len(p.cfg.InitRes) > 0 {
		p.initDelivered.Store(true)
	}
	w := &worker{
		p: p, name: name, child: c, pid: c.Pid(), words: words, started: time.Now(),
		wake: make(chan struct{}, 1), quit: make(chan struct{}), fnRefs: map[*registry.Entry]uint64{},
		iso: wi,
	}
	w.pinInitLocked(p.cfg.InitRes) // w is not shared yet
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
		return fmt.Errorf("%w: worker %d exited during start-up: %w", errs.ErrHandshake, w.pid, err)
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
	if re.Func == limitsName {
		return fmt.Errorf("multiproc: worker %d could not apply its limits: %w", w.pid, re)
	}
	return fmt.Errorf("multiproc: worker initializer %q failed: %w", initName, re)
}

// abandon kills and reaps a worker that never joined the pool.
func (w *worker) abandon() {
	syscall.Kill(-w.pid, syscall.SIGKILL)
	w.child.Conn.Close()
	w.child.Cmd.Wait()
	w.words.Close()
	w.iso.release()
}

// addLocked makes a started worker part of the pool.
func (p *Pool) addLocked(w *worker) {
	// From here on frames may carry descriptors (results holding
	// resources): read them with recvmsg, which keeps them, and accept
	// results up to the pool's limit. The initializer's frame, read before,
	// carries none. Set before the read loop starts: whoever owns the
	// stream reads through this Reader.
	r := w.child.Reader
	r.SetLimit(readerLimit(p.msgLimit()))
	r.ReceiveFiles(w.child.Conn)
	w.lconn = w.child.Conn
	w.rd.unpark = make(chan struct{}, 1)
	w.rd.noPark = true
	if directReads {
		// Its own descriptor and a pidfd let the stream be parked (see
		// readerState); without either it never is.
		if sock, err := newSockFD(w.child.Conn); err == nil {
			w.sock = sock
			r.UseRawConn(sock)
			if pw, err := newPidWatch(w.pid); err == nil {
				w.pw = pw
				w.rd.noPark = false
				p.wg.Add(1)
				go w.watchExit()
			}
		}
	}
	p.workers = append(p.workers, w)
	p.wg.Add(2)
	go w.readLoop()
	go w.writeLoop()
	p.dispatchLocked()
}

// watchExit unparks w once its process has exited, so that the read loop
// reads the end of its stream (nobody watches the socket of a parked
// worker). It returns then, or once workerExited closes the watch.
func (w *worker) watchExit() {
	defer w.p.wg.Done()
	w.pw.wait()
	w.p.mu.Lock()
	w.unparkLocked()
	w.p.mu.Unlock()
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
		w.poolKilled = true
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
	limit := p.taskLimit(t)
	if t.Sched.Cancelled {
		limit = p.cfg.Grace
	}
	if limit <= 0 {
		return
	}
	gen := w.headGen
	w.headSince = time.Now()
	w.headTimer = time.AfterFunc(limit, func() { p.headExpired(w, t, gen, 0) })
}

// expireLocked marks t, the head of its worker, as past its time limit and
// returns the error to settle it with, or nil if a retry is due instead.
func (p *Pool) expireLocked(t *Task) error {
	t.Sched.TimedOut = true
	err := p.timeoutError(t)
	if t.Sched.Attempts < p.cfg.Retries && p.cfg.RetryOn(err) {
		return nil
	}
	return err
}

// taskLimit is t's time limit: its own, or the pool's default; 0 for none.
func (p *Pool) taskLimit(t *Task) time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return p.cfg.TaskTimeout
}

// timeoutError is the error of a task that exceeded its time limit: it
// names the function, the limit and, for a chunk, that it was one.
func (p *Pool) timeoutError(t *Task) error {
	unit := ""
	if t.Chunk {
		unit = fmt.Sprintf(" (a Map chunk of %d items)", t.Items)
	}
	return fmt.Errorf("multiproc: task %q%s exceeded its %v time limit: %w", t.Fn.Name, unit, p.taskLimit(t), errs.ErrTimeout)
}

// headExpired runs the stages of stopping the head task of w, one per
// firing of its timer. A cancelled task (its caller was answered already)
// is killed once its grace period is over. A task past its time limit is
// stopped politely first: stage 0, at the deadline, answers the caller
// with ErrTimeout at once (unless a retry is due, which waits for the
// worker to stop) while the worker's own context for the task ends too (its
// budget travelled in the task frame); a task that returns within Grace
// keeps its worker and its late reply is discarded. Stage 1, after Grace,
// sends SIGTERM to the worker's group; stage 2, after a further Grace,
// SIGKILL.
func (p *Pool) headExpired(w *worker, t *Task, gen uint64, stage int) {
	p.mu.Lock()
	if w.headGen != gen || w.dead {
		p.mu.Unlock()
		return
	}
	if t.Sched.Cancelled {
		// Grace is over: it did not stop when asked.
		w.killLocked()
		p.mu.Unlock()
		return
	}
	var settle error
	switch stage {
	case 0:
		// Counted once, under TimedOut, by the claim; a retry due waits
		// for the worker to stop instead.
		if err := p.expireLocked(t); err != nil && p.claimLocked(t, engine.TimedOut) {
			settle = err
		}
		w.watchLocked() // its late reply, or its worker's end, must be read
	case 1:
		w.poolKilled = true
		syscall.Kill(-w.pid, syscall.SIGTERM)
	default:
		w.killLocked()
	}
	if stage < 2 {
		w.headTimer = time.AfterFunc(p.cfg.Grace, func() { p.headExpired(w, t, gen, stage+1) })
	}
	p.mu.Unlock()
	if settle != nil {
		p.finish(t, Result{Err: settle, Outcome: engine.TimedOut})
	}
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
	fds := w.wfds[:0]
	w.wseq++
	w.wtab, w.wtabEnd = w.wtab[:0], w.wtabEnd[:0]
	for _, t := range batch {
		var f byte
		if t.Sched.Cancelled || t.Finished() {
			// Nobody waits for it (a cancel, an argument too large): it
			// goes out as a stub that keeps the ordinals aligned.
			f |= flagCancelled
		}
		if t.Chunk {
			f |= flagChunk
		}
		var tf []int
		tabEnd := -1
		if len(t.Res) > 0 && f&flagCancelled == 0 {
			// Duplicates for this write, made under p.mu: the pool's
			// copies are closed under p.mu when the last task using them
			// is settled, which may happen while the write is under way.
			mark := len(w.wtab)
			var err error
			if tf, err = w.resTableLocked(t, w.wseq); err != nil {
				w.wtab = w.wtab[:mark]
				f |= flagCancelled // its stub's reply counts nothing: the task is claimed here
				if p.claimLocked(t, engine.Failed) {
					w.wfail = append(w.wfail, t)
					w.wfailErr = append(w.wfailErr, fmt.Errorf("multiproc: task %q: passing its resources: %w", t.Fn.Name, err))
				}
			} else {
				f |= flagRes
				tabEnd = len(w.wtab)
				t.Sched.Writing++ // its hooks wait for this write (resources.go)
				w.wres = append(w.wres, resWrite{t: t, carried: true})
			}
		}
		flags = append(flags, f)
		fds = append(fds, tf)
		w.wtabEnd = append(w.wtabEnd, tabEnd)
	}
	w.evictLocked(w.wseq)
	evicts := append(w.wevicts[:0], w.evicts...)
	w.evicts = w.evicts[:0]
	w.unsent = 0
	cancels := append(w.wcancels[:0], w.cancels...)
	w.cancels = w.cancels[:0]
	exit := w.exitPending && len(w.assigned) == 0
	if exit {
		w.exitPending, w.exitSent = false, true
	}
	for _, tf := range fds {
		if len(tf) > 0 {
			w.unparkLocked() // descriptors go through the connection
			break
		}
	}
	conn := w.lconn // not closed while writeMu is held (parkLocked)
	p.mu.Unlock()

	for i, t := range w.wfail {
		p.finish(t, Result{Err: w.wfailErr[i], Outcome: engine.Failed})
	}
	clear(w.wfail)
	clear(w.wfailErr)
	w.wfail, w.wfailErr = w.wfail[:0], w.wfailErr[:0]
	w.wbuf = w.wbuf[:0]
	if len(evicts) > 0 {
		// Ahead of this write's tasks, none of which uses them; the worker
		// drops them once the tasks written before have run.
		w.wbuf = appendEvict(w.wbuf, evicts)
	}
	w.wevicts = evicts[:0]
	tabStart := 0
	for i, t := range batch {
		var tab []byte
		if end := w.wtabEnd[i]; end >= 0 {
			tab, tabStart = w.wtab[tabStart:end], end
		}
		w.appendTask(t, flags[i], fds[i], tab)
	}
	clear(fds)
	w.wfds = fds[:0]
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
	err := w.writeBatch(conn)
	if err != nil || len(w.wres) > 0 {
		p.mu.Lock()
		late := w.wroteLocked(err == nil)
		if err != nil {
			// The reader sees the death and settles the tasks.
			w.killLocked()
		}
		p.mu.Unlock()
		settleLate(late)
	}
	return err == nil
}

// inlinePayload is the size up to which a payload is copied next to its
// frame header; larger ones are written from where they lie (writev).
const inlinePayload = 1024

// segment marks a large payload to write after w.wbuf[:end].
type segment struct {
	end     int
	payload []byte
}

// appendTask adds t's frame to the batch being built in w.wbuf and w.wsegs,
// with its resource table tab and fds (duplicates of the descriptors the
// table sends, which the batch's write closes) declared in the frame and
// placed in w.watt.
func (w *worker) appendTask(t *Task, flags byte, fds []int, tab []byte) {
	ref, known := w.fnRefs[t.Fn]
	if !known {
		ref = uint64(len(w.fnRefs) + 1)
		w.fnRefs[t.Fn] = ref
		flags |= flagDefine
	}
	var budget time.Duration
	if flags&flagCancelled == 0 {
		budget = w.p.budget(t)
		if budget > 0 {
			flags |= flagBudget
		}
	}
	start := len(w.wbuf)
	kind := byte(kindTask)
	if len(fds) > 0 {
		kind |= wire.FlagFiles
	}
	buf, off := wire.BeginFrame(w.wbuf, kind)
	if len(fds) > 0 {
		buf = binary.AppendUvarint(buf, uint64(len(fds)))
	}
	buf = binary.AppendUvarint(buf, ref)
	buf = append(buf, flags)
	if !known {
		buf = wire.AppendString(buf, t.Fn.Name)
	}
	if flags&flagBudget != 0 {
		buf = binary.AppendUvarint(buf, uint64(budget))
	}
	if flags&flagRes != 0 {
		buf = append(buf, tab...)
	}
	size := 0
	if flags&flagCancelled == 0 {
		size = len(t.Payload)
	}
	limit := w.p.msgLimit()
	var tooLarge error
	if size > limit || len(fds) > wire.MaxFrameFiles {
		what, n, lim := "argument", size, limit
		if t.Chunk {
			what = "arguments of a Map chunk"
		}
		if len(fds) > wire.MaxFrameFiles {
			what, n, lim = "descriptors", len(fds), wire.MaxFrameFiles
		}
		tooLarge = &errs.TooLargeError{What: what, Func: t.Fn.Name, Size: int64(n), Limit: int64(lim)}
	} else if err := wire.EndFrameWith(buf, off, size, readerLimit(limit)); err != nil {
		tooLarge = &errs.TooLargeError{What: "task frame", Func: t.Fn.Name, Size: int64(len(buf) - off - wire.HeaderSize + size), Limit: int64(readerLimit(limit))}
	}
	if tooLarge != nil {
		// A safety net: the root refuses an argument over the limit before
		// submitting it. Answer it here and send a cancelled stub so
		// ordinals stay aligned. The stub defines the function afresh if
		// this frame was to define it.
		w.wbuf = buf[:start]
		if !known {
			delete(w.fnRefs, t.Fn)
		}
		closeAll(fds)
		if flags&flagRes != 0 {
			w.unsend(tab)
			w.notCarried(t)
		}
		// No pool lock is held here, so the caller is answered at once; the
		// stub's reply will find the task finished.
		w.p.failUnsent(t, tooLarge)
		w.appendTask(t, (flags&^(flagDefine|flagBudget|flagRes))|flagCancelled, nil, nil)
		return
	}
	if len(fds) > 0 {
		w.watt = append(w.watt, wire.Attach{At: start + w.wsegLen, Fds: fds})
	}
	switch {
	case size == 0:
	case size <= inlinePayload:
		buf = append(buf, t.Payload...)
	default:
		w.wsegs = append(w.wsegs, segment{end: len(buf), payload: t.Payload})
		w.wsegLen += size
	}
	w.wbuf = buf
}

// budget is the time the worker gives t, sent in its frame: its time
// limit, or less if its context's deadline comes first. It is relative, so
// the worker's clock need not agree with ours; 0 means none.
func (p *Pool) budget(t *Task) time.Duration {
	b := p.taskLimit(t)
	if t.Ctx != nil {
		if d, ok := t.Ctx.Deadline(); ok {
			left := max(time.Until(d), 1)
			if b <= 0 || left < b {
				b = left
			}
		}
	}
	return b
}

// writeBatch writes w.wbuf with the large payloads spliced in, in one
// vectored write, and resets the batch. c is the connection, nil while the
// stream is parked.
func (w *worker) writeBatch(c *net.UnixConn) error {
	var err error
	if len(w.watt) > 0 {
		err = w.writeFiles(c)
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
		err = w.writeBufs(c, bufs)
		clear(bufs)
		w.wiov = bufs[:0]
		clear(w.wsegs)
		w.wsegs = w.wsegs[:0]
	}
	w.wsegLen = 0
	if cap(w.wbuf) > 4<<20 {
		w.wbuf = nil
	} else {
		w.wbuf = w.wbuf[:0]
	}
	return err
}

// writeBufs writes bufs in order: first with raw system calls, which skip
// the scheduler's bookkeeping, as far as the socket takes them at
// once; the rest through c, which waits for room in the poller, or, with
// the stream parked (c nil), blocked in the kernel on this thread.
func (w *worker) writeBufs(c *net.UnixConn, bufs [][]byte) error {
	if w.sock != nil {
		var err error
		if bufs, err = w.sock.writev(bufs, c == nil); err != nil || len(bufs) == 0 {
			return err
		}
	}
	if c == nil {
		return net.ErrClosed
	}
	w.sock.release()
	nb := net.Buffers(bufs)
	_, err := nb.WriteTo(c)
	return err
}

// writeFiles writes a batch that carries descriptors: sendmsg takes one
// buffer, so the large payloads are copied in (descriptor-carrying tasks
// are not the small-task hot path), and the descriptors go with the frames
// that declare them, at most wire.MaxFilesPerMsg per sendmsg. The
// duplicates are closed afterwards: the kernel holds its own references
// while they are in flight.
func (w *worker) writeFiles(c *net.UnixConn) error {
	if c == nil {
		// Unparking failed to make a connection (out of descriptors).
		return net.ErrClosed
	}
	b := w.wbuf
	if len(w.wsegs) > 0 {
		b = make([]byte, 0, len(w.wbuf)+w.wsegLen)
		prev := 0
		for _, sg := range w.wsegs {
			b = append(b, w.wbuf[prev:sg.end]...)
			b = append(b, sg.payload...)
			prev = sg.end
		}
		b = append(b, w.wbuf[prev:]...)
		clear(w.wsegs)
		w.wsegs = w.wsegs[:0]
	}
	w.sock.release()
	err := wire.WriteFiles(c, b, w.watt)
	for _, a := range w.watt {
		closeAll(a.Fds)
	}
	clear(w.watt)
	w.watt = w.watt[:0]
	return err
}

// readLoop receives results until the worker's socket closes. It waits
// for the socket in the net package's poller without reading (the raw
// connection's Read), and reads what arrived with the non-blocking
// TryNext, so that a caller waiting for its own task can read the stream
// instead (Await) while this loop stays parked: see readAvailable.
//
// While the stream is parked it waits for it to be unparked instead (see
// readerState): parking closes the connection it waits on, unparking makes
// a new one.
func (w *worker) readLoop() {
	defer w.p.wg.Done()
	var last *net.UnixConn
	for {
		c, ok := w.loopConn()
		if !ok {
			break
		}
		if c == nil {
			// No connection could be made for the poller: wait on this
			// thread.
			if w.sock.waitIn() != nil || !w.readAvailable() {
				break
			}
			continue
		}
		if c == last {
			break // closed under it, and not by parking: the worker is gone
		}
		last = c
		rc, err := c.SyscallConn()
		if err != nil {
			break
		}
		// f runs at once and then whenever the socket may have become
		// readable; it returns true when the stream has ended. An error
		// means the connection was closed: parked, or the worker has
		// exited already.
		ended := false
		rc.Read(func(uintptr) bool {
			ended = !w.readAvailable()
			return ended
		})
		if ended {
			break
		}
	}
	w.endStream()
}

// pump reads and handles every frame that has arrived from w, without
// waiting; with until set, it stops once until is settled and no whole
// frame is left buffered (a direct reader: whatever else arrives wakes the
// read loop, see readerState). The caller owns w's stream. It reports false
// once the stream has ended or broke; the caller then ends it (endStream),
// outside any callback of the connection's raw Conn.
func (w *worker) pump(until *Task) bool {
	p := w.p
	r := w.child.Reader
	for {
		if until != nil && until.Finished() && !r.BufferedFrame() {
			return true
		}
		kind, payload, ok, err := r.TryNext()
		if err != nil {
			return false
		}
		if !ok {
			return true
		}
		if kind != kindResult {
			p.protocolError(w, fmt.Sprintf("unexpected frame kind %#x", kind))
			continue
		}
		t, res, ok := p.acceptResult(w, payload, r.Files())
		if ok && !p.finish(t, res) && res.Res != nil {
			res.Res.Close() // settled already: nobody takes them
		}
		// Refill the workers once per batch of results, not once per
		// result: one write carries all the tasks the batch made room for.
		if !r.BufferedFrame() {
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

// popHeadLocked removes the task a result answered, assigned[0], keeping
// the worker's byte count and result ordinal with it.
func (w *worker) popHeadLocked() {
	w.aheadBytes -= len(w.assigned[0].Payload)
	w.assigned[0] = nil
	w.assigned = w.assigned[1:]
	w.done++
}

// acceptResult matches a result frame with the task it answers and updates
// the pool. ok is false if the frame is bad (the worker is being killed),
// answers a task that was cancelled (its canceller answers it), or came
// after the task's time limit with a retry due (the task is queued again);
// otherwise the caller must finish t with r (the late reply of a task
// settled at its deadline finds it finished and is dropped). r.Data
// aliases payload. files are the descriptors that came with the frame; they
// end up in r.Res (or closed, when ok is false).
func (p *Pool) acceptResult(w *worker, payload []byte, files []*os.File) (t *Task, r Result, ok bool) {
	ord, status, dur, data, err := parseResult(payload)
	var res *wire.Files
	switch {
	case err != nil:
	case status&statusRes != 0:
		status &^= statusRes
		data, res, err = wire.SplitTrailer(data, files) // closes files on error
		files = nil
	case len(files) > 0:
		err = fmt.Errorf("%w: %d descriptors with a result that holds no resources", wire.ErrCorrupt, len(files))
	}
	if err != nil {
		closeFiles(files)
		p.protocolError(w, err.Error())
		return nil, r, false
	}
	defer func() {
		if !ok && res != nil {
			res.Close()
		}
	}()
	p.mu.Lock()
	if len(w.assigned) == 0 || ord != w.done+1 {
		p.mu.Unlock()
		p.protocolError(w, fmt.Sprintf("result for task %d, expected %d", ord, w.done+1))
		return nil, r, false
	}
	t = w.assigned[0]
	if status == statusResend {
		// Not run: a resource it refers to is not held by the worker (its
		// descriptors were lost on the way). Forget what the worker holds,
		// bar its initializer's, and run the task again, its resources
		// sent afresh. Not an attempt: nothing ran.
		w.popHeadLocked()
		for id, c := range w.cache {
			if !c.pinned {
				delete(w.cache, id)
			}
		}
		if !claimedLocked(t) {
			t.Sched.Owner = nil
			t.Sched.CancelSent = false
			p.queue.pushFront([]*Task{t})
		}
		p.armHeadLocked(w)
		if w.retiring && len(w.assigned) == 0 {
			w.requestExit()
		}
		p.dispatchLocked()
		p.mu.Unlock()
		return t, Result{}, false
	}
	var expired error // the error to settle t with if it expired now
	if !t.Sched.TimedOut && !t.Sched.Cancelled && status != statusCancelled {
		if limit := p.taskLimit(t); limit > 0 && time.Since(w.headSince) >= limit {
			// The reply beat the timer but not the deadline (the worker's
			// own budget ended the task): the limit decides, as if the
			// timer had fired first.
			expired = p.expireLocked(t)
		}
	}
	w.popHeadLocked()
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
	late := t.Sched.TimedOut // settled at its deadline, or a retry is due
	retry := late && !claimedLocked(t) && expired == nil
	if retry {
		// It returned within its grace period, so its worker lives on,
		// but its answer came after the limit: run it again. A re-run is
		// not an outcome; the task is counted once it ends for good.
		t.Sched.Attempts++
		t.Sched.TimedOut = false
		t.Sched.Owner = nil
		t.Sched.CancelSent = false
		p.stats.retried++
		p.queue.pushFront([]*Task{t})
	}
	var (
		outcome engine.Outcome
		mine    bool
	)
	switch {
	case retry:
	case expired != nil:
		outcome, mine = engine.TimedOut, p.claimLocked(t, engine.TimedOut)
	case late:
		// Settled at its deadline already: the late reply counts nothing.
	default:
		outcome, mine = p.claimResultLocked(t, status)
	}
	p.armHeadLocked(w)
	p.checkRecycleLocked(w)
	if w.retiring && len(w.assigned) == 0 {
		w.requestExit()
	}
	p.mu.Unlock()
	if !mine {
		// A task the pool cancelled, timed out or failed is answered, and
		// counted, by whoever did; a retried one runs again: do not race.
		return t, Result{}, false
	}
	if expired != nil {
		return t, Result{Err: expired, Outcome: engine.TimedOut}, true
	}
	r = decodeResult(w.pid, status, data)
	if r.Partial && r.N > t.Items {
		r = Result{Err: fmt.Errorf("multiproc: worker %d sent a partial result of %d items for a chunk of %d", w.pid, r.N, t.Items)}
	}
	r = resultOf(t, outcome, r)
	if r.Err == nil || r.Partial {
		r.Res = res
		res = nil
	}
	if res != nil {
		res.Close()
		res = nil
	}
	return t, r, true
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
		payload, rest, ok := nextAreaFrame(buf, len(area))
		if !ok {
			return
		}
		buf = rest
		ord, _, _, _, err := parseResult(payload)
		if err != nil {
			return
		}
		p.mu.Lock()
		seen := ord <= w.done
		p.mu.Unlock()
		if seen {
			continue // sent before it died, already delivered
		}
		t, r, ok := p.acceptResult(w, payload, nil)
		if t == nil {
			return // a bad frame
		}
		if ok {
			p.finish(t, r)
		}
	}
	p.refill()
}

// decodeResult turns the data of a result frame from worker pid into a
// Result. It touches no pool state (fuzzed in FuzzResultFrame).
func decodeResult(pid int, status byte, data []byte) Result {
	switch status {
	case statusOK:
		return Result{Data: data, Outcome: engine.Done}
	case statusError:
		re, err := errs.DecodeError(data)
		if err != nil {
			return Result{Err: fmt.Errorf("multiproc: worker %d sent a bad error envelope: %w", pid, err), Outcome: engine.Failed}
		}
		return Result{Err: re, Outcome: engine.Failed}
	case statusPartial:
		d := wire.NewBuf(data)
		n := d.Uvarint()
		res := d.Bytes()
		if d.Err() != nil {
			return Result{Err: fmt.Errorf("multiproc: worker %d sent a bad partial result: %w", pid, d.Err()), Outcome: engine.Failed}
		}
		if n > math.MaxInt32 {
			return Result{Err: fmt.Errorf("multiproc: worker %d sent a partial result of %d items in %d bytes", pid, n, len(res)), Outcome: engine.Failed}
		}
		re, err := errs.DecodeError(d.Rest())
		if err != nil {
			return Result{Err: fmt.Errorf("multiproc: worker %d sent a bad error envelope: %w", pid, err), Outcome: engine.Failed}
		}
		return Result{Data: res, N: int(n), Err: re, Partial: true, Outcome: engine.Failed}
	}
	return Result{Err: fmt.Errorf("multiproc: worker %d sent unknown status %d", pid, status), Outcome: engine.Failed}
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
	p.checkCPULocked(w)
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
	lc := w.lconn
	w.pw.close()
	p.mu.Unlock()
	// Closed outside p.mu: Close waits until the read loop leaves its
	// RawRead callback, which takes p.mu (readAvailable) — closing under
	// the lock deadlocked a direct reader that saw the end of the stream
	// (TestIsolationKilled hung in CI).
	if lc != nil {
		lc.Close()
	}
	w.sock.close()
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
	p.mu.Lock()
	killed := w.poolKilled || p.terminated
	p.mu.Unlock()
	ps := w.child.Cmd.ProcessState
	why := w.explain(code, sig, killed, ps.UserTime()+ps.SystemTime())
	p.recoverResults(w)
	w.words.Close()
	w.iso.release()

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
			why.apply(died)
			if p.claimLocked(t, engine.Died) {
				fails = append(fails, failure{t, Result{Err: died, Outcome: engine.Died}})
			}
		case ord == started:
			var err error = died
			outcome := engine.Died
			if t.Sched.TimedOut {
				err = p.timeoutError(t)
				outcome = engine.TimedOut
			} else {
				died.Reason = fmt.Sprintf("while running task %q", t.Fn.Name)
				why.apply(died)
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
	w.assigned, w.unsent, w.aheadBytes = nil, 0, 0
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
