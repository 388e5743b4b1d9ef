package boot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
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
	// Files are passed to the child as fds 4, 5, ... They are the only
	// descriptors besides 0-2 and the control socket that the child keeps
	// (see [Serve]). The caller keeps its own copies and closes them.
	Files []*os.File
	// SocketBuffer, if positive, asks for socket buffers of that many bytes
	// on both ends of the control socket (capped by the system's limit), so
	// large messages move in fewer wake-ups.
	SocketBuffer int
	// MaxMessageSize is the largest frame payload either end of the control
	// socket accepts after the handshake: the parent's [Child.Reader] and
	// the child's [Session.Reader] are built with it. 0 means
	// [wire.DefaultMaxFrame]; see [MessageLimit] for the valid range. The
	// start message itself may be larger (up to [MaxLimit]): roles check
	// their own payloads against the limit before calling Spawn.
	MaxMessageSize int

	// Isolation (issue 14). CgroupDir, if set, is a cgroup v2 directory
	// the child is started in (CLONE_INTO_CGROUP), so it never runs
	// outside it. Started, if set, runs right after the child was started
	// and before the handshake (so before any code of the role): a v1
	// cgroup is joined there. If it fails the child is killed and reaped
	// and Spawn returns its error. Stdout and Stderr, if set, replace the
	// inherited streams (a pipe whose reader prefixes the lines).
	CgroupDir      *os.File
	Started        func(pid int) error
	Stdout, Stderr *os.File
}

// Child is a started child process seen from the parent.
type Child struct {
	Cmd    *exec.Cmd
	Conn   *net.UnixConn
	Reader *wire.Reader // descriptor mode (recvmsg); rejects frames over Config.MaxMessageSize
}

// Pid returns the child's process id.
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// buildIDOverride, when set by this package's tests, replaces the build id
// sent in start messages, to exercise the child's mismatch check.
var buildIDOverride string

// preStartMax bounds what Spawn writes before the child exists. A fresh
// socketpair takes 18 to 240 KB before anyone reads, depending on the sizes
// of the writes (measured on this project's machine), so a whole start
// message written then deadlocks once it is large: the write waits for a
// reader that is only started after it. Up to 64 KiB go in one
// non-blocking write (whatever the kernel does not take waits for the
// child with the rest); anything larger is written once the child runs.
const preStartMax = 64 << 10

// Spawn starts a child, sends its start message and waits for its READY.
// It honours ctx in every phase (waiting for the spawner thread, writing
// the start message, waiting for READY): if ctx ends first, Spawn returns
// an error wrapping ctx.Err(), and a child already started is killed and
// reaped. If the child refuses, dies or stays silent for
// [HandshakeTimeout], the child is reaped and the error (matching
// ErrHandshake or ErrBuildMismatch) says why. A config that cannot be sent
// (an invalid MaxMessageSize, a start message over [MaxLimit]) fails before
// anything is started.
func Spawn(ctx context.Context, cfg Config) (*Child, error) {
	if err := CanSpawn(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("multiproc: starting child: %w", ctxErr(ctx))
	}
	limit, err := MessageLimit(cfg.MaxMessageSize)
	if err != nil {
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
		ParentPid: me.Pid, ParentName: me.Name,
		MaxMessageSize: limit, Files: len(cfg.Files), Payload: cfg.Payload,
	}
	head, off := wire.BeginFrame(make([]byte, 0, 256), KindStart)
	head = msg.appendHead(head)
	if wire.EndFrameWith(head, off, len(cfg.Payload), 0) != nil {
		size := int64(len(head)-wire.HeaderSize) + int64(len(cfg.Payload))
		return nil, &errs.TooLargeError{What: "start message of role " + cfg.Role, Size: size, Limit: MaxLimit}
	}
	parentEnd, childEnd, err := socketPair()
	if err != nil {
		return nil, fmt.Errorf("multiproc: control socket: %w", err)
	}
	if cfg.SocketBuffer > 0 {
		setSocketBuffers(parentEnd, cfg.SocketBuffer)
		setSocketBuffers(childEnd, cfg.SocketBuffer)
	}
	conn, err := fileConn(parentEnd)
	if err != nil {
		childEnd.Close()
		return nil, err
	}
	// A small start message goes now and waits for the child in the socket
	// buffer: no round trip at start-up. The write never blocks.
	rest := net.Buffers{head, cfg.Payload}
	if len(head)+len(cfg.Payload) <= preStartMax {
		whole := append(head, cfg.Payload...)
		rest = nil
		if n := writeNonblocking(conn, whole); n < len(whole) {
			rest = net.Buffers{whole[n:]}
		}
	}
	cmd := command(cfg, childEnd)
	err = startCmd(ctx, cmd)
	// The parent's copy of the child's end goes at once: with it open, a
	// child that dies would leave the parent's writes blocked and its reads
	// without EOF, waiting on a socket the parent itself holds.
	childEnd.Close()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("multiproc: starting child: %w", err)
	}
	c := &Child{Cmd: cmd, Conn: conn, Reader: wire.NewUnixReader(conn, limit)}
	if cfg.Started != nil {
		if err := cfg.Started(c.Pid()); err != nil {
			c.kill()
			return nil, err
		}
	}
	if err := c.handshake(ctx, rest); err != nil {
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
	if cfg.Stdout != nil {
		cmd.Stdout = cfg.Stdout
	}
	if cfg.Stderr != nil {
		cmd.Stderr = cfg.Stderr
	}
	if cfg.CgroupDir != nil {
		setCgroupDir(cmd.SysProcAttr, cfg.CgroupDir)
	}
	return cmd
}

