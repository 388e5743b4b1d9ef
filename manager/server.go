package manager

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/logs"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// msgConn is one authenticated message connection (an ipc.Conn): the
// server and the client speak through nothing else.
type msgConn interface {
	// SendMsg sends one message; it is called by one goroutine at a time.
	SendMsg(b []byte) error
	// RecvMsg returns the next message, valid until the next call; one
	// goroutine at a time calls it. A receive that ctx interrupts leaves
	// the connection as it was (ipc puts back what it read).
	RecvMsg(ctx context.Context) ([]byte, error)
	// SameBuild reports whether the peer runs this build of the program
	// (the handshake's build-id exchange).
	SameBuild() bool
	Close() error
}

// DefaultHeartbeat is the heartbeat interval unless Heartbeat says
// otherwise: an end that has sent nothing for that long sends a ping, and
// a connection over which nothing arrived for HeartbeatMisses intervals
// is dropped (by the server: the client's references and holdings are
// released; by the client: every call fails with ErrConnLost).
const (
	DefaultHeartbeat = 2 * time.Second
	HeartbeatMisses  = 3
)

// server owns the objects and serves the connections.
type server struct {
	inst uint64 // instance id: part of every object id, new at every start
	raw  bool   // values are stored in raw encodings: same-build clients only
	log  *logs.Limiter

	mu       sync.Mutex
	objs     map[uint64]*entry
	named    map[string]uint64
	next     uint64
	conns    map[*sconn]struct{}
	handoffs map[uint64]*handoff
	closed   bool
	wg       sync.WaitGroup
}

type entry struct {
	obj   object
	kind  byte
	desc  string // element types, for named objects' type checks
	refs  int
	named bool // lives until shutdown
}

func newServer(raw bool, log *slog.Logger) *server {
	var b [8]byte
	rand.Read(b[:])
	inst := binary.LittleEndian.Uint64(b[:]) | 1 // never 0
	return &server{inst: inst, raw: raw, log: logs.New(log), objs: map[uint64]*entry{}, named: map[string]uint64{},
		conns: map[*sconn]struct{}{}, handoffs: map[uint64]*handoff{}}
}

