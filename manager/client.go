package manager

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// cancelGrace is how long a call whose context ended waits for the
// server's answer to its cancel (normally one round trip): an operation
// that completed on the server meanwhile is reported as completed, so an
// item taken from a queue or a lock acquired is never lost.
const cancelGrace = time.Second

// client is one connection to a server, shared by every proxy made or
// imported over it. Calls from many goroutines are multiplexed by id.
type client struct {
	conn msgConn
	raw  bool
	inst uint64
	hb   time.Duration
	addr address // where it is connected (for proxies sent to other processes)
	key  []byte

	wmu  sync.Mutex
	wbuf []byte

	mu    sync.Mutex
	calls map[uint64]*pendingCall
	next  uint64
	err   error // why the connection broke; nil while it works
	// abandoned holds the acquires and queue Gets that gave up after
	// their cancel grace, by id: when the server's answer comes late and
	// says the lock or unit was granted, or the item taken, the client
	// gives it back (undoLate).
	abandoned map[uint64]abandonedCall

	// token is held (a value sent into it) by the one goroutine that
	// reads the connection: a caller waiting for its answer reads it
	// itself, and hands on every other caller's answer it meets, so a
	// lone call's answer wakes its caller directly (no reader goroutine
	// in between); the heartbeat reads while nobody calls.
	token chan struct{}
	resp  response
	rbuf  [8][]byte

	done     chan struct{} // closed when the connection broke
	lastRecv atomic.Int64
	lastSend atomic.Int64
	closed   atomic.Bool
	wg       sync.WaitGroup

	fast *fastClient // the call slot of a local connection, nil if none (set before first use)
}

type address struct{ network, addr string }

type pendingCall struct {
	done chan struct{}
	res  [][]byte
	err  error
}

var callPool = sync.Pool{New: func() any { return &pendingCall{done: make(chan struct{}, 1)} }}

// newClient says hello over conn and starts the reader.
func newClient(ctx context.Context, conn msgConn, hb time.Duration, addr address, key []byte) (*client, error) {
	if hb <= 0 {
		hb = DefaultHeartbeat
	}
	c := &client{conn: conn, hb: hb, addr: addr, key: key, calls: map[uint64]*pendingCall{}, done: make(chan struct{}), token: make(chan struct{}, 1)}
	now := time.Now().UnixNano()
	c.lastRecv.Store(now)
	c.lastSend.Store(now)
	c.wg.Add(1)
	go c.heartbeat()
	res, err := c.call(ctx, opHello, 0, [][]byte{putU64(uint64(hb / time.Millisecond)), {1}})
	if err == nil && (len(res) != 3 || len(res[1]) != 1) {
		err = fmt.Errorf("%w: hello answered with %d results", wire.ErrCorrupt, len(res))
	}
	if err != nil {
		c.close()
		return nil, err
	}
	c.inst, _ = u64(res[0])
	c.raw = res[1][0] == 1
	c.attachFast(ctx)
	return c, nil
}

func (c *client) close() {
	if c.closed.Swap(true) {
		return
	}
	c.conn.Close()
	c.fail(ErrClosed)
	c.wg.Wait()
	c.closeFast()
}

// fail breaks the connection: every pending and later call gets err.
func (c *client) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = fmt.Errorf("%w: %w", ErrConnLost, err)
	calls := c.calls
	c.calls = nil
	c.mu.Unlock()
	close(c.done)
	for _, p := range calls {
		p.err = c.err
		p.done <- struct{}{}
	}
	c.conn.Close()
}

// readOne reads and handles one message; the caller holds the token. It
// returns ctx's error if ctx ended first (the connection is unchanged),
// and breaks the connection on any other error.
func (c *client) readOne(ctx context.Context) error {
	msg, err := c.conn.RecvMsg(ctx)
	if err != nil {
		if ctx.Err() != nil && !c.closed.Load() {
			select {
			case <-c.done:
			default:
				return ctx.Err()
			}
		}
		if c.closed.Load() {
			err = ErrClosed
		}
		c.fail(err)
		return err
	}
	c.lastRecv.Store(time.Now().UnixNano())
	if len(msg) == 0 {
		err := fmt.Errorf("%w: empty message", wire.ErrCorrupt)
		c.fail(err)
		return err
	}
	switch msg[0] {
	case msgPong:
		return nil
	case msgPing:
		c.send(func(b []byte) []byte { return append(b, msgPong) })
		return nil
	}
	resp := &c.resp
	if err := parseResponse(msg, resp, c.rbuf[:0]); err != nil {
		c.fail(err)
		return err
	}
	c.mu.Lock()
	p := c.calls[resp.id]
	delete(c.calls, resp.id)
	c.mu.Unlock()
	if p == nil {
		// A call that gave up after its cancel grace: an acquire the
		// server granted meanwhile is given back.
		c.mu.Lock()
		ab, ok := c.abandoned[resp.id]
		delete(c.abandoned, resp.id)
		c.mu.Unlock()
		if ok {
			c.undoLate(ab, resp)
		}
		return nil
	}
	if resp.status == statusOK {
		p.res = copyFields(resp.res)
	} else {
		p.err = remoteErr(resp.envelope)
	}
	p.done <- struct{}{}
	return nil
}

