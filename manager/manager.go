package manager

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/wire"
	"github.com/multiproc-go/multiproc/ipc"
)

// Manager is a connection to a manager server: the local one Start made
// (a child process), or a remote one Connect reached. Every proxy made
// with it shares its connection. It is safe for concurrent use.
type Manager struct {
	c     *client
	local *localServer // Start's child, nil for Connect
}

// Close closes the connection: objects only this connection referenced
// are released by the server, and every proxy made with it fails with
// ErrConnLost. For a Manager made by Start, Close is Shutdown with a
// background context.
func (m *Manager) Close() error {
	if m == nil || m.c == nil {
		return nil
	}
	if m.local != nil {
		return m.Shutdown(context.Background())
	}
	m.c.close()
	return nil
}

// Address returns the network and address of the server.
func (m *Manager) Address() (network, address string) { return m.c.addr.network, m.c.addr.addr }

// Connect connects to the manager server Serve runs at network ("tcp" or
// "unix") and address, authenticating with key (Python's
// BaseManager(address, authkey).connect()). Reconnecting to a restarted
// server is Connect again; proxies of the old connection fail with
// ErrConnLost, and with ErrNoSuchObject if sent to the new one.
// Options: Heartbeat, TLS, MaxMessageSize, HandshakeTimeout.
func Connect(ctx context.Context, network, address string, key []byte, opts ...Option) (*Manager, error) {
	cfg, err := newConfig(false, true, opts)
	if err != nil {
		return nil, err
	}
	addr := struct{ network, addr string }{network, address}
	conn, err := dial(ctx, addr, key, cfg.ipcOptions()...)
	if err != nil {
		return nil, fmt.Errorf("manager: connecting to %s %s: %w", network, address, err)
	}
	c, err := newClient(ctx, conn, cfg.heartbeat, addr, key)
	if err != nil {
		return nil, err
	}
	return &Manager{c: c}, nil
}

// Server is a manager server running in this process (see Serve).
type Server struct {
	s    *server
	ln   *ipc.Listener
	done chan struct{}
	err  error
	once sync.Once
	wg   sync.WaitGroup
}

// Serve serves a manager on network ("tcp" or "unix") and address with
// key, in this process, until ctx ends or Close (Python's
// get_server().serve_forever()). Every connection authenticates before
// anything it sends is decoded; one with a wrong key or garbage is
// refused and logged (rate-limited) while the server keeps serving the
// others. Values are stored self-describing, so clients may be other
// binaries (RawEncodings trades that for speed). Clients publish objects
// by name (see Named); the server program itself uses them through a
// Connect to its own address. Options: Heartbeat (ignored: each client
// sets its own), TLS, Logger, MaxMessageSize, HandshakeTimeout,
// RawEncodings.
func Serve(ctx context.Context, network, address string, key []byte, opts ...Option) (*Server, error) {
	cfg, err := newConfig(true, true, opts)
	if err != nil {
		return nil, err
	}
	ln, err := ipc.Listen(network, address, key, cfg.ipcOptions()...)
	if err != nil {
		return nil, err
	}
	return startServer(ctx, ln, cfg), nil
}

func startServer(ctx context.Context, ln *ipc.Listener, cfg *config) *Server {
	srv := &Server{s: newServer(cfg.raw, cfg.logger), ln: ln, done: make(chan struct{})}
	actx, cancel := context.WithCancel(ctx)
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		defer cancel()
		for {
			c, err := ln.Accept(actx)
			if err != nil {
				srv.finish(err)
				return
			}
			srv.wg.Add(1)
			go func() { defer srv.wg.Done(); srv.s.serveConn(newIPCConn(c)) }()
		}
	}()
	return srv
}

func (srv *Server) finish(err error) {
	srv.once.Do(func() {
		if errors.Is(err, ipc.ErrClosed) || errors.Is(err, context.Canceled) {
			err = nil
		}
		srv.err = err
		srv.ln.Close()
		srv.s.close()
		close(srv.done)
	})
}

// Addr returns the address the server listens on (the port chosen for
// "127.0.0.1:0").
func (srv *Server) Addr() net.Addr { return srv.ln.Addr() }

// Rejected returns how many connections failed authentication.
func (srv *Server) Rejected() int64 { return srv.ln.Rejected() }

// Close stops the server: it stops listening, drops every connection
// (their calls fail with ErrConnLost) and releases every object. It
// returns once every request in progress ended: a custom method still
// running has its ctx cancelled and Close waits for it to return, so a
// method that ignores its ctx holds Close up; Shutdown bounds the wait.
func (srv *Server) Close() error {
	srv.finish(nil)
	srv.wg.Wait()
	return srv.err
}