// serveConn serves one connection until it breaks or the server closes.
func (s *server) serveConn(mc msgConn) {
	c := &sconn{s: s, conn: mc, refs: map[uint64]int{}, pending: map[uint64]context.CancelFunc{}, touched: map[uint64]object{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.hb.Store(int64(DefaultHeartbeat))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		mc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	c.lastRecv.Store(time.Now().UnixNano())
	stop := make(chan struct{})
	go c.watch(stop)
	err := c.loop()
	close(stop)
	c.gone(err)
}

// close drops every connection and object.
func (s *server) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	cs := make([]*sconn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	objs := s.objs
	s.objs = map[uint64]*entry{}
	s.stopHandoffsLocked()
	s.mu.Unlock()
	for _, c := range cs {
		c.conn.Close()
	}
	for _, e := range objs {
		e.obj.kill()
	}
	s.wg.Wait()
}

type sconn struct {
	s      *server
	conn   msgConn
	ctx    context.Context
	cancel context.CancelFunc

	wmu  sync.Mutex
	wbuf []byte

	mu      sync.Mutex
	refs    map[uint64]int
	pending map[uint64]context.CancelFunc
	touched map[uint64]object // objects this connection may hold (locks, units, barrier places)
	raw     bool              // this connection uses raw encodings

	lastRecv atomic.Int64
	lastSend atomic.Int64
	hb       atomic.Int64
	reqs     sync.WaitGroup // blocking requests' goroutines and the call slot's loop

	fast *fastServer // the call slot, once the client asked for one (c.mu)
}

func (c *sconn) loop() error {
	var r request
	for {
		msg, err := c.conn.RecvMsg(c.ctx)
		if err != nil {
			return err
		}
		c.lastRecv.Store(time.Now().UnixNano())
		if len(msg) == 0 {
			return fmt.Errorf("%w: empty message", wire.ErrCorrupt)
		}
		switch msg[0] {
		case msgPing:
			c.send(func(b []byte) []byte { return append(b, msgPong) })
			continue
		case msgPong:
			continue
		case msgFastWake:
			c.fastWake()
			continue
		case msgCancel:
			id, err := parseID(msg)
			if err != nil {
				return err
			}
			c.mu.Lock()
			cancel := c.pending[id]
			c.mu.Unlock()
			if cancel != nil {
				cancel()
			}
			continue
		case msgRequest:
		default:
			return fmt.Errorf("%w: message kind %d", wire.ErrCorrupt, msg[0])
		}
		if err := parseRequest(msg, &r); err != nil {
			return err
		}
		c.dispatch(&r, false)
	}
}

// dispatch runs a request: inline, unless it may block. fast says it came
// through the call slot, and is answered there.
func (c *sconn) dispatch(r *request, fast bool) {
	var obj object
	if r.obj != 0 {
		if r.inst != c.s.inst {
			c.answer(r.id, r.op, nil, fmt.Errorf("%w: object %d of another server instance", ErrNoSuchObject, r.obj), fast)
			return
		}
		c.s.mu.Lock()
		e := c.s.objs[r.obj]
		c.s.mu.Unlock()
		if e == nil {
			c.answer(r.id, r.op, nil, fmt.Errorf("%w: object %d", ErrNoSuchObject, r.obj), fast)
			return
		}
		obj = e.obj
	}
	if obj == nil || !obj.blocks(r) {
		ctx := c.ctx
		res, err := c.run(ctx, obj, r)
		c.answer(r.id, r.op, res, err, fast)
		return
	}
	// Blocking: run on its own goroutine, with the arguments copied out of
	// the message buffer, cancellable by the client and by the
	// connection's end, bounded by the caller's budget.
	rr := &request{id: r.id, op: r.op, inst: r.inst, obj: r.obj, budget: r.budget}
	for _, a := range r.args {
		rr.args = append(rr.args, append([]byte(nil), a...))
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if rr.budget > 0 {
		ctx, cancel = context.WithTimeout(c.ctx, time.Duration(rr.budget)*time.Microsecond)
	} else {
		ctx, cancel = context.WithCancel(c.ctx)
	}
	c.mu.Lock()
	c.pending[rr.id] = cancel
	c.mu.Unlock()
	c.reqs.Add(1)
	go func() {
		defer c.reqs.Done()
		res, err := c.run(ctx, obj, rr)
		c.mu.Lock()
		delete(c.pending, rr.id)
		c.mu.Unlock()
		cancel()
		c.answer(rr.id, rr.op, res, err, fast)
	}()
}

func (c *sconn) run(ctx context.Context, obj object, r *request) (res [][]byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			// A server bug must not take every other client down with it.
			c.s.log.Error("manager-panic", "manager: panic serving a request", "op", r.op, "panic", p)
			err = fmt.Errorf("manager: internal error serving op %d: %v", r.op, p)
		}
	}()
	if obj == nil {
		return c.serverOp(ctx, r)
	}
	return obj.handle(ctx, c, r)
}

// answer sends the response to request id, through the call slot if
// the request came through it (fast).
func (c *sconn) answer(id uint64, op byte, res [][]byte, err error, fast bool) {
	build := func(b []byte) []byte {
		if err == nil {
			return appendOK(b, id, res)
		}
		b = appendErrHeader(b, id)
		return errs.AppendError(b, opName(op), os.Getpid(), err, false, "")
	}
	if fast {
		c.fastAnswer(build, id, op)
		return
	}
	if serr := c.send(build); errors.Is(serr, ErrTooLarge) {
		c.sendTooLarge(id, op, serr)
	}
}

// sendTooLarge answers call id with serr, the error of sending its answer,
// which was over the message size limit and not sent (nothing of it
// reached the connection): the call fails alone, with ErrTooLarge, and the
// connection goes on. It is a method, not a closure made in answer, so that
// the common path allocates nothing for it.
func (c *sconn) sendTooLarge(id uint64, op byte, serr error) {
	c.send(func(b []byte) []byte {
		b = appendErrHeader(b, id)
		return errs.AppendError(b, opName(op), os.Getpid(), fmt.Errorf("answer not sent: %w", serr), false, "")
	})
}

// send sends one message. A message over the size limit is not sent and
// its error returned (the connection is unharmed); any other error closes
// the connection.
func (c *sconn) send(build func([]byte) []byte) error {
	c.wmu.Lock()
	c.wbuf = build(c.wbuf[:0])
	err := c.conn.SendMsg(c.wbuf)
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil
	}
	c.wmu.Unlock()
	c.lastSend.Store(time.Now().UnixNano())
	if err != nil && !errors.Is(err, ErrTooLarge) {
		c.conn.Close() // the read loop ends and cleans up
	}
	return err
}