// wait waits for p's answer, reading the connection whenever no other
// goroutine does. It returns nil once p is answered (p.done received),
// or ctx's error.
func (c *client) wait(ctx context.Context, p *pendingCall) error {
	for {
		select {
		case <-p.done:
			return nil
		case c.token <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		// The reader now.
		var err error
		for {
			select {
			case <-p.done:
				<-c.token
				return nil
			default:
			}
			if err = c.readOne(ctx); err != nil {
				break
			}
		}
		<-c.token
		if ctx.Err() != nil {
			// Answered meanwhile, or not.
			select {
			case <-p.done:
				return nil
			default:
				return ctx.Err()
			}
		}
		// The connection broke: fail answered p.
	}
}

// copyFields copies results out of the message buffer, in one allocation.
func copyFields(fs [][]byte) [][]byte {
	if len(fs) == 0 {
		return nil
	}
	n := 0
	for _, f := range fs {
		n += len(f)
	}
	all := make([]byte, 0, n)
	out := make([][]byte, len(fs))
	for i, f := range fs {
		at := len(all)
		all = append(all, f...)
		out[i] = all[at:len(all):len(all)]
	}
	return out
}

// CallError is the error of a call the server answered with an error. It
// wraps the remote error, so errors.Is matches the sentinels the server's
// error matched (ErrKeyNotFound, ErrOwnerDead, ...) and errors.As finds
// registered error types (a custom method's own errors).
type CallError struct {
	// Op is the operation: a built-in proxy's, as "Dict.Get", or a
	// custom method's, as "pkg.Counter.Add" (the registered type's name
	// and the method's).
	Op     string
	Remote *errs.RemoteError
}

// Error names the operation and the server's message.
func (e *CallError) Error() string { return "manager: " + e.Op + ": " + e.Remote.Message }

// Unwrap returns the remote error.
func (e *CallError) Unwrap() error { return e.Remote }

func remoteErr(env []byte) error {
	re, err := errs.DecodeError(env)
	if err != nil {
		return fmt.Errorf("manager: undecodable error from the server: %w", err)
	}
	return &CallError{Op: re.Func, Remote: re}
}

func (c *client) send(build func([]byte) []byte) error {
	c.wmu.Lock()
	c.wbuf = build(c.wbuf[:0])
	err := c.conn.SendMsg(c.wbuf)
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil
	}
	c.wmu.Unlock()
	c.lastSend.Store(time.Now().UnixNano())
	return err
}

// heartbeat pings an idle connection and breaks one over which nothing
// arrived for HeartbeatMisses intervals.
func (c *client) heartbeat() {
	defer c.wg.Done()
	t := time.NewTicker(c.hb / 2)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		now := time.Now()
		if now.Sub(time.Unix(0, c.lastRecv.Load())) > HeartbeatMisses*c.hb {
			c.fail(fmt.Errorf("no answer to heartbeats for %v", HeartbeatMisses*c.hb))
			return
		}
		if now.Sub(time.Unix(0, c.lastSend.Load())) >= c.hb/2 {
			c.send(func(b []byte) []byte { return append(b, msgPing) })
		}
		// Read the pong (and anything else) if no caller is reading.
		select {
		case c.token <- struct{}{}:
			rctx, cancel := context.WithTimeout(context.Background(), c.hb/4)
			for c.readOne(rctx) == nil {
			}
			cancel()
			<-c.token
		default:
		}
	}
}

