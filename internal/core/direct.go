package core

import (
	"context"
	"net"
	"syscall"
	"time"
)

// Who reads a worker's stream.
//
// Every reply of a worker arrives on one socket, read through one
// wire.Reader, so exactly one goroutine may read it at a time: its owner.
// Normally that is the worker's read loop, which waits in the net package's
// poller and reads when woken. A caller waiting for one task (Get on the
// result of an Apply, Future.Result) may instead take the stream and read it
// itself, blocked in the kernel (poll) on its own thread: the reply then
// wakes the caller directly, where the poller would wake the read loop, which
// would wake the caller, two hand-offs across CPUs that cost most of a small
// task's round trip (measured: 14-16 µs for a caller reading itself, 45-65
// µs through the read loop and a channel).
//
// A direct reader handles every frame it reads exactly as the read loop
// would (pump: the same code), so results of other tasks, refills and the
// worker's death are dealt with whoever reads. It reads until its own task
// is settled (by its reply, a timeout, a cancel, the worker's death) or its
// context ends, then gives the stream back.
//
// The read loop never reads while another goroutine owns the stream. It is
// woken by the poller whenever bytes arrive (the kernel signals the poller
// for every arrival whoever reads them); if the stream is owned, it records
// that (missed) and waits again, and the owner reads once more before it
// lets go, so no arrival is left unread. A direct reader that finds the read
// loop reading asks it to hand the stream over when done (want, handoff); a
// second direct reader of the same worker waits the ordinary way.
//
// Parking. While the socket is registered with the poller, every arrival
// wakes a poller thread and the read loop, even while a direct reader reads
// (and so does every task the worker takes off the socket: the kernel
// signals the writable edge to the poller too). A synchronous Apply pays for
// those wake-ups in every round trip, more so on a loaded machine. So a
// direct reader that finds its worker holding no task once done parks the
// stream: it closes the read loop's connection (the pool keeps its own
// descriptor, sock) and the read loop waits for unparkLocked instead of the
// socket. A parked worker is written to with raw system calls, and is
// given only tasks whose reply a direct reader will read: a task submitted
// with Awaited set (the submitter calls Await right after Submit) goes to it
// as is; anything else (another task, a retry, a task carrying
// descriptors) unparks it first. Whoever leaves a parked worker holding a
// task nobody reads unparks it: a direct reader that gives up or finds more
// replies due (release), a cancel, a timeout. The worker's death, which
// nobody reads while parked, is seen through a pidfd in the poller
// (pidWatch), which unparks it: the read loop then reads the end of stream.
type readerState struct {
	owner   readerOwner
	missed  bool          // the read loop was woken while another goroutine owned the stream
	want    bool          // a direct reader waits for the read loop to hand the stream over
	handoff chan struct{} // the read loop hands the stream over (cap 1)

	task     *Task        // the task the direct reader waits for
	sleeping bool         // the direct reader is blocked in poll: wake it through waker
	waker    *directWaker // wakes a direct reader blocked in poll (made on first use)
	sleeps   int          // times a direct reader blocked in poll (for tests)
	spin     spinPolicy   // whether a direct reader polls before it sleeps (its owner's only)
	exited   bool         // the stream ended and workerExited ran or runs

	parked bool          // nobody watches the socket; the read loop waits on unpark
	noPark bool          // parking is not possible (no sock or pidfd for this worker)
	unpark chan struct{} // cap 1: the read loop has a connection to wait on again, or the stream ended
}

// rawConn is what the pool reads and polls w's socket through: its own
// descriptor where it has one, otherwise the connection.
func (w *worker) rawConn() syscall.RawConn {
	if w.sock != nil {
		return w.sock
	}
	rc, err := w.child.Conn.SyscallConn()
	if err != nil {
		return w.sock // nil: its Control fails, as the closed connection's would
	}
	return rc
}

// unparkLocked hands a parked w back to its read loop, with a connection
// registered with the poller to wait on.
func (w *worker) unparkLocked() {
	if !w.rd.parked {
		return
	}
	w.rd.parked = false
	if !w.rd.exited {
		if c, err := w.sock.conn(); err != nil {
			// Out of descriptors, say: the read loop waits on a thread of
			// its own instead (readLoop), writes stay raw.
			w.p.log.Error("unpark", "multiproc: cannot register a worker's socket with the poller; its read loop waits on a thread", "worker", w.name, "error", err)
		} else {
			w.lconn = c
		}
	}
	select {
	case w.rd.unpark <- struct{}{}:
	default:
	}
}

