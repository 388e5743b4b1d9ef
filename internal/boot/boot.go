package boot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// EnvRole is the environment variable that marks a process as a multiproc
// child. Its value is only a marker; the role itself travels on fd 3.
const EnvRole = "MULTIPROC_CHILD"

// HandshakeTimeout bounds how long Spawn waits for a child's READY when the
// caller's context has no earlier deadline. It is generous: a loaded 2-core
// machine can take a second to start a large binary.
const HandshakeTimeout = 60 * time.Second

var (
	isChild    = os.Getenv(EnvRole) != ""
	mainCalled atomic.Bool
	serving    atomic.Bool

	// self describes this process once Main ran (its name and daemon flag
	// come from the start message in a child).
	selfMu sync.Mutex
	self   = Identity{Name: "MainProcess", Pid: os.Getpid()}
	parent *Identity
)

// Identity names a process the way Python's current_process() does.
type Identity struct {
	Name   string
	Pid    int
	Daemon bool
}

// IsChild reports whether this process was started as a multiproc child.
// It is known from package initialisation on, before Main runs.
func IsChild() bool { return isChild }

// MainCalled reports whether Main ran in this process.
func MainCalled() bool { return mainCalled.Load() }

// SetMainCalled records that the parent-side Main ran.
func SetMainCalled() { mainCalled.Store(true) }

// Self returns this process's identity.
func Self() Identity {
	selfMu.Lock()
	defer selfMu.Unlock()
	return self
}

// Parent returns the parent's identity, for a multiproc child.
func Parent() (Identity, bool) {
	selfMu.Lock()
	defer selfMu.Unlock()
	if parent == nil {
		return Identity{}, false
	}
	return *parent, true
}

// CanSpawn returns nil if this process may start children: Main must have
// run (in a child that means the role is being served, never in the code
// that ran before Main, which is how a fork bomb is made impossible), and a
// daemonic process may not have children, as in Python.
func CanSpawn() error {
	if !mainCalled.Load() {
		if isChild {
			return fmt.Errorf("%w (this is a re-executed child that has not reached Main: starting a process here would recurse)", errs.ErrNoMain)
		}
		return errs.ErrNoMain
	}
	if Self().Daemon {
		return errs.ErrDaemonChildren
	}
	return nil
}

// Config describes a child to start.
type Config struct {
	Role    string
	Name    string
	Daemon  bool
	Payload []byte
	// NewGroup puts the child in a process group of its own, so a pool can
	// signal a worker's whole tree and a terminal's Ctrl-C does not reach it
	// directly.
	NewGroup bool
	// Files are passed to the child as fds 4, 5, ...
	Files []*os.File
	// SocketBuffer, if positive, asks for socket buffers of that many bytes
	// on both ends of the control socket (capped by the system's limit), so
	// large messages move in fewer wake-ups.
	SocketBuffer int
}

// Child is a started child process seen from the parent.
type Child struct {
	Cmd    *exec.Cmd
	Conn   *net.UnixConn
	Reader *wire.Reader
}

// Pid returns the child's process id.
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// buildIDOverride, when set by this package's tests, replaces the build id
// sent in start messages, to exercise the child's mismatch check.
var buildIDOverride string

