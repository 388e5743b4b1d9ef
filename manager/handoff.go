package manager

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// Hand-offs: the reference a proxy in transit holds.
//
// Encoding a proxy into a task or process argument (or result) takes a
// hand-off reference on the server (opHandoff), so that the object
// outlives the sender's Close while the proxy travels. The reference is
// given back at the first of:
//
//   - the receiver's claim (opClaim at its import): it becomes the
//     receiver's own reference;
//   - the transport's word that the encoding never reached a receiver
//     (wire's Exported.Done(false): the task was refused, cancelled before
//     any frame carrying it was written, the process failed to start, the
//     encoding failed after this export): at once;
//   - claimWindow after the transport's word that it did (Done(true)): a
//     pool says so at the task's outcome, after the worker decoded its
//     arguments (a worker that kept an earlier import of the proxy never
//     claims again, and one that died before decoding never will), a
//     Process at its start, before the child claims, so the window is
//     the child's time to start and import;
//   - the end of the sender's connection (the sender died or closed its
//     Manager): a receiver that has not claimed by then finds the object
//     only if something else holds it;
//   - handoffTTL after the export, the last resort: it fires only for an
//     encoding no transport settles (made with wire's codec directly and
//     neither sent nor Finished), or whose settlement could not reach the
//     server while the sender's connection lived on.
//
// Every expiry runs on a timer of its own (not at the next hand-off), and
// the server's close stops them all.

// handoffTTL bounds how long a hand-off nobody settles waits for its
// receiver.
const handoffTTL = 5 * time.Minute

// claimWindow is how long a delivered hand-off waits for its receiver's
// claim. A variable for tests.
var claimWindow = 30 * time.Second

type handoff struct {
	obj   uint64
	from  *sconn
	timer *time.Timer
}

// newHandoffLocked takes a hand-off reference to object id (alive, its
// entry e) for c and returns its token (s.mu held).
func (s *server) newHandoffLocked(c *sconn, id uint64, e *entry) uint64 {
	var b [8]byte
	rand.Read(b[:])
	tok := binary.LittleEndian.Uint64(b[:])
	for tok == 0 || s.handoffs[tok] != nil {
		rand.Read(b[:])
		tok = binary.LittleEndian.Uint64(b[:])
	}
	e.refs++
	s.handoffs[tok] = &handoff{obj: id, from: c, timer: time.AfterFunc(handoffTTL, func() { s.expireHandoff(tok) })}
	return tok
}

// takeHandoffLocked removes hand-off tok of object id, if it is still
// held, and reports whether it was: its reference is the caller's now.
func (s *server) takeHandoffLocked(tok, id uint64) bool {
	h := s.handoffs[tok]
	if h == nil || h.obj != id {
		return false
	}
	h.timer.Stop()
	delete(s.handoffs, tok)
	return true
}

// expireHandoff gives back hand-off tok's reference, if still held.
func (s *server) expireHandoff(tok uint64) {
	s.mu.Lock()
	h := s.handoffs[tok]
	var dead []object
	if h != nil && s.takeHandoffLocked(tok, h.obj) {
		dead = s.dropRefsLocked(map[uint64]int{h.obj: 1})
	}
	s.mu.Unlock()
	for _, o := range dead {
		o.kill()
	}
}

// settleHandoff is the sender's word on hand-off tok (opSettle): not
// delivered, it ends now; delivered, it waits claimWindow at most. Only
// the connection that took a hand-off settles it.
func (c *sconn) settleHandoff(tok uint64, delivered bool) {
	s := c.s
	s.mu.Lock()
	h := s.handoffs[tok]
	if h == nil || h.from != c {
		s.mu.Unlock()
		return
	}
	if delivered {
		h.timer.Reset(claimWindow)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.expireHandoff(tok)
}

// dropHandoffsLocked ends the hand-offs connection c took (it ended),
// counting their references in refs for the caller to drop.
func (s *server) dropHandoffsLocked(c *sconn, refs map[uint64]int) {
	for t, h := range s.handoffs {
		if h.from == c {
			h.timer.Stop()
			delete(s.handoffs, t)
			refs[h.obj]++
		}
	}
}

// stopHandoffsLocked stops every hand-off's timer (the server closes).
func (s *server) stopHandoffsLocked() {
	for t, h := range s.handoffs {
		h.timer.Stop()
		delete(s.handoffs, t)
	}
}

// ---- the sender's side ----

// settles queues the transports' words on hand-offs for the server. The
// hook that gives them (wire's Exported.Done) must not block, and may run
// with the transport's locks held: it only queues, and one goroutine, run
// while the queue is not empty, makes the calls.
var settles struct {
	sync.Mutex
	q       []settleItem
	running bool
}

type settleItem struct {
	c         *client
	tok       uint64
	delivered bool
}

// settleLater queues the outcome of hand-off tok taken over c.
func settleLater(c *client, tok uint64, delivered bool) {
	settles.Lock()
	settles.q = append(settles.q, settleItem{c, tok, delivered})
	run := !settles.running
	settles.running = true
	settles.Unlock()
	if run {
		go drainSettles()
	}
}

func drainSettles() {
	for {
		settles.Lock()
		if len(settles.q) == 0 {
			settles.running = false
			settles.q = nil
			settles.Unlock()
			return
		}
		it := settles.q[0]
		settles.q = settles.q[1:]
		settles.Unlock()
		d := byte(0)
		if it.delivered {
			d = 1
		}
		// A broken or closed connection fails at once: the server gave
		// back that connection's hand-offs when it ended.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		it.c.call(ctx, opSettle, 0, [][]byte{putU64(it.tok), {d}})
		cancel()
	}
}
