package core

import (
	"context"
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
type readerState struct {
	owner   readerOwner
	missed  bool          // the read loop was woken while another goroutine owned the stream
	want    bool          // a direct reader waits for the read loop to hand the stream over
	handoff chan struct{} // the read loop hands the stream over (cap 1)

	task     *Task        // the task the direct reader waits for
	sleeping bool         // the direct reader is blocked in poll: wake it through waker
	waker    *directWaker // wakes a direct reader blocked in poll (made on first use)
	sleeps   int          // times a direct reader blocked in poll (for tests)
	exited   bool         // the stream ended and workerExited ran or runs
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
		waiting := pending(w.child.Conn)
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
	return w.release(w.pump(nil))
}

// release gives up the stream after reading it: first it reads again if the
// read loop was woken meanwhile (so nothing that arrived stays unread), then
// hands it to a waiting direct reader or leaves it to the read loop. If the
// stream ended it stays ended and release reports false; the caller must
// then call endStream.
func (w *worker) release(alive bool) bool {
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
	if !directReads || ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	w := owner(t)
	if t.Finished() || w == nil || w.dead {
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
			if !w.release(true) {
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
	for {
		if readable || w.child.Reader.BufferedFrame() {
			if alive = w.pump(t); !alive {
				break
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
		readable, err = wk.wait(w.child.Conn)
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
	if !w.release(alive) {
		w.endStream()
	}
}