// watchLocked unparks w if it holds a task whose reply no direct reader is
// reading.
func (w *worker) watchLocked() {
	if w.rd.parked && w.rd.owner != ownerDirect && len(w.assigned) > 0 {
		w.unparkLocked()
	}
}

// parkLocked parks w (see readerState) if it may be: its direct reader has
// just let go, it holds no task, and no frame is being written (the
// connection is closed here, which nobody may be writing through). It
// reports whether it did; then it has unlocked p.mu.
func (w *worker) parkLocked() bool {
	if !directReads || w.rd.parked || w.rd.noPark || w.rd.exited || w.dead || w.rd.owner != ownerNone ||
		w.rd.want || len(w.assigned) > 0 || w.lconn == nil || !w.writeMu.TryLock() {
		return false
	}
	c := w.lconn
	w.lconn = nil
	w.rd.parked = true
	w.p.mu.Unlock()
	c.Close() // ends the read loop's wait; it waits for unparkLocked now
	w.writeMu.Unlock()
	return true
}

// loopConn returns the connection the read loop waits on, waiting while w
// is parked; ok is false once the stream has ended. A nil connection with
// ok means the read loop must wait on its own thread (none could be made).
func (w *worker) loopConn() (c *net.UnixConn, ok bool) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for w.rd.parked && !w.rd.exited {
		p.mu.Unlock()
		<-w.rd.unpark
		p.mu.Lock()
	}
	if w.rd.exited || w.rd.owner == ownerEnded {
		return nil, false
	}
	return w.lconn, true
}

type readerOwner uint8

const (
	ownerNone   readerOwner = iota // nobody reads: the read loop takes the stream when woken
	ownerLoop                      // the read loop is reading
	ownerDirect                    // a caller of Await is reading
	ownerEnded                     // the stream ended: nobody reads any more
)

// readAvailable is the read loop's turn, run whenever the socket may have
// become readable: it reads and handles what arrived, unless a direct reader
// owns the stream, which then reads it. It reports false once the stream
// has ended.
func (w *worker) readAvailable() bool {
	p := w.p
	p.mu.Lock()
	if w.rd.owner == ownerDirect {
		// Woken by bytes a direct reader is reading, most likely (its
		// reply): look without reading, outside the lock. Bytes still
		// waiting now are the direct reader's to read before it lets go;
		// bytes arriving later wake this loop again.
		p.mu.Unlock()
		waiting := pending(w.rawConn())
		p.mu.Lock()
		if w.rd.owner == ownerDirect {
			w.rd.missed = w.rd.missed || waiting
			p.mu.Unlock()
			return true
		}
	}
	switch w.rd.owner {
	case ownerEnded:
		p.mu.Unlock()
		return false
	case ownerNone:
		w.rd.owner = ownerLoop
	default:
		w.rd.missed = true
		p.mu.Unlock()
		return true
	}
	p.mu.Unlock()
	return w.release(w.pump(nil), false)
}

// release gives up the stream after reading it: first it reads again if the
// read loop was woken meanwhile (so nothing that arrived stays unread), then
// hands it to a waiting direct reader or leaves it to the read loop. If the
// stream ended it stays ended and release reports false; the caller must
// then call endStream. A direct reader's release parks the stream if it may
// (parkLocked); any release unparks a parked stream that has replies due.
func (w *worker) release(alive, direct bool) bool {
	p := w.p
	p.mu.Lock()
	for alive && w.rd.missed {
		w.rd.missed = false
		p.mu.Unlock()
		alive = w.pump(nil)
		p.mu.Lock()
	}
	switch {
	case !alive:
		w.rd.owner = ownerEnded
		if w.rd.want {
			w.rd.want = false
			w.rd.handoff <- struct{}{} // it sees the end and leaves
		}
	case w.rd.want:
		w.rd.want = false
		w.rd.owner = ownerDirect
		w.rd.handoff <- struct{}{}
	default:
		w.rd.owner = ownerNone
		if direct && w.parkLocked() {
			return alive
		}
		w.watchLocked()
	}
	p.mu.Unlock()
	return alive
}

// endStream settles everything w held once its stream ended, exactly once
// whoever saw the end (the read loop, a direct reader, or the read loop
// finding the connection closed).
func (w *worker) endStream() {
	p := w.p
	p.mu.Lock()
	if w.rd.exited {
		p.mu.Unlock()
		return
	}
	w.rd.exited = true
	w.rd.owner = ownerEnded
	select {
	case w.rd.unpark <- struct{}{}: // a parked read loop leaves
	default:
	}
	p.mu.Unlock()
	w.child.Reader.CloseFiles()
	p.workerExited(w)
	p.mu.Lock()
	wk := w.rd.waker
	w.rd.waker = nil
	p.mu.Unlock()
	// Nobody can be blocked on it: a direct reader sleeps only while it
	// owns the stream, and the stream is ended.
	wk.close()
}