// ctxErr is the error of an ended context: ctx.Err(), with the cause beside
// it when one was given, so that errors.Is finds both.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w (%w)", err, cause)
	}
	return err
}

// handshake writes what is left of the start message (the child reads it
// first thing) and waits for READY. Both phases share one deadline: ctx's,
// or HandshakeTimeout from now if that is earlier. An ending ctx moves the
// deadline to now, which wakes a blocked write or read at once.
func (c *Child) handshake(ctx context.Context, rest net.Buffers) error {
	deadline := time.Now().Add(HandshakeTimeout)
	ctxBound := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxBound = d, true
	}
	c.Conn.SetDeadline(deadline)
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.Conn.SetDeadline(time.Now())
		close(fired)
	})
	writing := false
	var err error
	if len(rest) > 0 {
		writing = true
		_, err = rest.WriteTo(c.Conn)
	}
	var (
		kind    byte
		payload []byte
	)
	if err == nil {
		writing = false
		kind, payload, err = c.Reader.Next()
	}
	if !stop() && ctx.Err() != nil {
		// The callback runs (or ran): let it finish before the deadline
		// is cleared, or it could set a past deadline on a started child.
		<-fired
	}
	c.Conn.SetDeadline(time.Time{})
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
		c.kill()
		return fmt.Errorf("%w: unexpected frame kind %q", errs.ErrHandshake, kind)
	}
	pid := c.Pid()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && ctxBound {
		// The socket's deadline was ctx's, and the socket can see it pass
		// a moment before ctx's own timer fires: it is ctx that ended.
		<-ctx.Done()
	}
	if ctx.Err() != nil {
		c.kill()
		if writing {
			return fmt.Errorf("multiproc: writing the start message to child %d: %w", pid, ctxErr(ctx))
		}
		return fmt.Errorf("multiproc: waiting for child %d to start: %w", pid, ctxErr(ctx))
	}
	switch {
	case errors.As(err, &ne) && ne.Timeout() && writing:
		c.kill()
		return fmt.Errorf("%w: child %d did not read its start message within %v; does its main() call multiproc.Main() first?", errs.ErrHandshake, pid, HandshakeTimeout)
	case errors.As(err, &ne) && ne.Timeout():
		c.kill()
		return fmt.Errorf("%w: child %d sent nothing within %v; does its main() call multiproc.Main() first?", errs.ErrHandshake, pid, HandshakeTimeout)
	case !peerGone(err):
		// Not a sign that the child exited: make sure it does, so that
		// reaping it cannot wait forever.
		c.kill()
		return fmt.Errorf("%w: child %d: %w", errs.ErrHandshake, pid, err)
	}
	status := c.reap()
	return fmt.Errorf("%w: child %d exited before its handshake (%s); does its main() call multiproc.Main() first?", errs.ErrHandshake, pid, status)
}

