package ipc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// The reader of a Conn. One receive at a time (mu) parses frames out of
// buf[r:w], filling it from the connection; a message larger than the
// buffer is read straight into its destination (the caller's buffer for
// RecvBytesInto), so a large message is copied once, by the kernel. A
// receive interrupted by its context puts what it read of a message back
// into buf, so the connection is unchanged.

// readBuf is the read buffer's size: small messages are parsed out of it,
// many per read system call.
const readBuf = 64 << 10

type reader struct {
	c *Conn

	mu   ctxLock // one receive, Poll or Wait at a time; honours their contexts
	buf  []byte  // buf[r:w] are received, unparsed bytes (mu)
	r, w int
	err  error // sticky: io.EOF after the peer's close, ErrPeerDied, protocol errors (mu)
	fast bool  // this receive expects bytes soon: wait on the thread first (mu)

	peerClosed atomic.Bool // the peer's close message arrived
}

func (r *reader) init(c *Conn) { r.c, r.mu = c, newCtxLock() }

// buffered reports how many received bytes wait unparsed.
func (r *reader) buffered() int { return r.w - r.r }

// header parses the frame header at buf[r:], if complete.
func (r *reader) header() (kind byte, size int64, hlen int, ok bool, err error) {
	b := r.buf[r.r:r.w]
	if r.c.cfg.python {
		if len(b) < 4 {
			return 0, 0, 0, false, nil
		}
		n := int32(binary.BigEndian.Uint32(b))
		switch {
		case n >= 0:
			size, hlen = int64(n), 4
		case n == -1:
			if len(b) < 12 {
				return 0, 0, 0, false, nil
			}
			u := binary.BigEndian.Uint64(b[4:])
			if u > 1<<62 {
				return 0, 0, 0, false, fmt.Errorf("%w: message length %d", ErrTooLarge, u)
			}
			size, hlen = int64(u), 12
		default:
			return 0, 0, 0, false, fmt.Errorf("ipc: protocol error: negative message length %d", n)
		}
		kind = kindBytes
	} else {
		if len(b) < goHeader {
			return 0, 0, 0, false, nil
		}
		size, kind, hlen = int64(binary.LittleEndian.Uint32(b)), b[4], goHeader
		switch kind {
		case kindBytes, kindValue:
		case kindClose:
			if size != 0 {
				return 0, 0, 0, false, fmt.Errorf("ipc: protocol error: close message of %d bytes", size)
			}
		default:
			return 0, 0, 0, false, fmt.Errorf("ipc: protocol error: message kind %d", kind)
		}
	}
	if size > r.c.cfg.max {
		return 0, 0, 0, false, fmt.Errorf("ipc: protocol error: %w", &TooLargeError{Size: size, Limit: r.c.cfg.max})
	}
	return kind, size, hlen, true, nil
}

// room makes buf able to hold n more bytes after w, compacting it first.
func (r *reader) room(n int) {
	if r.r == r.w {
		r.r, r.w = 0, 0
	}
	if cap(r.buf)-r.w >= n {
		r.buf = r.buf[:cap(r.buf)]
		return
	}
	if r.r > 0 {
		copy(r.buf, r.buf[r.r:r.w])
		r.w -= r.r
		r.r = 0
	}
	if cap(r.buf)-r.w < n {
		size := max(readBuf, r.w+n, 2*cap(r.buf))
		nb := make([]byte, size)
		copy(nb, r.buf[:r.w])
		r.buf = nb
	}
	r.buf = r.buf[:cap(r.buf)]
}

// read reads into p, on the thread first when fast (see threadWait).
func (r *reader) read(p []byte, fast bool) (int, error) {
	if fast && r.c.rc != nil {
		return r.c.rawRead(p)
	}
	return r.c.nc.Read(p)
}

// fill reads once into buf.
func (r *reader) fill(min int) error {
	r.room(max(min, 4096))
	n, err := r.read(r.buf[r.w:], r.fast)
	r.w += n
	if n > 0 {
		return nil
	}
	return err
}

