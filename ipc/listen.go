package ipc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiproc-go/multiproc/internal/handshake"
	"github.com/multiproc-go/multiproc/internal/logs"
)

// Listener accepts authenticated connections (Python's
// multiprocessing.connection.Listener) on a unix socket or a TCP address.
// Every connection proves it holds the key (an HMAC-SHA256 challenge in
// both directions; the key is never sent) and, between Go peers,
// announces its build, before Accept returns it; nothing it sends is
// decoded before that. Handshakes run concurrently in the background, at
// most MaxUnauthenticated at once, each bounded by HandshakeTimeout: a
// slow peer never holds up a handshake already running, and no peer holds
// a slot longer than HandshakeTimeout. That is the whole guarantee:
// MaxUnauthenticated peers that connect and send nothing fill every slot,
// so an honest client then waits (in the backlog, its own handshake
// timer running) up to HandshakeTimeout per round, and a peer that keeps
// reopening such connections can deny service; listen on a socket only
// trusted peers can reach (a unix socket's permissions, a firewall).
// Authenticated connections not yet accepted are not bounded: each holds
// a descriptor and a goroutine until Accept or Close. A connection that fails
// (wrong key, garbage, a timeout) is closed, counted ([Listener.Rejected])
// and logged (rate-limited), and the Listener keeps serving.
//
// A Listener is safe for concurrent use. Close it when done: it stops
// accepting, closes the connections not yet accepted and, for a unix
// socket it created, removes the socket file.
type Listener struct {
	ln   net.Listener
	key  []byte
	cfg  *config
	log  *logs.Limiter
	sem  chan struct{}
	out  chan *Conn
	quit chan struct{}
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	closeOnce sync.Once
	rejected  atomic.Int64
	accepted  atomic.Int64
}

// Listen listens on network ("unix" or "tcp", "tcp4", "tcp6") at address
// and returns a Listener whose connections authenticate with key (which
// must not be empty). Options: Python, LegacyMD5, TLS, HandshakeTimeout,
// MaxUnauthenticated, MaxMessageSize, Logger.
func Listen(network, address string, key []byte, opts ...Option) (*Listener, error) {
	cfg, err := newConfig(true, opts)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, errors.New("ipc: Listen: empty authentication key")
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("ipc: %w", err)
	}
	return serve(ln, key, cfg), nil
}

// NewListener serves connections accepted by ln (which the Listener then
// owns and closes) as Listen does: the way to listen on a socket passed
// from another process, or made with options of one's own.
func NewListener(ln net.Listener, key []byte, opts ...Option) (*Listener, error) {
	cfg, err := newConfig(true, opts)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, errors.New("ipc: NewListener: empty authentication key")
	}
	return serve(ln, key, cfg), nil
}

func serve(ln net.Listener, key []byte, cfg *config) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		ln: ln, key: append([]byte(nil), key...), cfg: cfg, log: logs.New(cfg.logger),
		sem: make(chan struct{}, cfg.maxUnauth), out: make(chan *Conn),
		quit: make(chan struct{}), ctx: ctx, stop: cancel,
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Addr returns the address the Listener listens on (for a TCP port of 0,
// the port chosen).
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Rejected returns how many connections failed their handshake.
func (l *Listener) Rejected() int64 { return l.rejected.Load() }

// Accept waits for the next authenticated connection. It returns an error
// wrapping ctx.Err() when ctx ends first, and one matching ErrClosed once
// the Listener is closed.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	select {
	case c := <-l.out:
		return c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("ipc: accept: %w", ctx.Err())
	case <-l.quit:
		return nil, fmt.Errorf("%w: accept on a closed Listener", ErrClosed)
	}
}

