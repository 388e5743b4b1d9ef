package ipc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/errs"
)

// Conn is one end of a message connection between two processes (Python's
// multiprocessing.connection.Connection): made by [Pipe], [Dial] or a
// [Listener], or received as a Process argument or pool task argument
// (a Conn is a resource). It carries byte messages ([Conn.SendBytes],
// [Conn.RecvBytes], [Conn.RecvBytesInto]) and typed values ([Send],
// [Recv]), whole and in order.
//
// Sending: a send returns once the message is in the Conn's buffer (or,
// for a large message, once the kernel took it or it was copied). The
// first message into an empty buffer wakes the Conn's writer goroutine,
// which writes everything buffered by then in one system call; there is
// no timer. How soon that happens depends on scheduling: microseconds when
// a P is idle, up to ~10 ms with GOMAXPROCS=1 and a sender that keeps its
// P busy. [Conn.Flush] writes at once and waits; a receive on the same
// Conn flushes what is buffered first (a request is never held back while
// its sender waits for the answer); [Conn.Close] flushes before closing.
// A Conn used for requests and answers (each send followed by a receive)
// writes a send into an empty buffer at once, on the sender's goroutine,
// instead of waking the writer; two sends in a row return to coalescing.
// A child process flushes its Conns when its target returns; a process
// that ends otherwise (os.Exit, a crash) loses what they buffered.
// Two peers that send each other large messages before receiving do not
// deadlock (non-TLS Conns): a large send that makes no progress for 50 ms
// reads what the peer sent meanwhile into the receive buffer.
//
// Receiving: a receive returns the next message, io.EOF once the peer
// closed its end with Close (every later receive too), and an error
// matching [ErrPeerDied] when the connection ended without that close
// (the peer crashed or exited without Close). A receive never hangs on a
// dead peer.
//
// A Conn is safe for concurrent use: sends are serialised, receives are
// serialised (a receive waiting for another one still honours its own
// context; a Poll waits for it no longer than its timeout and then
// reports false), and a send and a receive may run at once. Blocking methods
// take a context; when it ends they return an error wrapping ctx.Err()
// and the connection is unchanged (a message half received stays
// buffered for the next receive).
//
// TLS Conns ([TLS]) keep the receive promises but not two of the send
// ones: two TLS peers that send each other more than the socket buffers
// hold before receiving deadlock until their contexts end, and a Flush
// (or Close) whose bound ends while the peer is not reading breaks the
// Conn, since crypto/tls cannot resume a write that timed out: what was
// buffered is lost, and that Flush and every later send fail with an
// error matching [ErrPeerDied] and os.ErrDeadlineExceeded.
//
// A Conn received as a Process argument belongs to the target, which
// must Close it when done (defer c.Close()). One received as a pool task
// argument is closed by the worker once the task's result is sent, as
// CPython's garbage-collected Connection is when the task drops it (the
// peer then sees io.EOF): a task must not use it after returning, may
// Close it itself, and may return it in its result. An initializer's
// stays open for the worker's life.
type Conn struct {
	nc     net.Conn
	rc     syscall.RawConn // nil for TLS
	cfg    connConfig
	closed atomic.Bool
	// exported is set once the Conn was delivered to another process (the
	// transport's wire.Exported.Done hook said so): its Close then only
	// drops this process's descriptor and does not tell the peer the end
	// is closed (the end lives on over there). An export that is never
	// delivered (a refused task, a failed write) leaves it unset.
	exported atomic.Bool
	// exp tracks exports whose fate is not known yet (conn_resource.go).
	exp exportState

	w writer
	r reader

	closeOnce sync.Once
	closeErr  error
}

// connConfig is what a Conn keeps of its making (and what travels with it
// to another process).
type connConfig struct {
	python    bool
	sameBuild bool
	peerBuild string
	max       int64
	canRead   bool
	canWrite  bool
	tls       bool
}

// closeTimeout bounds how long Close waits for buffered messages to reach
// the kernel (a peer that never reads must not make Close hang).
const closeTimeout = 5 * time.Second