// frame receives the next frame with mu held. dst picks where the payload
// goes: a slice of exactly size bytes, or nil for buf (an alias valid
// until the next receive) when the payload fits it, else a fresh slice.
// A close frame sets the sticky io.EOF.
func (r *reader) frame(ctx context.Context, fast bool, dst func(kind byte, size int) []byte) (byte, []byte, error) {
	r.fast = fast
	if r.err != nil {
		return 0, nil, r.err
	}
	if r.c.closed.Load() {
		return 0, nil, fmt.Errorf("%w: receive", ErrClosed)
	}
	stop := watchDeadline(ctx, r.c.nc.SetReadDeadline)
	kind, p, err := r.frameLocked(dst)
	stop()
	if err != nil {
		err = r.readError(ctx, err)
	}
	return kind, p, err
}

func (r *reader) frameLocked(dst func(kind byte, size int) []byte) (byte, []byte, error) {
	var (
		kind byte
		size int64
		hlen int
	)
	for {
		k, s, h, ok, err := r.header()
		if err != nil {
			return 0, nil, r.broken(err)
		}
		if ok {
			kind, size, hlen = k, s, h
			break
		}
		if err := r.fill(goHeader); err != nil {
			return 0, nil, err
		}
	}
	if kind == kindClose {
		r.r += hlen
		r.peerClosed.Store(true)
		r.err = io.EOF
		return 0, nil, io.EOF
	}
	n := int(size)
	var out []byte
	if dst != nil {
		out = dst(kind, n)
	}
	if out == nil && n <= readBuf {
		// Small: gather it in buf (with whatever follows it).
		for r.w-r.r < hlen+n {
			if err := r.fill(hlen + n); err != nil {
				return 0, nil, err
			}
		}
		p := r.buf[r.r+hlen : r.r+hlen+n : r.r+hlen+n]
		r.r += hlen + n
		return kind, p, nil
	}
	if out == nil {
		out = make([]byte, n)
	}
	hdr := append([]byte(nil), r.buf[r.r:r.r+hlen]...)
	r.r += hlen
	got := copy(out, r.buf[r.r:r.w])
	r.r += got
	for got < n {
		m, err := r.read(out[got:n], true)
		got += m
		if m == 0 && err != nil {
			// Put the partial message back: the connection is unchanged.
			r.room(len(hdr) + got)
			r.w += copy(r.buf[r.w:], hdr)
			r.w += copy(r.buf[r.w:], out[:got])
			return 0, nil, err
		}
	}
	return kind, out[:n], nil
}

// broken records a protocol error as sticky.
func (r *reader) broken(err error) error {
	r.err = err
	return err
}

// readError turns a read failure into what the receive reports; the
// sticky ones are recorded.
func (r *reader) readError(ctx context.Context, err error) error {
	switch {
	case err == io.EOF && r.err == io.EOF:
		return io.EOF
	case r.err != nil:
		return r.err
	case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil:
		return fmt.Errorf("ipc: receive: %w", ctx.Err())
	case errors.Is(err, net.ErrClosed) || r.c.closed.Load():
		return fmt.Errorf("%w: receive", ErrClosed)
	case err == io.EOF && r.c.cfg.python:
		// CPython sends nothing when it closes: every end is an EOF (as
		// CPython's own recv raises EOFError for a truncated message).
		r.err = io.EOF
		return io.EOF
	case err == io.EOF && r.r == r.w:
		r.err = fmt.Errorf("%w: the connection ended without the peer closing it", ErrPeerDied)
	case err == io.EOF:
		r.err = fmt.Errorf("%w: the connection ended in the middle of a message: %w", ErrPeerDied, io.ErrUnexpectedEOF)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		r.err = fmt.Errorf("%w: %w", ErrPeerDied, err)
	default:
		r.err = fmt.Errorf("ipc: receive: %w", err)
	}
	return r.err
}