// watch drops a connection that sent nothing for HeartbeatMisses
// heartbeat intervals.
func (c *sconn) watch(stop chan struct{}) {
	for {
		hb := time.Duration(c.hb.Load())
		t := time.NewTimer(hb)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, c.lastRecv.Load())) > HeartbeatMisses*hb {
			c.s.log.Warn("manager-idle", "manager: dropping a client that stopped sending heartbeats", "after", HeartbeatMisses*hb)
			c.conn.Close()
			return
		}
	}
}

// gone releases everything the connection held.
func (c *sconn) gone(error) {
	c.cancel()
	c.conn.Close()
	c.reqs.Wait()
	c.closeFast()
	s := c.s
	c.mu.Lock()
	touched := c.touched
	c.touched = nil
	refs := c.refs
	c.refs = map[uint64]int{}
	c.mu.Unlock()
	for _, o := range touched {
		o.connGone(c)
	}
	s.mu.Lock()
	delete(s.conns, c)
	s.dropHandoffsLocked(c, refs)
	dead := s.dropRefsLocked(refs)
	s.mu.Unlock()
	for _, o := range dead {
		o.kill()
	}
}

// dropRefsLocked drops n references per object and returns the objects
// that lost their last one.
func (s *server) dropRefsLocked(refs map[uint64]int) []object {
	var dead []object
	for id, n := range refs {
		e := s.objs[id]
		if e == nil {
			continue
		}
		e.refs -= n
		if e.refs <= 0 && !e.named {
			delete(s.objs, id)
			dead = append(dead, e.obj)
		}
	}
	return dead
}

func (c *sconn) touch(id uint64, o object) {
	c.mu.Lock()
	if c.touched != nil {
		c.touched[id] = o
	}
	c.mu.Unlock()
}

// addRefLocked gives c one more reference to id (s.mu held).
func (c *sconn) addRefLocked(id uint64) {
	c.s.objs[id].refs++
	c.mu.Lock()
	c.refs[id]++
	c.mu.Unlock()
}