// Shutdown is Close bounded by ctx: if requests still run (custom
// methods that do not return when their ctx is cancelled) when ctx ends,
// it returns ctx's error without waiting for them; the server is stopped
// all the same (nothing is accepted or answered), and what those
// requests hold is released when they return.
func (srv *Server) Shutdown(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the server stopped.
func (srv *Server) Done() <-chan struct{} { return srv.done }

// ---- the local manager: a child process ----

const role = "manager"

// Frames the manager child sends on its control socket.
const (
	kindListening = 'L' // payload: nothing; the address is the parent's choice
	kindFailed    = 'F' // payload: the error text
)

type localServer struct {
	child  *boot.Child
	dir    string // socket directory to remove (off Linux)
	exited chan struct{}
	once   sync.Once
	err    error
}

// Start starts a local manager: a child process (started like every
// multiproc child, through Main's machinery) that owns the objects and
// serves them on a unix socket with a random key, and returns a Manager
// connected to it (Python's Manager(), or BaseManager.start()). It
// stores values in this build's raw encodings (only this program's
// processes connect). The child dies with this process; Shutdown stops
// it. Start needs multiproc.Main to have run. Options: Heartbeat,
// Logger, MaxMessageSize, HandshakeTimeout.
func Start(ctx context.Context, opts ...Option) (*Manager, error) {
	cfg, err := newConfig(true, false, opts)
	if err != nil {
		return nil, err
	}
	if err := boot.CanSpawn(); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	var rb [8]byte
	rand.Read(rb[:])
	ls := &localServer{exited: make(chan struct{})}
	var address string
	if runtime.GOOS == "linux" {
		// An abstract socket: nothing to remove, even after a SIGKILL.
		address = fmt.Sprintf("@multiproc-manager-%d-%s", os.Getpid(), hex.EncodeToString(rb[:]))
	} else {
		dir, err := os.MkdirTemp("", "multiproc-manager-")
		if err != nil {
			return nil, err
		}
		ls.dir = dir
		address = filepath.Join(dir, "s")
	}
	payload := wire.AppendBytes(nil, key)
	payload = wire.AppendString(payload, address)
	payload = binary.AppendUvarint(payload, uint64(cfg.maxMessage))
	payload = binary.AppendUvarint(payload, uint64(cfg.handshake))
	child, err := boot.Spawn(ctx, boot.Config{Role: role, Name: "SyncManager", Payload: payload})
	if err != nil {
		ls.removeDir()
		return nil, err
	}
	ls.child = child
	go func() {
		child.Cmd.Wait()
		close(ls.exited)
	}()
	fail := func(err error) (*Manager, error) {
		ls.stop(context.Background())
		return nil, err
	}
	// Wait for "listening" (or a failure), under ctx.
	stop := context.AfterFunc(ctx, func() { child.Conn.SetReadDeadline(time.Unix(1, 0)) })
	kind, p, err := child.Reader.Next()
	stop()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fail(fmt.Errorf("manager: starting the manager process: %w", err))
	}
	if kind != kindListening {
		return fail(fmt.Errorf("manager: the manager process failed to start: %s", p))
	}
	c := &config{heartbeat: cfg.heartbeat, maxMessage: cfg.maxMessage, handshake: cfg.handshake}
	addr := struct{ network, addr string }{"unix", address}
	conn, err := dial(ctx, addr, key, c.ipcOptions()...)
	if err != nil {
		return fail(fmt.Errorf("manager: connecting to the manager process: %w", err))
	}
	cl, err := newClient(ctx, conn, cfg.heartbeat, addr, key)
	if err != nil {
		return fail(err)
	}
	return &Manager{c: cl, local: ls}, nil
}

// Shutdown stops a local manager (Python's manager.shutdown()): the
// connection closes, the child process exits and is reaped, and every
// proxy of its objects, in any process, fails with ErrConnLost. If ctx
// ends first the child is killed. On a Manager made by Connect it is
// Close.
func (m *Manager) Shutdown(ctx context.Context) error {
	if m == nil || m.c == nil {
		return nil
	}
	m.c.close()
	if m.local == nil {
		return nil
	}
	return m.local.stop(ctx)
}

// Pid returns the local manager process's id, or 0 for a remote manager.
func (m *Manager) Pid() int {
	if m.local == nil {
		return 0
	}
	return m.local.child.Pid()
}

func (ls *localServer) removeDir() {
	if ls.dir != "" {
		os.RemoveAll(ls.dir)
	}
}

func (ls *localServer) stop(ctx context.Context) error {
	ls.once.Do(func() {
		ls.child.Conn.Close() // EOF: the child stops serving and exits
		select {
		case <-ls.exited:
		case <-ctx.Done():
			ls.child.Cmd.Process.Kill()
			<-ls.exited
			ls.err = ctx.Err()
		case <-time.After(10 * time.Second):
			ls.child.Cmd.Process.Kill()
			<-ls.exited
		}
		ls.removeDir()
	})
	return ls.err
}

func init() { boot.Handle(role, serveChild) }

// serveChild is the manager process: it serves until its parent closes
// the control socket or dies.
func serveChild(s *boot.Session) int {
	d := wire.NewBuf(s.Start.Payload)
	key := d.Bytes()
	address := d.String()
	maxMsg := d.Uvarint()
	hs := d.Uvarint()
	if d.Err() != nil {
		s.Conn.Write(wire.AppendFrame(nil, kindFailed, []byte(d.Err().Error())))
		return 2
	}
	cfg := &config{raw: true, serving: true, maxMessage: int64(maxMsg), handshake: time.Duration(hs)}
	cfg.logger = slog.Default()
	ln, err := ipc.Listen("unix", address, key, cfg.ipcOptions()...)
	if err != nil {
		s.Conn.Write(wire.AppendFrame(nil, kindFailed, []byte(err.Error())))
		return 1
	}
	srv := startServer(context.Background(), ln, cfg)
	if _, err := s.Conn.Write(wire.AppendFrame(nil, kindListening, nil)); err != nil {
		return boot.ExitParentDied
	}
	var b [64]byte
	for {
		if _, err := s.Conn.Read(b[:]); err != nil {
			break // the parent shut us down, or died
		}
	}
	srv.Close()
	return 0
}
