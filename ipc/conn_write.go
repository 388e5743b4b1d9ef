package ipc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The writer of a Conn. Sends append framed messages to pending (under
// mu); whoever holds wlock writes: the writer goroutine (woken by the
// first send into an empty buffer, through wake), a receive that flushes
// before it waits (non-blocking writes only, see tryFlush), Flush and
// Close. The wlock holder moves pending to active and writes active's
// segments in order. A large message is a borrowed segment: the caller's
// bytes, written in place while the caller waits on done; detach copies
// what is left if the caller stops waiting (a stall, a cancelled
// context), which is why a segment's bytes are read and written under amu.

// Frame kinds of the Go framing: [u32 little-endian length][u8 kind][payload].
const (
	kindBytes = 1 // a byte message
	kindValue = 2 // a typed value: [u64 type fingerprint][u8 encoding][encoding]
	kindClose = 3 // the sender closed its end (no payload)

	goHeader = 5
)

// maxPending is how many bytes of small messages may wait in the buffer;
// a send beyond it waits for the writer (the peer is not reading).
// More than a socket buffer (~208 KiB here) per write gains nothing.
const maxPending = 512 << 10

// stallTimeout is how long a large send waits without any write making
// progress before it reads what the peer sent meanwhile into the read
// buffer (if no receive is running), so that two peers sending each other
// large messages cannot deadlock: each takes in the other's message.
// It is long enough that a receiver delayed by a loaded machine's
// scheduling does not cost a copy of a large message, short enough that
// the deadlock it breaks is a pause, not a hang.
const stallTimeout = 50 * time.Millisecond

var errWouldBlock = errors.New("would block")

type segment struct {
	b     []byte // protected by amu once the segment is queued
	off   int    // bytes written, protected by amu
	owned bool   // b is a writer buffer, reused once written
	done  chan struct{}
	err   error // why the segment was not written, set before done is closed
}

// A large message waits for the writer in its sender's own bytes; only
// when the sender stops waiting (its context ended) is what is left
// copied. The copies are bounded: w.big is held from the queueing of a
// large message until the writer is done with it, so a Conn holds at most
// one such message besides maxPending bytes of small ones, and a further
// large send to a peer that does not read blocks (with its context)
// instead of growing the heap.

type writer struct {
	c *Conn

	mu       sync.Mutex
	pending  []*segment    // the next batch, in order (mu)
	pendingN int           // bytes of owned segments in pending (mu)
	err      error         // sticky write error (mu)
	closing  bool          // Close began: sends fail (mu)
	started  bool          // the writer goroutine runs (mu)
	space    chan struct{} // closed and replaced when a batch is taken, if waiters (mu)
	waiters  int           // sends waiting for space (mu)
	free     []*segment    // spare owned segments (mu)
	spare    []*segment    // the other batch slice, reused (mu)

	// A Conn used for requests and answers (a receive follows each send)
	// writes a send into an empty buffer at once, on the sender's
	// goroutine: waking the writer would cost a goroutine hand-off per
	// round trip for nothing, since the receive writes it anyway. Two
	// sends in a row without a receive switch back to waking the writer,
	// which is what coalesces a stream of small messages.
	sends  int  // sends since the last receive (mu)
	direct bool // request/answer pattern seen: write a first send directly (mu)

	wake   chan struct{} // cap 1: "there is something to write"
	quit   chan struct{}
	exited chan struct{}

	wlock  sync.Mutex // held by whoever writes active
	amu    sync.Mutex // protects the bytes and offsets of queued segments
	active []*segment // the batch being written (wlock)
	ai     int        // active[:ai] are written (wlock)

	progress atomic.Uint64 // successful writes, for stall detection

	big ctxLock // held while a large message is queued (see segment)
}

func (w *writer) init(c *Conn) {
	w.c = c
	w.space = make(chan struct{})
	w.wake = make(chan struct{}, 1)
	w.quit = make(chan struct{})
	w.exited = make(chan struct{})
	w.big = newCtxLock()
}

// appendHeader appends the frame header of a message of n bytes.
func (c *Conn) appendHeader(dst []byte, kind byte, n int) []byte {
	if c.cfg.python {
		if n > 0x7fffffff {
			dst = binary.BigEndian.AppendUint32(dst, 0xffffffff) // -1
			return binary.BigEndian.AppendUint64(dst, uint64(n))
		}
		return binary.BigEndian.AppendUint32(dst, uint32(n))
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	return append(dst, kind)
}

// tailLocked returns the owned segment at the end of pending, adding one.
func (w *writer) tailLocked() *segment {
	if n := len(w.pending); n > 0 && w.pending[n-1].owned {
		return w.pending[n-1]
	}
	var s *segment
	if n := len(w.free); n > 0 {
		s, w.free = w.free[n-1], w.free[:n-1]
	} else {
		s = &segment{owned: true, b: make([]byte, 0, 4096)}
	}
	w.pending = append(w.pending, s)
	return s
}

// readyLocked waits, with mu held, until a send may append: the buffer
// has room. It fails after Close or a write error.
func (w *writer) readyLocked(ctx context.Context) error {
	for {
		switch {
		case w.err != nil:
			return w.err
		case w.closing:
			return fmt.Errorf("%w: send", ErrClosed)
		case w.pendingN < maxPending:
			return nil
		}
		ch := w.space
		w.waiters++
		w.kickLocked()
		w.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-ctx.Done():
			err = fmt.Errorf("ipc: send: %w", ctx.Err())
		}
		w.mu.Lock()
		w.waiters--
		if err != nil {
			return err
		}
	}
}

// kickLocked wakes the writer goroutine, starting it the first time.
func (w *writer) kickLocked() {
	if !w.started {
		w.started = true
		go w.loop()
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *writer) kick() {
	w.mu.Lock()
	w.kickLocked()
	w.mu.Unlock()
}

// appendedLocked is called, with mu held, after a send appended to
// pending (first: into an empty buffer). It wakes the writer, or reports
// that the sender should write directly (see direct).
func (w *writer) appendedLocked(first bool) (writeNow bool) {
	w.sends++
	if w.sends > 1 {
		w.direct = false
	}
	if !first {
		return false
	}
	if w.direct && w.c.rc != nil {
		return true
	}
	w.kickLocked()
	return false
}

// writeNow writes pending without waiting for the socket, on the
// sender's goroutine; if someone else holds the write lock, or the kernel
// does not take everything, the writer goroutine finishes.
func (w *writer) writeNow() {
	if !w.wlock.TryLock() {
		w.kick()
		return
	}
	err := w.drain(false)
	w.wlock.Unlock()
	if err == errWouldBlock {
		w.kick()
	}
}

func (w *writer) sendBytes(ctx context.Context, b []byte) error {
	if len(b) >= bigMessage && w.c.rc != nil {
		return w.sendBig(ctx, b)
	}
	w.mu.Lock()
	if err := w.readyLocked(ctx); err != nil {
		w.mu.Unlock()
		return err
	}
	first := len(w.pending) == 0
	s := w.tailLocked()
	n := len(s.b)
	s.b = w.c.appendHeader(s.b, kindBytes, len(b))
	s.b = append(s.b, b...)
	w.pendingN += len(s.b) - n
	now := w.appendedLocked(first)
	w.mu.Unlock()
	if now {
		w.writeNow()
	}
	return nil
}

// sendBig queues the caller's bytes without copying them and waits until
// they are written, or copies what is left when no write made progress
// for stallTimeout or ctx ended (the message then goes out later).
func (w *writer) sendBig(ctx context.Context, b []byte) error {
	if err := w.acquireBig(ctx); err != nil {
		return err
	}
	w.mu.Lock()
	if err := w.readyLocked(ctx); err != nil {
		w.mu.Unlock()
		w.big.unlock()
		return err
	}
	s := w.tailLocked()
	n := len(s.b)
	s.b = w.c.appendHeader(s.b, kindBytes, len(b))
	w.pendingN += len(s.b) - n
	big := &segment{b: b, done: make(chan struct{})}
	w.pending = append(w.pending, big)
	w.sends++
	w.kickLocked()
	w.mu.Unlock()

	t := time.NewTimer(stallTimeout)
	defer t.Stop()
	last := w.progress.Load()
	for {
		select {
		case <-big.done:
			return big.err
		case <-ctx.Done():
			w.detach(big)
			return nil
		case <-t.C:
			if p := w.progress.Load(); p != last {
				last = p
				t.Reset(stallTimeout)
				continue
			}
			// No write progressed: the peer does not read. If that is
			// because it is itself sending to us, it waits for us to
			// read: take in what it sent (into the read buffer, where
			// our next receive finds it) and look again soon.
			if w.c.r.absorb(false) {
				// It was sending: keep taking its bytes in as they come
				// (waiting on the thread, see threadWait) until our
				// message is out or it stops sending for a while.
				for idle := 0; idle < 50; {
					select {
					case <-big.done:
						return big.err
					case <-ctx.Done():
						w.detach(big)
						return nil
					default:
					}
					if w.c.r.absorb(true) {
						idle = 0
					} else {
						idle++
					}
				}
			}
			t.Reset(stallTimeout)
		}
	}
}

// acquireBig waits for w.big, taking in what the peer sends meanwhile
// (see stallTimeout): the large message before this one may be waiting
// for a peer that is itself blocked sending to us.
func (w *writer) acquireBig(ctx context.Context) error {
	if w.big.tryLock() {
		return nil
	}
	// The previous large message is not written yet, so it stalled once
	// already: take in at once what the peer sent (a send with a short
	// context would otherwise never reach the stall rule).
	for w.c.r.absorb(false) {
	}
	if w.big.tryLock() {
		return nil
	}
	t := time.NewTicker(stallTimeout)
	defer t.Stop()
	for {
		select {
		case w.big <- struct{}{}:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("ipc: send: %w", ctx.Err())
		case <-t.C:
			for w.c.r.absorb(false) {
			}
		}
	}
}

// detaches counts detach copies (tests and benchmarks read it).
var detaches atomic.Int64

// detach gives a borrowed segment its own copy of what is not written.
func (w *writer) detach(s *segment) {
	w.amu.Lock()
	if s.off < len(s.b) {
		detaches.Add(1)
		s.b = append([]byte(nil), s.b[s.off:]...)
		s.off = 0
	}
	w.amu.Unlock()
}

// loop is the writer goroutine.
func (w *writer) loop() {
	defer close(w.exited)
	for {
		select {
		case <-w.wake:
		case <-w.quit:
			return
		}
		w.wlock.Lock()
		w.drain(true)
		w.wlock.Unlock()
	}
}

// tryFlush writes what is buffered without waiting for the socket, if no
// one else is writing; what the kernel does not take is left to the
// writer goroutine. A receive calls it so that a request is never held
// back while its sender waits for the answer. It reports whether there
// was something to send (an answer is then likely soon).
func (w *writer) tryFlush() bool {
	if w.c.rc == nil || !w.c.cfg.canWrite {
		return false
	}
	w.mu.Lock()
	empty := len(w.pending) == 0
	// A send, then this receive: requests and answers.
	w.direct = w.sends == 1
	w.sends = 0
	w.mu.Unlock()
	if empty {
		return false
	}
	if !w.wlock.TryLock() {
		return true
	}
	err := w.drain(false)
	w.wlock.Unlock()
	if err == errWouldBlock {
		w.kick()
	}
	return true
}

// flush writes everything buffered and waits for the kernel to take it.
func (w *writer) flush(ctx context.Context) error {
	stop := watchDeadline(ctx, w.c.nc.SetWriteDeadline)
	w.wlock.Lock()
	err := w.drain(true)
	w.wlock.Unlock()
	if stop() {
		// The deadline was moved: the writer goroutine may have given up
		// too; wake it for what is left.
		w.kick()
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if w.c.rc == nil {
			// TLS: crypto/tls cannot resume a timed-out write; the
			// Conn is broken, say so for good (see Conn).
			err = w.fail(fmt.Errorf("%w: a TLS flush was cut off by its context, which breaks a TLS connection: %w", ErrPeerDied, err))
		}
		return fmt.Errorf("ipc: flush: %w: %w", ctx.Err(), err)
	}
	return err
}

// drain writes pending batches until none is left, with wlock held. Not
// blocking, it returns errWouldBlock when the kernel takes no more. A
// deadline error (Flush's context, Close's bound) is returned without
// breaking the connection; other errors are sticky.
func (w *writer) drain(block bool) error {
	for {
		if len(w.active) == 0 {
			w.mu.Lock()
			if w.err != nil {
				err := w.err
				w.mu.Unlock()
				return err
			}
			if len(w.pending) == 0 {
				w.mu.Unlock()
				return nil
			}
			w.active, w.pending, w.spare = w.pending, w.spare[:0], nil
			w.pendingN = 0
			if w.waiters > 0 {
				close(w.space)
				w.space = make(chan struct{})
			}
			w.mu.Unlock()
		}
		for w.ai < len(w.active) {
			s := w.active[w.ai]
			err := w.write(s, block)
			if err == errWouldBlock || errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			if err != nil {
				return w.fail(err)
			}
			w.active[w.ai] = nil
			w.ai++
			w.finished(s)
		}
		w.mu.Lock()
		w.spare = w.active[:0]
		w.mu.Unlock()
		w.active, w.ai = nil, 0
	}
}

// finished recycles or releases a written segment.
func (w *writer) finished(s *segment) {
	if s.done != nil {
		close(s.done)
		w.big.unlock()
		return
	}
	w.mu.Lock()
	if len(w.free) < 2 && cap(s.b) <= 1<<20 {
		s.b, s.off = s.b[:0], 0
		w.free = append(w.free, s)
	}
	w.mu.Unlock()
}

// fail makes err the writer's sticky error and releases every waiting
// sender.
func (w *writer) fail(err error) error {
	err = w.c.writeError(err)
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	err = w.err
	var segs []*segment
	if w.ai < len(w.active) {
		segs = append(segs, w.active[w.ai:]...)
	}
	segs = append(segs, w.pending...)
	w.active, w.ai, w.pending, w.pendingN = nil, 0, nil, 0
	if w.waiters > 0 {
		close(w.space)
		w.space = make(chan struct{})
	}
	w.mu.Unlock()
	for _, s := range segs {
		if s != nil && s.done != nil {
			s.err = err
			close(s.done)
			w.big.unlock()
		}
	}
	return err
}

// write writes one segment: through the raw connection without blocking
// a thread (waiting in the poller when block is set), or, for TLS, with
// the connection's blocking Write.
func (w *writer) write(s *segment, block bool) error {
	if w.c.rc == nil {
		if !block {
			return errWouldBlock
		}
		n, err := w.c.nc.Write(s.b[s.off:])
		s.off += n
		if n > 0 {
			w.progress.Add(1)
		}
		return err
	}
	var werr error
	err := w.c.rc.Write(func(fd uintptr) bool {
		for {
			w.amu.Lock()
			p := s.b[s.off:]
			if len(p) == 0 {
				w.amu.Unlock()
				return true
			}
			n, e := syscall.Write(int(fd), p)
			if n > 0 {
				s.off += n
			}
			w.amu.Unlock()
			if n > 0 {
				w.progress.Add(1)
			}
			switch e {
			case nil:
			case syscall.EINTR:
			case syscall.EAGAIN:
				if block {
					if threadWait(int(fd), true) {
						continue
					}
					return false
				}
				werr = errWouldBlock
				return true
			default:
				werr = e
				return true
			}
		}
	})
	if werr != nil {
		return werr
	}
	return err
}

// writeError turns a write failure into the error the Conn reports.
func (c *Conn) writeError(err error) error {
	switch {
	case errors.Is(err, ErrClosed), errors.Is(err, ErrPeerDied):
		return err
	case errors.Is(err, net.ErrClosed):
		return fmt.Errorf("%w: send", ErrClosed)
	case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrClosedPipe):
		if c.r.peerClosed.Load() {
			return fmt.Errorf("ipc: send: the peer closed the connection: %w", io.ErrClosedPipe)
		}
		return fmt.Errorf("%w: send: %w", ErrPeerDied, err)
	}
	return fmt.Errorf("ipc: send: %w", err)
}

// close ends the writer: the close message (Go framing), a flush bounded
// by closeTimeout, then the goroutine's end.
func (w *writer) close(deferMsg bool) error {
	w.mu.Lock()
	w.closing = true
	if !w.c.cfg.python && w.c.cfg.canWrite && w.err == nil && !w.c.exported.Load() && !deferMsg {
		s := w.tailLocked()
		s.b = w.c.appendHeader(s.b, kindClose, 0)
	}
	started := w.started
	w.mu.Unlock()
	w.c.nc.SetWriteDeadline(time.Now().Add(closeTimeout))
	w.wlock.Lock()
	err := w.drain(true)
	w.fail(fmt.Errorf("%w: send", ErrClosed))
	w.wlock.Unlock()
	close(w.quit)
	if started {
		<-w.exited
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("ipc: close: the peer did not read the buffered messages within %v", closeTimeout)
	}
	if err != nil && (errors.Is(err, ErrClosed) || errors.Is(err, io.ErrClosedPipe)) {
		// Ours closed, or the peer's closed first (it said so): what
		// is lost was sent to an end that closed, not a failure of ours.
		err = nil
	}
	return err
}

// watchDeadline moves a connection deadline to the past when ctx ends, so
// that a blocked read or write returns. The returned stop reports whether
// it did (the deadline was then reset to none).
func watchDeadline(ctx context.Context, set func(time.Time) error) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return false }
	}
	fired := make(chan struct{})
	s := context.AfterFunc(ctx, func() {
		set(time.Unix(1, 0))
		close(fired)
	})
	return func() bool {
		if s() {
			return false
		}
		<-fired
		set(time.Time{})
		return true
	}
}
