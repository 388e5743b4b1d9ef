package manager

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/memfd"
	"golang.org/x/sys/unix"
)

// The call slot: a local connection's fast path (see doc.go, "Fast
// path"). After the authenticated hello, a client on a unix socket asks
// the server for a slot (opFastOpen): the server makes a memfd segment
// (internal/memfd), writes a random cookie into it and answers with its
// pid, the descriptor's number, the size and the cookie, over the
// authenticated socket. The client opens /proc/PID/fd/N (the server
// process's own descriptor: a same-user process may, and a server that
// is not on this host, or in another pid namespace, or of another user,
// fails the open or the cookie check, and the connection keeps the
// socket), maps it and says so (opFastAttach); the server closes its
// descriptor (the mapping stays) and starts the slot's loop. The server
// makes the segment, so an authenticated client can never make the
// server map a file of the client's choosing.
//
// One call at a time uses the slot, in the same request and response
// encodings as the socket (proto.go): the caller that finds the slot free
// writes its request into the request area and posts it; the server's
// slot loop takes it, runs it as the connection loop would, and writes
// the response into the response area. Every other call of the process
// meanwhile, and every message larger than an area, takes the socket,
// as does a response that the client stopped waiting for in memory. The
// socket stays for everything else too: heartbeats, cancels, and the end
// of the connection, which is how either side learns that the other died.
//
// Waiting is spin, then futex, then socket. Each side spins first for an
// adaptive budget (a spin that ends without the event halves the next
// budget, one that sees it doubles it: with the peer running on the other
// CPU an answer comes in microseconds; with the CPUs oversubscribed,
// spinning takes the CPU the peer needs, and the budget decays to the
// minimum), then sleeps in FUTEX_WAIT for at most fastFutexWait, which
// holds the goroutine's OS thread, and then parks on the socket, which
// holds none: a parked client has its response sent over the socket; a
// parked server loop is woken by a msgFastWake the client sends after
// posting. So an idle connection costs no thread, and at most
// maxFutexSleepers server threads sleep in the kernel at once (the
// others park at once); the client side has at most one (one slot per
// connection).

// Slot states (the state word).
const (
	slotFree    = 0 // the client may post
	slotReq     = 1 // a request is posted
	slotBusy    = 2 // the server took it
	slotRep     = 3 // the response is in the response area
	slotParked  = 4 // bit: the client waits on the socket; answer there
	slotReqP    = slotReq | slotParked
	slotBusyP   = slotBusy | slotParked
	slotHdrSize = 4096
)

// Header offsets: each word on its own cache line.
const (
	offState   = 0
	offCliWait = 64  // the client sleeps in FUTEX_WAIT on state
	offSrvWait = 128 // the server sleeps in FUTEX_WAIT on state
	offSrvPark = 192 // the server's slot loop parked: post a msgFastWake
	offReqLen  = 256
	offRepLen  = 260
	offCookie  = 320 // 16 random bytes
)

const (
	// fastArea is the size of each of the request and response areas:
	// messages up to it (a dict's key and value, a lock's acquire) go
	// through memory; larger ones through the socket.
	fastArea = 32 << 10
	// maxFutexSleepers bounds the server's slot loops sleeping in the
	// kernel at once (each holds an OS thread); the others park.
	maxFutexSleepers = 16
	// spin budgets.
	minSpin = 1 * time.Microsecond
	maxSpin = 50 * time.Microsecond
)

// fastFutexWait bounds a sleep in the kernel before parking on the
// socket: it bounds how long a thread is held by a call whose answer is
// slow (a blocked Queue.Get), and, since the socket is where a peer's
// death shows, how late a sleeper learns of it. Tests change it.
var fastFutexWait atomic.Int64

func init() { fastFutexWait.Store(int64(5 * time.Millisecond)) }

// msgFastWake wakes a parked slot loop (client to server).
const msgFastWake = 'w'