// bigMessage is the size from which a send does not copy the message into
// the buffer but hands the caller's bytes to the writer and waits.
const bigMessage = 128 << 10

func newConn(nc net.Conn, cfg connConfig) *Conn {
	c := &Conn{nc: nc, cfg: cfg}
	if sc, ok := nc.(syscall.Conn); ok && !cfg.tls {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
		}
	}
	c.w.init(c)
	c.r.init(c)
	live.Store(c, struct{}{})
	return c
}

var ownBuildOnce = sync.OnceValue(func() string {
	id, err := boot.BuildID()
	if err != nil || id == "" {
		// Without an identity, raw encodings are never trusted with a
		// peer: an empty build id never compares equal.
		return ""
	}
	return id
})

func ownBuild() string { return ownBuildOnce() }

// PeerBuildID returns the build identifier the peer announced in the
// handshake: this binary's for a [Pipe] and for a Conn received from a
// process of this program, "" for a Python peer.
func (c *Conn) PeerBuildID() string { return c.cfg.peerBuild }

// SameBuild reports whether the peer runs this same build, so that typed
// values travel in their raw-memory and record encodings; otherwise
// ([SameBuild] false) they travel self-described (gob), which costs more
// but needs only compatible types on both sides.
func (c *Conn) SameBuild() bool { return c.cfg.sameBuild }

// Python reports whether the Conn speaks CPython's protocol (see
// [Python]).
func (c *Conn) Python() bool { return c.cfg.python }

// LocalAddr returns the local network address, if any.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the peer's network address, if any.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SendBytes sends b as one message. It returns once the message is
// buffered (see [Conn] for when it is written); b may be reused at once.
// It blocks only while the buffer is full (the peer does not read): if
// ctx ends then, it returns an error wrapping ctx.Err() and nothing was
// sent. A message of 128 KiB or more is written from b while the call
// waits; if ctx ends before it is written, what is left is copied, the
// call returns nil and the message is still sent. A Conn holds at most
// one such copy: a further large send waits until it is written (and
// fails with ctx.Err(), sending nothing, if ctx ends first). A message over the size limit fails with an error matching
// [ErrTooLarge], sending nothing. An error from an earlier write is
// returned by the next send: one matching [ErrPeerDied] when the peer
// died, one matching io.ErrClosedPipe when it closed its end with Close
// (Close then returns nil).
func (c *Conn) SendBytes(ctx context.Context, b []byte) error {
	if err := c.checkSend(int64(len(b))); err != nil {
		return err
	}
	return c.w.sendBytes(ctx, b)
}

// RecvBytes receives the next message, which must be a byte message (one
// sent with SendBytes, or by a Python peer's send_bytes). A typed value
// in its place is consumed and fails with an error matching
// [ErrMessageType].
func (c *Conn) RecvBytes(ctx context.Context) ([]byte, error) {
	if err := c.recvCheck("receive"); err != nil {
		return nil, err
	}
	return c.r.recvBytes(ctx, nil)
}