// Close stops the Listener: pending Accepts return ErrClosed,
// connections in their handshake or not yet accepted are closed. It waits
// for the Listener's goroutines and is idempotent.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.quit)
		l.stop()
		err = l.ln.Close()
		l.wg.Wait()
	})
	return err
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	backoff := time.Duration(0)
	for {
		select {
		case l.sem <- struct{}{}:
		case <-l.quit:
			return
		}
		nc, err := l.ln.Accept()
		if err != nil {
			<-l.sem
			select {
			case <-l.quit:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off as net/http does,
			// instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accept", "ipc: accept failed; retrying", "addr", l.ln.Addr().String(), "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.quit:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		l.wg.Add(1)
		go l.handshake(nc)
	}
}

func (l *Listener) handshake(nc net.Conn) {
	defer l.wg.Done()
	c, err := serverConn(l.ctx, nc, l.key, l.cfg)
	<-l.sem
	if err != nil {
		nc.Close()
		if l.ctx.Err() == nil {
			l.rejected.Add(1)
			l.log.Warn("handshake", "ipc: refused a connection", "addr", l.ln.Addr().String(), "remote", remote(nc), "err", err)
		}
		return
	}
	select {
	case l.out <- c:
		l.accepted.Add(1)
	case <-l.quit:
		c.Close()
	}
}

func remote(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// serverConn runs the accepting side of TLS (if configured) and the key
// handshake on nc.
func serverConn(ctx context.Context, nc net.Conn, key []byte, cfg *config) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	conn := nc
	if cfg.tls != nil {
		tc := tls.Server(nc, cfg.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("%w: TLS: %w", ErrHandshake, err)
		}
		conn = tc
	}
	res, err := handshake.Server(ctx, conn, cfg.handshake(key))
	if err != nil {
		return nil, err
	}
	return newConn(conn, cfg.connConfig(res)), nil
}

func (cfg *config) connConfig(res handshake.Result) connConfig {
	return connConfig{
		python: cfg.python, sameBuild: res.SameBuild, peerBuild: res.PeerBuild,
		max: cfg.maxMessage, canRead: true, canWrite: true, tls: cfg.tls != nil,
	}
}

// Dial connects to a Listener (or to a CPython
// multiprocessing.connection.Listener, with the Python option) at address
// on network ("unix", "tcp"...), authenticating with key, and returns the
// Conn once both sides proved they hold the key and, between Go peers,
// exchanged build ids. It fails with an error matching ErrAuth for a
// wrong key, ErrHandshake for a peer that does not speak the protocol or
// does not finish within HandshakeTimeout, and wrapping ctx.Err() when
// ctx ends first. Options: Python, LegacyMD5, TLS, HandshakeTimeout,
// MaxMessageSize.
func Dial(ctx context.Context, network, address string, key []byte, opts ...Option) (*Conn, error) {
	cfg, err := newConfig(false, opts)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, errors.New("ipc: Dial: empty authentication key")
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("ipc: %w", err)
	}
	c, err := clientConn(ctx, nc, key, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// ClientConn runs the connecting side's handshake (TLS first, if
// configured) on an already connected nc, which the returned Conn owns;
// on failure the caller closes nc. Dial is net.Dial + ClientConn.
func ClientConn(ctx context.Context, nc net.Conn, key []byte, opts ...Option) (*Conn, error) {
	cfg, err := newConfig(false, opts)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, errors.New("ipc: empty authentication key")
	}
	return clientConn(ctx, nc, key, cfg)
}

func clientConn(ctx context.Context, nc net.Conn, key []byte, cfg *config) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	conn := nc
	if cfg.tls != nil {
		tc := tls.Client(nc, cfg.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("%w: TLS: %w", ErrHandshake, err)
		}
		conn = tc
	}
	res, err := handshake.Client(ctx, conn, cfg.handshake(key))
	if err != nil {
		return nil, err
	}
	return newConn(conn, cfg.connConfig(res)), nil
}

// ServerConn runs the accepting side's handshake on nc, for a server that
// accepts connections itself; the returned Conn owns nc, and on failure
// the caller closes nc.
func ServerConn(ctx context.Context, nc net.Conn, key []byte, opts ...Option) (*Conn, error) {
	cfg, err := newConfig(false, opts)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, errors.New("ipc: empty authentication key")
	}
	return serverConn(ctx, nc, key, cfg)
}