// Server operations of the fast path (object 0), numbered from the top
// so that they never meet the other operations' iota.
const (
	opFastOpen   byte = 0xF0 // no args → pid, fd, size, cookie
	opFastAttach byte = 0xF1 // 1 byte: 1 mapped, 0 failed → nothing
)

// slot is one mapping of a call slot, as either side sees it.
type slot struct {
	mem   []byte
	state *uint32
	cliW  *uint32
	srvW  *uint32
	park  *uint32
	reqN  *uint32
	repN  *uint32
	req   []byte
	rep   []byte
}

func newSlot(mem []byte) *slot {
	w := func(off int) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
	return &slot{mem: mem, state: w(offState), cliW: w(offCliWait), srvW: w(offSrvWait), park: w(offSrvPark),
		reqN: w(offReqLen), repN: w(offRepLen),
		req: mem[slotHdrSize : slotHdrSize+fastArea : slotHdrSize+fastArea],
		rep: mem[slotHdrSize+fastArea : slotHdrSize+2*fastArea : slotHdrSize+2*fastArea]}
}

const slotSize = slotHdrSize + 2*fastArea

// spinner is an adaptive spin budget (one per waiting side).
type spinner struct{ budget atomic.Int64 }

var multiCPU = runtime.NumCPU() > 1

// spin polls done for the budget and adapts it; it reports done's
// result. done runs every iteration; stop, and a sched_yield, every 64.
func (s *spinner) spin(done func() bool, stop func() bool) bool {
	if !multiCPU {
		return done()
	}
	b := time.Duration(s.budget.Load())
	if b == 0 {
		b = maxSpin
	}
	start := time.Now()
	for i := 1; ; i++ {
		if done() {
			if b < maxSpin {
				s.budget.Store(int64(min(2*b, maxSpin)))
			}
			return true
		}
		if i%64 == 0 {
			if stop() || time.Since(start) > b {
				break
			}
			if i%1024 == 0 {
				runtime.Gosched() // let this process's goroutines that have work run
			}
			// Give the CPU to a runnable process: with more runnable
			// processes than CPUs (4 clients and a server on 2 here)
			// the peer this spin waits for may be queued behind it.
			// Measured (4 clients): 36–55k ops/s without, 54–62k with;
			// 1 client unchanged (the yield returns at once when
			// nothing else is runnable).
			syscall.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
		}
	}
	s.budget.Store(int64(max(b/2, minSpin)))
	return false
}

// ---- client ----

// fastClient is a client's side of its connection's slot.
type fastClient struct {
	s     *slot
	token chan struct{} // held by the call using the slot; by close, forever
	spin  spinner
	id    uint64 // the posted request's id
	// posts counts requests posted, inMem those answered in memory
	// (tests look).
	posts, inMem atomic.Int64
}

// attachFast asks the server for a call slot; any failure leaves the
// connection on the socket alone.
func (c *client) attachFast(ctx context.Context) {
	if c.addr.network != "unix" || os.Getenv("MULTIPROC_MANAGER_NOFAST") != "" {
		return
	}
	res, err := c.call(ctx, opFastOpen, 0, nil)
	if err != nil || len(res) != 4 || len(res[3]) != 16 {
		return // a server without the fast path, or without memory for it
	}
	pid, _ := u64(res[0])
	fd, _ := u64(res[1])
	size, _ := u64(res[2])
	mem, err := openSlot(pid, fd, size, res[3])
	ok := byte(1)
	if err != nil {
		ok = 0
	}
	if _, err := c.call(ctx, opFastAttach, 0, [][]byte{{ok}}); err != nil || ok == 0 {
		memfd.Unmap(mem)
		return
	}
	c.fast = &fastClient{s: newSlot(mem), token: make(chan struct{}, 1)}
}

func openSlot(pid, fd, size uint64, cookie []byte) ([]byte, error) {
	if size != slotSize {
		return nil, fmt.Errorf("manager: a call slot of %d bytes", size)
	}
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/%d", pid, fd), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	mem, err := memfd.Map(f, 0, int(size))
	f.Close()
	if err != nil {
		return nil, err
	}
	if string(mem[offCookie:offCookie+16]) != string(cookie) {
		memfd.Unmap(mem)
		return nil, fmt.Errorf("manager: the call slot's cookie does not match")
	}
	return mem, nil
}