// RecvBytesInto receives the next byte message into buf and returns its
// length. A message longer than buf is consumed whole and returned in a
// [*BufferTooShortError] (matching [ErrBufferTooShort]), as Python's
// recv_bytes_into raises BufferTooShort; buf is then unchanged.
func (c *Conn) RecvBytesInto(ctx context.Context, buf []byte) (int, error) {
	if err := c.recvCheck("receive"); err != nil {
		return 0, err
	}
	var n int
	_, err := c.r.recvBytes(ctx, func(size int) []byte {
		if size > len(buf) {
			return nil
		}
		n = size
		if size == 0 {
			// buf may be nil, and nil means "too short" to recvBytes.
			return []byte{}
		}
		return buf[:size]
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Poll reports whether a message (or the end of the stream) is ready to
// be received, waiting up to timeout for one (not at all for a timeout of
// zero or less). It returns false with an error wrapping ErrClosed after
// Close.
func (c *Conn) Poll(timeout time.Duration) (bool, error) {
	if err := c.recvCheck("poll"); err != nil {
		return false, err
	}
	return c.r.poll(timeout)
}

// Flush writes every buffered message now and waits until the kernel took
// them. If ctx ends first it returns an error wrapping ctx.Err(); what is
// left stays buffered and is written as usual.
func (c *Conn) Flush(ctx context.Context) error {
	if c.closed.Load() {
		return fmt.Errorf("%w: flush", ErrClosed)
	}
	return c.w.flush(ctx)
}

// Close flushes the buffered messages (waiting at most 5 s for a peer
// that does not read), tells the peer this end is closed (its receives
// then return io.EOF, not ErrPeerDied), and closes the connection. On a
// Conn that was passed to another process (a Process or task argument)
// Close only closes this process's descriptor: the end belongs to the
// receiver now, whose Close tells the peer (Python's parent closing its
// copy of a Pipe end after starting the child). "Passed" means delivered:
// a hand-off that failed (a refused task, a child that did not start)
// leaves the end this process's, and Close tells the peer as usual. While
// a hand-off's outcome is pending (a queued pool task) Close flushes and
// returns, and the close message (if the hand-off fails) and the
// descriptor's close wait for that outcome.
// Pending and later calls return errors matching [ErrClosed]. Close is
// idempotent; it returns the first write error the flush met.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		live.Delete(c)
		// With an export in flight, whether the peer must be told of the
		// close is known only at its outcome: the close message and the
		// descriptor's close wait for it (settleExport).
		inFlight := c.exp.begin()
		err := c.w.close(inFlight)
		if inFlight {
			c.exp.closed(c)
		} else if cerr := c.nc.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
		c.closeErr = err
	})
	return c.closeErr
}

// ErrOneWay is matched by the error of a receive (RecvBytes, Recv, Poll,
// Wait) on the send-only end of a one-way [Pipe], and of a send on its
// receive-only end. On a closed end the error matches [ErrClosed] instead.
var ErrOneWay = errs.RegisterSentinel(errors.New("ipc: wrong direction for this end of a one-way Pipe"))

var (
	errWriteOnly = fmt.Errorf("%w: the send-only end cannot receive", ErrOneWay)
	errReadOnly  = fmt.Errorf("%w: the receive-only end cannot send", ErrOneWay)
)

// recvCheck is the error of a receive on c before it starts, if any.
func (c *Conn) recvCheck(op string) error {
	switch {
	case c.closed.Load():
		return fmt.Errorf("%w: %s", ErrClosed, op)
	case !c.cfg.canRead:
		return errWriteOnly
	}
	return nil
}

func (c *Conn) checkSend(n int64) error {
	switch {
	case c.closed.Load():
		return fmt.Errorf("%w: send", ErrClosed)
	case !c.cfg.canWrite:
		return errReadOnly
	case n > c.cfg.max:
		return &TooLargeError{Size: n, Limit: c.cfg.max}
	}
	return nil
}

// TooLargeError reports a message over a Conn's size limit
// ([MaxMessageSize]); it matches [ErrTooLarge].
type TooLargeError struct {
	Size, Limit int64
}

// Error states the size and the limit.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("ipc: message of %d bytes, over the %d-byte limit (see MaxMessageSize)", e.Size, e.Limit)
}

// Is makes a TooLargeError match ErrTooLarge.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// BufferTooShortError is returned by [Conn.RecvBytesInto] for a message
// longer than the caller's buffer: the message, consumed from the
// connection, is in Message (Python's BufferTooShort).
type BufferTooShortError struct {
	Message []byte
}

// Error states the message's length.
func (e *BufferTooShortError) Error() string {
	return fmt.Sprintf("ipc: buffer too short for a message of %d bytes", len(e.Message))
}

// Is makes a BufferTooShortError match ErrBufferTooShort.
func (e *BufferTooShortError) Is(target error) bool { return target == ErrBufferTooShort }