// call sends one request and waits for its answer.
func (c *client) call(ctx context.Context, op byte, obj uint64, args [][]byte) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var budget uint64
	if dl, ok := ctx.Deadline(); ok {
		budget = uint64(max(time.Until(dl)/time.Microsecond, 1))
	}
	p := callPool.Get().(*pendingCall)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		callPool.Put(p)
		return nil, err
	}
	c.next++
	id := c.next
	c.calls[id] = p
	c.mu.Unlock()
	inst := c.inst
	var werr error
	if c.fastPost(id, op, obj, budget, args) {
		werr = c.fastWait(ctx, p)
	} else {
		if err := c.send(func(b []byte) []byte { return appendRequest(b, id, op, inst, obj, budget, args) }); err != nil {
			if errors.Is(err, wire.ErrFrameTooLarge) {
				c.mu.Lock()
				delete(c.calls, id)
				c.mu.Unlock()
				callPool.Put(p)
				return nil, err
			}
			c.fail(err) // the waiter below is answered
		}
		werr = c.wait(ctx, p)
	}
	if werr == nil {
		return p.finish()
	}
	// Tell the server, and wait for its answer for a moment: what it
	// completed stays completed.
	c.send(func(b []byte) []byte { return binary.AppendUvarint(append(b, msgCancel), id) })
	gctx, cancel := context.WithTimeout(context.Background(), cancelGrace)
	if op == opCondWait {
		// The server answers a cancelled Condition.Wait only once it has
		// the lock back (Wait returns holding it, whatever ended the
		// wait, as psync's does), which may take as long as another
		// holder keeps it: wait for that answer, or the connection's end,
		// not the grace (a Wait that gave up returned without the lock,
		// and the lock was later retaken for a caller that had gone).
		cancel()
		gctx, cancel = context.WithCancel(context.Background())
	}
	defer cancel()
	answered := c.wait(gctx, p) == nil
	if !answered {
		c.mu.Lock()
		if c.calls[id] == p {
			delete(c.calls, id) // the reader drops the late answer; p is not reused
			if op == opAcquire || op == opQueueGet {
				if c.abandoned == nil {
					c.abandoned = map[uint64]abandonedCall{}
				}
				c.abandoned[id] = abandonedCall{obj: obj, op: op}
			}
		} else {
			// Answered (or failed with the connection) between the
			// grace's end and this lock: whoever took p from calls
			// signals it, and its answer counts, a grant included.
			answered = true
		}
		c.mu.Unlock()
		if answered {
			<-p.done
		}
	}
	if !answered {
		return nil, fmt.Errorf("manager: %s: %w", opName(op), ctx.Err())
	}
	res, err := p.finish()
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil, fmt.Errorf("manager: %s: %w", opName(op), ctx.Err())
	}
	return res, err
}

// abandonedCall is a call whose caller gave up after its cancel grace.
type abandonedCall struct {
	obj uint64
	op  byte
}

// undoLate gives back what a late answer to an abandoned call of ab.obj
// granted: its caller already returned ctx's error, so what the server
// did for it would otherwise stay done for nobody. A lock held or a unit
// taken would stay with this connection, which lives on, and every other
// process would wait for it forever: it is released. A grant from a dead
// holder (ErrOwnerDead) is released too: nobody repaired the state, so the
// lock becomes not recoverable, as when any holder unlocks without
// MarkConsistent — a clear error for the next acquirer instead of a hang.
// A queue item a Get took would be lost: it goes back to the front of the
// queue (opQueueUnget), where it was. The undo runs on its own goroutine
// (the reader must go on reading).
func (c *client) undoLate(ab abandonedCall, resp *response) {
	switch ab.op {
	case opAcquire:
		granted := false
		if resp.status == statusOK {
			granted, _ = oneBool(resp.res, nil)
		} else {
			granted = errors.Is(remoteErr(resp.envelope), ErrOwnerDead)
		}
		if !granted {
			return
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), undoTimeout)
			defer cancel()
			c.call(ctx, opRelease1, ab.obj, nil)
		}()
	case opQueueGet:
		if resp.status != statusOK || len(resp.res) != 1 {
			return // nothing was taken
		}
		item := bytes.Clone(resp.res[0]) // resp's buffers are the reader's
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), undoTimeout)
			defer cancel()
			c.call(ctx, opQueueUnget, ab.obj, [][]byte{item})
		}()
	}
}

// undoTimeout bounds the release of a late grant; a connection that
// cannot carry it within this is failing anyway, and its end releases
// everything it held.
const undoTimeout = 30 * time.Second

func (p *pendingCall) finish() ([][]byte, error) {
	res, err := p.res, p.err
	p.res, p.err = nil, nil
	callPool.Put(p)
	return res, err
}