// closeFast unmaps the slot once no call uses it (the caller broke the
// connection first, so one using it returns promptly).
func (c *client) closeFast() {
	if f := c.fast; f != nil {
		f.token <- struct{}{} // never released
		memfd.Unmap(f.s.mem)
	}
}

// fastPost posts a request through the slot if it is free, and reports
// whether it did (the caller then waits with fastWait).
func (c *client) fastPost(id uint64, op byte, obj, budget uint64, args [][]byte) bool {
	f := c.fast
	if f == nil {
		return false
	}
	select {
	case f.token <- struct{}{}:
	default:
		return false // another call of this process uses it
	}
	s := f.s
	if atomic.LoadUint32(s.state) != slotFree {
		<-f.token // still answering a call that went to the socket
		return false
	}
	b := appendRequest(s.req[:0], id, op, c.inst, obj, budget, args)
	if len(b) > fastArea || unsafe.SliceData(b) != unsafe.SliceData(s.req) {
		<-f.token
		return false
	}
	f.id = id
	f.posts.Add(1)
	atomic.StoreUint32(s.reqN, uint32(len(b)))
	atomic.StoreUint32(s.state, slotReq)
	// Dekker with the server's park and sleep: it stores its flag and
	// then loads state; this stored state and now loads its flags, so
	// one of the two sees the other.
	if atomic.LoadUint32(s.park) != 0 && atomic.CompareAndSwapUint32(s.park, 1, 0) {
		if err := c.send(func(b []byte) []byte { return append(b, msgFastWake) }); err != nil {
			c.fail(err)
		}
	} else if atomic.LoadUint32(s.srvW) != 0 {
		futex.Wake(s.state, 0)
	}
	return true
}

// fastWait waits for the answer to the posted call p: in memory, or, once
// it parked (its spin and sleep ran out, ctx ended, or the connection
// broke), on the socket like any call, with c.wait. It returns what
// c.wait returns.
func (c *client) fastWait(ctx context.Context, p *pendingCall) error {
	f := c.fast
	s := f.s
	answered := func() bool {
		st := atomic.LoadUint32(s.state)
		return st == slotRep || st == slotFree
	}
	stopped := func() bool {
		select {
		case <-ctx.Done():
			return true
		case <-c.done:
			return true
		default:
			return false
		}
	}
	if !f.spin.spin(answered, stopped) && !stopped() {
		atomic.StoreUint32(s.cliW, 1)
		until := time.Now().Add(time.Duration(fastFutexWait.Load()))
		for {
			st := atomic.LoadUint32(s.state)
			if st != slotReq && st != slotBusy {
				break
			}
			d := time.Until(until)
			if d <= 0 || stopped() {
				break
			}
			futex.Wait(s.state, st, min(d, time.Millisecond)) // bounded: ctx is checked between sleeps
		}
		atomic.StoreUint32(s.cliW, 0)
	}
	for {
		switch st := atomic.LoadUint32(s.state); st {
		case slotRep:
			c.fastTake(p)
			return nil
		case slotFree: // the server answers on the socket
			<-f.token
			return c.wait(ctx, p)
		case slotReq, slotBusy:
			if atomic.CompareAndSwapUint32(s.state, st, st|slotParked) {
				<-f.token // the server frees the slot after answering
				return c.wait(ctx, p)
			}
		default:
			// A state no server writes: the peer is broken.
			c.fail(fmt.Errorf("manager: call slot in state %d", st))
			<-f.token
			return c.wait(ctx, p)
		}
	}
}