// peerGone reports whether err is how a socket shows that its peer closed
// it: end of stream, a broken pipe or a reset (a peer that exits with
// unread data in its buffer resets the connection).
func peerGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
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

	filesTaken bool
}

// Files returns the files the parent passed (Config.Files), as fds 4, 5,
// ... of this process, and hands them to the caller. A second call returns
// nil.
func (s *Session) Files() []*os.File {
	if s.filesTaken || s.Start.Files == 0 {
		return nil
	}
	s.filesTaken = true
	fs := make([]*os.File, s.Start.Files)
	for i := range fs {
		fs[i] = os.NewFile(uintptr(4+i), fmt.Sprintf("multiproc-passed-%d", i))
	}
	return fs
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
//
// Before the role runs, the child holds only what it was given: fds 0-2,
// its control socket and the files its parent passed (fds 4, 5, ...).
// Every other descriptor it inherited without close-on-exec (a parent's
// file opened with syscall.Open and no O_CLOEXEC, say) is closed. Go's
// runtime and package os open everything close-on-exec, so nothing of the
// child's own is touched, except descriptors that package initialisation
// opened without close-on-exec itself. Package initialisation runs before
// Serve and so may still see the inherited descriptors.
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
	payload, err := readStart(conn)
	if err != nil {
		fmt.Fprintf(os.Stderr, "multiproc: child %d: no start message from parent (%v)\n", os.Getpid(), err)
		os.Exit(2)
	}
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
	closeInherited(connFD(conn), msg.Files)
	selfMu.Lock()
	self = Identity{Name: msg.Name, Pid: os.Getpid(), Daemon: msg.Daemon}
	parent = &Identity{Name: msg.ParentName, Pid: msg.ParentPid}
	selfMu.Unlock()
	mainCalled.Store(true)
	ignoreInterrupt()
	if _, err := conn.Write(wire.AppendFrame(nil, KindReady, nil)); err != nil {
		os.Exit(2) // parent gone
	}
	code := h(&Session{Start: msg, Conn: conn, Reader: wire.NewUnixReader(conn, msg.MaxMessageSize)})
	runExitHooks()
	os.Exit(code)
}

// readStart reads the start message's frame and returns its payload.
//
// It reads exactly one frame and nothing after it: the Session's Reader,
// built with the limit the message announces, takes over from the next
// byte. The parent writes nothing more before READY, so the first read may
// use a whole block; a stream with bytes after the frame is refused. The
// frame may be as large as a frame can be ([MaxLimit]: the message carries
// the limit, so the child cannot know a smaller one yet), but the buffer
// grows only as bytes arrive, so a hand-made header announcing gigabytes
// costs nothing. Each read has HandshakeTimeout: a silent peer cannot make
// the child hang.
func readStart(conn *net.UnixConn) ([]byte, error) {
	buf := make([]byte, 64<<10)
	n := 0
	read := func(end int) error {
		conn.SetReadDeadline(time.Now().Add(HandshakeTimeout))
		m, err := conn.Read(buf[n:end])
		n += m
		if m > 0 {
			return nil
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		if errors.Is(err, io.EOF) && n > 0 {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	for n < wire.HeaderSize {
		if err := read(len(buf)); err != nil {
			return nil, err
		}
	}
	if kind := buf[4]; kind != KindStart {
		return nil, fmt.Errorf("%w: first frame of kind %q", wire.ErrCorrupt, kind)
	}
	total := wire.HeaderSize + int(binary.LittleEndian.Uint32(buf))
	if n > total {
		return nil, fmt.Errorf("%w: %d bytes after the start message", wire.ErrCorrupt, n-total)
	}
	for n < total {
		if n == len(buf) {
			buf = slices.Grow(buf, min(total-n, len(buf)))
			buf = buf[:cap(buf)]
		}
		if err := read(min(len(buf), total)); err != nil {
			return nil, err
		}
	}
	conn.SetReadDeadline(time.Time{})
	return buf[wire.HeaderSize:total:total], nil
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