// Spawn starts a child, sends its start message and waits for its READY.
// If the context ends or the child refuses or dies first, the child is
// killed and reaped and the error says why.
func Spawn(ctx context.Context, cfg Config) (*Child, error) {
	if err := CanSpawn(); err != nil {
		return nil, err
	}
	bid, err := BuildID()
	if err != nil {
		return nil, err
	}
	if buildIDOverride != "" {
		bid = buildIDOverride
	}
	me := Self()
	msg := StartMsg{
		BuildID: bid, Role: cfg.Role, Name: cfg.Name, Daemon: cfg.Daemon,
		ParentPid: me.Pid, ParentName: me.Name, Payload: cfg.Payload,
	}
	parentEnd, childEnd, err := socketPair()
	if err != nil {
		return nil, fmt.Errorf("multiproc: control socket: %w", err)
	}
	if cfg.SocketBuffer > 0 {
		setSocketBuffers(parentEnd, cfg.SocketBuffer)
		setSocketBuffers(childEnd, cfg.SocketBuffer)
	}
	defer childEnd.Close()
	conn, err := fileConn(parentEnd)
	if err != nil {
		childEnd.Close()
		return nil, err
	}
	// The start message fits the socket buffer, so it is written before the
	// child exists and waits for it there: no round trip at start-up.
	if _, err := conn.Write(wire.AppendFrame(nil, KindStart, msg.append(nil))); err != nil {
		conn.Close()
		return nil, fmt.Errorf("multiproc: writing start message: %w", err)
	}
	cmd := command(cfg, childEnd)
	if err := startCmd(cmd); err != nil {
		conn.Close()
		return nil, fmt.Errorf("multiproc: starting child: %w", err)
	}
	c := &Child{Cmd: cmd, Conn: conn, Reader: wire.NewReader(conn, 0)}
	if err := c.awaitReady(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func command(cfg Config, childEnd *os.File) *exec.Cmd {
	cmd := &exec.Cmd{
		Path:        executable(),
		Args:        os.Args,
		Env:         append(os.Environ(), EnvRole+"=1"),
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		ExtraFiles:  append([]*os.File{childEnd}, cfg.Files...),
		SysProcAttr: sysProcAttr(cfg.NewGroup),
	}
	return cmd
}

func (c *Child) awaitReady(ctx context.Context) error {
	deadline := time.Now().Add(HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.Conn.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.Conn.SetReadDeadline(time.Now()) })
	kind, payload, err := c.Reader.Next()
	stop()
	c.Conn.SetReadDeadline(time.Time{})
	switch {
	case err == nil && kind == KindReady:
		return nil
	case err == nil && kind == KindRefuse:
		c.reap()
		// The first byte says why; a peer's bytes are never trusted to
		// have one.
		if len(payload) == 0 {
			return fmt.Errorf("%w: child refused without a reason", errs.ErrHandshake)
		}
		if payload[0] == 'B' {
			return fmt.Errorf("%w: %s", errs.ErrBuildMismatch, payload[1:])
		}
		return fmt.Errorf("%w: child refused: %s", errs.ErrHandshake, payload[1:])
	case err == nil:
		c.reap()
		return fmt.Errorf("%w: unexpected frame kind %q", errs.ErrHandshake, kind)
	}
	if ctx.Err() != nil {
		c.kill()
		return fmt.Errorf("multiproc: waiting for child %d to start: %w", c.Pid(), context.Cause(ctx))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.kill()
		return fmt.Errorf("%w: child %d sent nothing within %v; does its main() call multiproc.Main() first?", errs.ErrHandshake, c.Pid(), HandshakeTimeout)
	}
	status := c.reap()
	return fmt.Errorf("%w: child %d exited before its handshake (%s); does its main() call multiproc.Main() first?", errs.ErrHandshake, c.Pid(), status)
}

func (c *Child) kill() {
	c.Cmd.Process.Kill()
	c.reap()
}

func (c *Child) reap() string {
	c.Conn.Close()
	err := c.Cmd.Wait()
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Session is a child's view of its control socket while it serves a role.
type Session struct {
	Start  StartMsg
	Conn   *net.UnixConn
	Reader *wire.Reader
}

var (
	rolesMu sync.Mutex
	roles   = map[string]func(*Session) int{}
)

// Handle registers the handler of a role. The handler's result is the
// child's exit status.
func Handle(role string, fn func(*Session) int) {
	rolesMu.Lock()
	defer rolesMu.Unlock()
	roles[role] = fn
}

// Serve turns this process into the child its parent asked for. It runs the
// role's handler and exits; it never returns.
func Serve() {
	if !serving.CompareAndSwap(false, true) {
		panic("multiproc: Main called twice in a child")
	}
	os.Unsetenv(EnvRole)
	conn, err := controlConn()
	if err != nil {
		fmt.Fprintf(os.Stderr, "multiproc: this program was started as a multiproc child (%s is set) but it has no control socket on fd 3 (%v).\nmultiproc: children are started by their parent program; run it without %s.\n", EnvRole, err, EnvRole)
		os.Exit(2)
	}
	// A child run by hand with a socket on fd 3 that never speaks must not
	// hang: the parent writes the start message before the child starts.
	conn.SetReadDeadline(time.Now().Add(HandshakeTimeout))
	r := wire.NewReader(conn, 0)
	kind, payload, err := r.Next()
	if err != nil || kind != KindStart {
		fmt.Fprintf(os.Stderr, "multiproc: child %d: no start message from parent (%v, kind %q)\n", os.Getpid(), err, kind)
		os.Exit(2)
	}
	conn.SetReadDeadline(time.Time{})
	msg, err := decodeStart(payload)
	if err != nil {
		refuse(conn, 'H', err.Error())
	}
	bid, err := BuildID()
	if err != nil {
		refuse(conn, 'H', err.Error())
	}
	if msg.BuildID != bid {
		refuse(conn, 'B', fmt.Sprintf("parent build %q, child build %q", short(msg.BuildID), short(bid)))
	}
	rolesMu.Lock()
	h := roles[msg.Role]
	rolesMu.Unlock()
	if h == nil {
		refuse(conn, 'H', fmt.Sprintf("unknown role %q", msg.Role))
	}
	selfMu.Lock()
	self = Identity{Name: msg.Name, Pid: os.Getpid(), Daemon: msg.Daemon}
	parent = &Identity{Name: msg.ParentName, Pid: msg.ParentPid}
	selfMu.Unlock()
	mainCalled.Store(true)
	ignoreInterrupt()
	if _, err := conn.Write(wire.AppendFrame(nil, KindReady, nil)); err != nil {
		os.Exit(2) // parent gone
	}
	os.Exit(h(&Session{Start: msg, Conn: conn, Reader: r}))
}

func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

func refuse(conn *net.UnixConn, code byte, reason string) {
	conn.Write(wire.AppendFrame(nil, KindRefuse, append([]byte{code}, reason...)))
	fmt.Fprintf(os.Stderr, "multiproc: child %d refused to start: %s\n", os.Getpid(), reason)
	os.Exit(2)
}

// WatchParent makes the child exit when its control socket reaches EOF, the
// sign that the parent died even where no parent-death signal exists. Roles
// that read the socket themselves detect EOF in their own loop instead.
func (s *Session) WatchParent() {
	go func() {
		var b [64]byte
		for {
			if _, err := s.Conn.Read(b[:]); err != nil {
				os.Exit(ExitParentDied)
			}
		}
	}()
}

// ExitParentDied is the exit status of a child whose parent went away.
const ExitParentDied = 3