// fastTake completes p with the response in the slot and frees the slot.
func (c *client) fastTake(p *pendingCall) {
	f := c.fast
	s := f.s
	// The posted call's id, read while this call still holds the token:
	// once the slot is free another call may post and overwrite f.id.
	id := f.id
	f.inMem.Add(1)
	var resp response
	var buf [8][]byte
	n := atomic.LoadUint32(s.repN)
	var err error
	if n > fastArea {
		err = fmt.Errorf("manager: call slot response of %d bytes", n)
	} else {
		err = parseResponse(s.rep[:n], &resp, buf[:0])
	}
	var res [][]byte
	var rerr error
	if err == nil {
		if resp.id != id {
			err = fmt.Errorf("manager: call slot answered call %d, not %d", resp.id, id)
		} else if resp.status == statusOK {
			res = copyFields(resp.res)
		} else {
			rerr = remoteErr(resp.envelope)
		}
	}
	atomic.StoreUint32(s.state, slotFree)
	<-f.token
	c.mu.Lock()
	if c.calls != nil {
		delete(c.calls, id)
		c.mu.Unlock()
	} else {
		// The connection broke meanwhile and fail answered p: this
		// answer, which the server did give, wins.
		c.mu.Unlock()
		<-p.done
	}
	if err != nil {
		c.fail(err)
		p.err = c.connErr()
		return
	}
	p.res, p.err = res, rerr
}

// connErr is why the connection broke.
func (c *client) connErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// ---- server ----

// fastServer is a server connection's side of its slot.
type fastServer struct {
	f    *os.File // until the client attached
	s    *slot
	wake chan struct{}
	spin spinner
}

var futexSleepers atomic.Int32

// fastOp serves the fast path's server operations.
func (c *sconn) fastOp(r *request) ([][]byte, error) {
	switch r.op {
	case opFastOpen:
		c.mu.Lock()
		had := c.fast != nil
		c.mu.Unlock()
		if had {
			return nil, fmt.Errorf("%w: a second call slot", ErrNoSuchMethod)
		}
		f, err := memfd.New("multiproc-manager-slot", slotSize)
		if err != nil {
			return nil, fmt.Errorf("manager: call slot: %w", err)
		}
		mem, err := memfd.Map(f, 0, slotSize)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("manager: call slot: %w", err)
		}
		cookie := mem[offCookie : offCookie+16]
		rand.Read(cookie)
		fs := &fastServer{f: f, s: newSlot(mem), wake: make(chan struct{}, 1)}
		c.mu.Lock()
		c.fast = fs
		c.mu.Unlock()
		return [][]byte{putU64(uint64(os.Getpid())), putU64(uint64(f.Fd())), putU64(slotSize), append([]byte(nil), cookie...)}, nil
	case opFastAttach:
		if len(r.args) != 1 || len(r.args[0]) != 1 {
			return nil, errArgs(r)
		}
		c.mu.Lock()
		fs := c.fast
		if fs == nil || fs.f == nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: attach without a call slot", ErrNoSuchMethod)
		}
		fs.f.Close()
		fs.f = nil
		if r.args[0][0] != 1 {
			c.fast = nil
			c.mu.Unlock()
			memfd.Unmap(fs.s.mem)
			return nil, nil
		}
		c.reqs.Add(1)
		c.mu.Unlock()
		go func() { defer c.reqs.Done(); c.fastLoop(fs) }()
		return nil, nil
	}
	return nil, fmt.Errorf("%w: server operation %d", ErrNoSuchMethod, r.op)
}

// fastWake handles a msgFastWake.
func (c *sconn) fastWake() {
	c.mu.Lock()
	fs := c.fast
	c.mu.Unlock()
	if fs != nil {
		select {
		case fs.wake <- struct{}{}:
		default:
		}
	}
}

// closeFast releases the slot; the connection's goroutines have ended.
func (c *sconn) closeFast() {
	c.mu.Lock()
	fs := c.fast
	c.fast = nil
	c.mu.Unlock()
	if fs != nil {
		if fs.f != nil {
			fs.f.Close()
		}
		memfd.Unmap(fs.s.mem)
	}
}