// recvBytes receives a byte message. into, if set, names the caller's
// buffer for a message of size bytes (nil when it is too short).
func (r *reader) recvBytes(ctx context.Context, into func(size int) []byte) ([]byte, error) {
	fast := r.c.w.tryFlush()
	if err := r.mu.lock(ctx, "receive"); err != nil {
		return nil, err
	}
	defer r.mu.unlock()
	short := false
	kind, p, err := r.frame(ctx, fast, func(kind byte, size int) []byte {
		if kind == kindBytes && into != nil {
			if b := into(size); b != nil {
				return b
			}
			short = true
		}
		return make([]byte, size)
	})
	if err != nil {
		return nil, err
	}
	if kind != kindBytes {
		return nil, fmt.Errorf("%w: a typed value (sent with Send) where a byte message was expected", ErrMessageType)
	}
	if short {
		return nil, &BufferTooShortError{Message: p}
	}
	return p, nil
}

// poll reports whether a message or the end of the stream is ready.
func (r *reader) poll(timeout time.Duration) (bool, error) {
	r.c.w.tryFlush()
	start := time.Now()
	if !r.mu.tryLock() {
		// Another receive, Poll or Wait holds the receive side: wait for
		// it no longer than the timeout (not ready if it does not end).
		ctx, cancel := context.WithTimeout(context.Background(), max(timeout, 0))
		err := r.mu.lock(ctx, "poll")
		cancel()
		if err != nil {
			if r.c.closed.Load() {
				return false, fmt.Errorf("%w: poll", ErrClosed)
			}
			return false, nil
		}
		timeout -= time.Since(start)
		if timeout <= 0 {
			timeout = 0
		}
	}
	defer r.mu.unlock()
	if r.c.closed.Load() {
		return false, fmt.Errorf("%w: poll", ErrClosed)
	}
	if r.err != nil || r.w > r.r {
		return true, nil
	}
	r.room(4096)
	var n int
	var err error
	if timeout <= 0 && r.c.rc != nil {
		// One non-blocking attempt: a past deadline would not even try.
		cerr := r.c.rc.Read(func(fd uintptr) bool {
			n, err = syscall.Read(int(fd), r.buf[r.w:])
			if n < 0 {
				n = 0
			}
			if err == nil && n == 0 {
				err = io.EOF
			}
			return true
		})
		if err == nil {
			err = cerr
		}
		if err == syscall.EAGAIN {
			return false, nil
		}
	} else {
		if timeout <= 0 {
			timeout = time.Millisecond // TLS: no non-blocking read
		}
		r.c.nc.SetReadDeadline(time.Now().Add(timeout))
		n, err = r.c.nc.Read(r.buf[r.w:])
		r.c.nc.SetReadDeadline(time.Time{})
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			return false, nil
		}
	}
	r.w += n
	if n > 0 {
		return true, nil
	}
	if err := r.readError(context.Background(), err); errors.Is(err, ErrClosed) {
		return false, err
	}
	return true, nil
}

// absorb reads whatever the peer sent into the read buffer, unless a
// receive is running (which reads anyway); with wait, it first waits up
// to threadWaitMillis for bytes. A stalled large send calls it (see
// stallTimeout). It reports whether bytes came.
func (r *reader) absorb(wait bool) bool {
	if !r.c.cfg.canRead || r.c.rc == nil || !r.mu.tryLock() {
		return false
	}
	defer r.mu.unlock()
	if r.err != nil {
		return false
	}
	if wait {
		// Up to threadWaitMillis for bytes, on this thread.
		r.c.rc.Control(func(fd uintptr) { threadWait(int(fd), false) })
	}
	got := false
	for {
		r.room(readBuf)
		var n int
		var err error
		cerr := r.c.rc.Read(func(fd uintptr) bool {
			n, err = syscall.Read(int(fd), r.buf[r.w:])
			return true
		})
		if cerr != nil || err != nil || n <= 0 {
			// EAGAIN, or an end the next receive meets again.
			return got
		}
		r.w += n
		got = true
	}
}