// wakeDirectLocked wakes the direct reader of w if it is blocked in poll.
func (w *worker) wakeDirectLocked() {
	if w.rd.sleeping && w.rd.waker != nil {
		w.rd.sleeping = false
		w.rd.waker.wake()
	}
}

// Await returns once t is settled or ctx has ended, reading the replies of
// t's worker on the calling goroutine when it can (see readerState). When it
// cannot (t is queued, its worker already has a direct reader, the platform
// lacks the means) it returns at once and the caller waits the ordinary way;
// so it never changes what the caller learns, only how soon. It implements
// engine.Awaiter.
func (p *Pool) Await(ctx context.Context, t *Task) {
	if !directReads {
		return
	}
	p.mu.Lock()
	w := owner(t)
	if w == nil {
		p.mu.Unlock()
		return
	}
	if ctx.Err() != nil || t.Finished() || w.dead {
		w.watchLocked() // t was Awaited, say: its reply must be read
		p.mu.Unlock()
		return
	}
	switch w.rd.owner {
	case ownerNone:
		w.rd.owner = ownerDirect
	case ownerLoop:
		// The read loop is reading what arrived (briefly: it never waits
		// while it owns the stream); take over from it.
		if w.rd.want {
			p.mu.Unlock()
			return // another caller waits for this stream
		}
		if w.rd.handoff == nil {
			w.rd.handoff = make(chan struct{}, 1)
		}
		w.rd.want = true
		p.mu.Unlock()
		select {
		case <-w.rd.handoff:
		case <-ctx.Done():
			p.mu.Lock()
			if w.rd.want {
				w.rd.want = false
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			<-w.rd.handoff // handed over meanwhile: give it back below
		}
		p.mu.Lock()
		if w.rd.owner != ownerDirect {
			p.mu.Unlock()
			return // the stream ended
		}
	default:
		p.mu.Unlock()
		return
	}
	if w.rd.waker == nil {
		wk, err := newDirectWaker()
		if err != nil {
			// Out of descriptors, say: wait the ordinary way.
			p.mu.Unlock()
			if !w.release(true, false) {
				w.endStream()
			}
			return
		}
		w.rd.waker = wk
	}
	w.rd.task = t
	p.directs++
	p.mu.Unlock()

	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() {
			p.mu.Lock()
			if w.rd.task == t {
				w.wakeDirectLocked()
			}
			p.mu.Unlock()
		})
	}
	alive := true
	// The socket is read only once poll says it is readable: what is
	// buffered already is handled first, and the reply of a task just
	// written is never there yet.
	readable := false
	stopSpin := func() bool { return t.Finished() || ctx.Err() != nil }
	for {
		if readable || w.child.Reader.BufferedFrame() {
			if alive = w.pump(t); !alive {
				break
			}
		}
		// Poll before sleeping when it pays (spin.go). A wait is timed
		// from here to the moment it ends.
		waitStart := time.Now()
		// stopSpin first: a settled task's last pass must not use up
		// the policy's back-off or a probe.
		if !stopSpin() && w.rd.spin.poll() {
			readable = spinPending(w.rawConn(), waitStart, stopSpin)
			if readable || !stopSpin() {
				w.rd.spin.polled(readable)
			}
			if readable {
				w.rd.spin.saw(time.Since(waitStart))
				continue
			}
		}
		p.mu.Lock()
		if t.Finished() || ctx.Err() != nil || owner(t) != w {
			// Settled, given up, or moved to another worker (retried after
			// a timeout): the stream is no longer ours to read.
			p.mu.Unlock()
			break
		}
		w.rd.sleeping = true
		w.rd.sleeps++
		wk := w.rd.waker
		p.mu.Unlock()
		// Blocks until the socket is readable (a reply, or the end of
		// stream when the worker dies) or the waker fires (t settled by
		// someone else: a cancel, a timeout, Terminate; or ctx ended).
		var err error
		readable, err = wk.wait(w.rawConn())
		w.rd.spin.saw(time.Since(waitStart))
		p.mu.Lock()
		w.rd.sleeping = false
		p.mu.Unlock()
		if err != nil {
			break // the connection is closed: the pump sees the end
		}
	}
	if stop != nil {
		stop()
	}
	p.mu.Lock()
	w.rd.task = nil
	p.directs--
	p.mu.Unlock()
	if !w.release(alive, true) {
		w.endStream()
	}
}