// fastLoop serves the slot until the connection ends.
func (c *sconn) fastLoop(fs *fastServer) {
	s := fs.s
	stop := context.AfterFunc(c.ctx, func() {
		futex.Wake(s.state, 0)
		select {
		case fs.wake <- struct{}{}:
		default:
		}
	})
	defer stop()
	posted := func() bool {
		st := atomic.LoadUint32(s.state)
		return st == slotReq || st == slotReqP
	}
	ended := func() bool { return c.ctx.Err() != nil }
	var r request
	for c.ctx.Err() == nil {
		if !posted() && !fs.spin.spin(posted, ended) {
			c.fastSleep(fs, posted)
			continue
		}
		st := atomic.LoadUint32(s.state)
		if (st != slotReq && st != slotReqP) || !atomic.CompareAndSwapUint32(s.state, st, st+1) { // Req → Busy, ReqP → BusyP
			continue
		}
		n := atomic.LoadUint32(s.reqN)
		if n > fastArea {
			c.conn.Close()
			return
		}
		if err := parseRequest(s.req[:n], &r); err != nil {
			c.s.log.Warn("manager-corrupt", "manager: dropping a client that posted a corrupt request", "error", err)
			c.conn.Close()
			return
		}
		c.lastRecv.Store(time.Now().UnixNano())
		c.dispatch(&r, true)
	}
}

// fastSleep waits for a post: in the kernel for at most fastFutexWait if
// fewer than maxFutexSleepers do, then parked until a msgFastWake.
func (c *sconn) fastSleep(fs *fastServer, posted func() bool) {
	s := fs.s
	if futexSleepers.Add(1) <= maxFutexSleepers {
		atomic.StoreUint32(s.srvW, 1)
		until := time.Now().Add(time.Duration(fastFutexWait.Load()))
		for c.ctx.Err() == nil {
			st := atomic.LoadUint32(s.state)
			if st == slotReq || st == slotReqP {
				break
			}
			d := time.Until(until)
			if d <= 0 {
				break
			}
			// Bounded by Chunk too: the connection's end wakes the word,
			// but a wake between the check above and the sleep is lost.
			futex.Wait(s.state, st, min(d, futex.Chunk))
		}
		atomic.StoreUint32(s.srvW, 0)
	}
	futexSleepers.Add(-1)
	if posted() || c.ctx.Err() != nil {
		return
	}
	atomic.StoreUint32(s.park, 1)
	if posted() {
		// Unpark; if the client took the flag first, its wake comes
		// and is absorbed by the next park.
		atomic.CompareAndSwapUint32(s.park, 1, 0)
		return
	}
	select {
	case <-fs.wake:
	case <-c.ctx.Done():
	}
	atomic.StoreUint32(s.park, 0)
}

// fastAnswer answers a request that came through the slot: in the
// response area if it fits and the client still waits there, else on
// the socket, before freeing the slot (the client may post again once it
// is free, and the socket's copy is made from the area).
func (c *sconn) fastAnswer(build func([]byte) []byte, id uint64, op byte) {
	c.mu.Lock()
	fs := c.fast
	c.mu.Unlock()
	if fs == nil {
		return // the connection ended
	}
	s := fs.s
	b := build(s.rep[:0])
	inArea := len(b) <= fastArea && unsafe.SliceData(b) == unsafe.SliceData(s.rep)
	if inArea {
		atomic.StoreUint32(s.repN, uint32(len(b)))
		if atomic.CompareAndSwapUint32(s.state, slotBusy, slotRep) {
			if atomic.LoadUint32(s.cliW) != 0 {
				futex.Wake(s.state, 0)
			}
			return
		}
	}
	if err := c.send(func(dst []byte) []byte { return append(dst, b...) }); errors.Is(err, ErrTooLarge) {
		c.sendTooLarge(id, op, err)
	}
	atomic.StoreUint32(s.state, slotFree)
	if atomic.LoadUint32(s.cliW) != 0 {
		futex.Wake(s.state, 0)
	}
}