// serverOp runs a request addressed to the server itself.
func (c *sconn) serverOp(ctx context.Context, r *request) ([][]byte, error) {
	s := c.s
	switch r.op {
	case opHello:
		if len(r.args) != 2 {
			return nil, errArgs(r)
		}
		ms, err := u64(r.args[0])
		if err != nil {
			return nil, err
		}
		if ms > 0 {
			c.hb.Store(int64(time.Duration(ms) * time.Millisecond))
		}
		raw := s.raw
		if raw && !c.conn.SameBuild() {
			return nil, fmt.Errorf("%w: this manager stores values in this build's raw encodings; connect from the same program, or serve with manager.Serve", ErrBuildMismatch)
		}
		c.mu.Lock()
		c.raw = raw
		c.mu.Unlock()
		rb := []byte{0}
		if raw {
			rb[0] = 1
		}
		return [][]byte{putU64(s.inst), rb, putU64(uint64(time.Duration(c.hb.Load()) / time.Millisecond))}, nil
	case opCreate:
		if len(r.args) < 3 || len(r.args[0]) < 1 {
			return nil, errArgs(r)
		}
		kind, desc, name := r.args[0][0], string(r.args[1]), string(r.args[2])
		spec, err := parseSpec(r.args[0][1:]) // elements that are references (nested proxies)
		if err != nil {
			return nil, err
		}
		if name != "" {
			s.mu.Lock()
			if id, ok := s.named[name]; ok {
				e := s.objs[id]
				if e.kind != kind || e.desc != desc {
					s.mu.Unlock()
					return nil, fmt.Errorf("%w: %q is a %s of %s, not a %s of %s", ErrTypeMismatch, name, kindName(e.kind), e.desc, kindName(kind), desc)
				}
				c.addRefLocked(id)
				s.mu.Unlock()
				return [][]byte{putU64(id)}, nil
			}
			s.mu.Unlock()
		}
		obj, err := newObject(ctx, c, kind, desc, spec, r.args[3:])
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return nil, ErrClosed
		}
		if name != "" {
			if id, ok := s.named[name]; ok { // made meanwhile by another client
				go obj.kill() // it may give back references, which takes s.mu
				c.addRefLocked(id)
				return [][]byte{putU64(id)}, nil
			}
		}
		s.next++
		id := s.next
		s.objs[id] = &entry{obj: obj, kind: kind, desc: desc, named: name != ""}
		if name != "" {
			s.named[name] = id
		}
		c.addRefLocked(id)
		return [][]byte{putU64(id)}, nil
	case opRelease:
		drop := map[uint64]int{}
		c.mu.Lock()
		for _, a := range r.args {
			id, err := u64(a)
			if err != nil {
				c.mu.Unlock()
				return nil, err
			}
			if c.refs[id] > 0 {
				c.refs[id]--
				if c.refs[id] == 0 {
					delete(c.refs, id)
				}
				drop[id]++
			}
		}
		c.mu.Unlock()
		s.mu.Lock()
		dead := s.dropRefsLocked(drop)
		s.mu.Unlock()
		for _, o := range dead {
			o.kill()
		}
		return nil, nil
	case opHandoff:
		if len(r.args) != 1 {
			return nil, errArgs(r)
		}
		id, err := u64(r.args[0])
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		e := s.objs[id]
		if e == nil {
			return nil, fmt.Errorf("%w: object %d", ErrNoSuchObject, id)
		}
		if s.closed {
			return nil, ErrClosed // its timer would outlive the server
		}
		return [][]byte{putU64(s.newHandoffLocked(c, id, e))}, nil
	case opSettle: // see handoff.go
		if len(r.args) != 2 || len(r.args[1]) != 1 {
			return nil, errArgs(r)
		}
		tok, err := u64(r.args[0])
		if err != nil {
			return nil, err
		}
		c.settleHandoff(tok, r.args[1][0] == 1)
		return nil, nil
	case opClaim:
		if len(r.args) != 2 {
			return nil, errArgs(r)
		}
		id, err := u64(r.args[0])
		if err != nil {
			return nil, err
		}
		tok, err := u64(r.args[1])
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		e := s.objs[id]
		if e == nil {
			return nil, fmt.Errorf("%w: object %d", ErrNoSuchObject, id)
		}
		if s.takeHandoffLocked(tok, id) {
			// The hand-off's reference becomes this connection's.
			e.refs--
		}
		// A token already claimed (a receiver that imports one encoding
		// twice) or expired still names a live object: take a new
		// reference.
		c.addRefLocked(id)
		return nil, nil
	case opFastOpen, opFastAttach:
		return c.fastOp(r)
	case opMethods:
		if len(r.args) != 1 {
			return nil, errArgs(r)
		}
		id, err := u64(r.args[0])
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		e := s.objs[id]
		s.mu.Unlock()
		if e == nil {
			return nil, fmt.Errorf("%w: object %d", ErrNoSuchObject, id)
		}
		co, ok := e.obj.(*customObj)
		if !ok {
			return nil, fmt.Errorf("%w: a %s lists no methods", ErrNoSuchMethod, kindName(e.kind))
		}
		var res [][]byte
		for _, m := range co.sigs {
			res = append(res, []byte(m.name), []byte(m.in), []byte(m.out))
		}
		return res, nil
	}
	return nil, fmt.Errorf("%w: server operation %d", ErrNoSuchMethod, r.op)
}

func errArgs(r *request) error {
	return fmt.Errorf("%w: %s with %d arguments", wire.ErrCorrupt, opName(r.op), len(r.args))
}
