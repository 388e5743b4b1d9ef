package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// A Conn is a resource (internal/wire's Exporter and Importer): passed as
// a Process argument or a pool task argument (at any depth of the value),
// its socket travels as a descriptor and the receiving side gets a Conn
// on it. The exported state:
//
//	u8      stateVersion
//	u8      flags: python, sameBuild, canRead, canWrite, peerClosed
//	uvarint the message size limit
//	rest    the peer's build id
//
// Typed values carry no stream state (see conn_value.go), so the receiver
// starts with a clean Conn. What cannot travel is refused with an error
// matching ErrNotTransferable: a TLS Conn (its session keys live in this
// process), a Conn with received bytes not yet read (they are in this
// process's buffer, not in the socket), a closed Conn. Messages this side
// buffered are flushed first (bounded by closeTimeout), so they reach the
// peer before anything the receiver sends.
//
// The sender keeps its own Conn, as Python keeps the parent's copy of a
// Pipe end: close it if it is no longer yours (two processes reading one
// end share its messages unpredictably).

const stateVersion = 1

const (
	flagPython = 1 << iota
	flagSameBuild
	flagCanRead
	flagCanWrite
	flagPeerClosed
)

// notTransferable is why a Conn cannot travel to another process. It
// matches multiproc.ErrNotTransferable (wire.ErrNoTransport), whose own
// text speaks of engines; this one says what a Conn user can do.
type notTransferable struct{ why string }

func (e *notTransferable) Error() string {
	return "ipc: a Conn cannot be passed to another process: " + e.why
}

func (e *notTransferable) Unwrap() error { return wire.ErrNoTransport }

// NeedsDescriptors reports whether c has a socket to pass: true until
// Close.
func (c *Conn) NeedsDescriptors() bool { return !c.closed.Load() }

// ExportResource describes c to the transport that passes it to another
// process: a duplicate of its socket and its settings. Programs do not
// call it; it is how a *Conn travels as a Process or task argument. It
// fails with an error matching multiproc.ErrNotTransferable for a TLS
// Conn or one with received bytes not yet read, and matching ErrClosed
// after Close. The receiving Process owns the imported Conn and must
// Close it; a pool worker closes a task's after the task (see [Conn]).
func (c *Conn) ExportResource(x *wire.Exported) error {
	if c.closed.Load() {
		return fmt.Errorf("%w: passing a closed Conn", ErrClosed)
	}
	if c.cfg.tls {
		return &notTransferable{"it uses TLS, whose session lives in this process (give the child the address and key to Dial instead)"}
	}
	if c.rc == nil {
		return &notTransferable{"it has no socket descriptor to pass"}
	}
	if !c.r.mu.tryLock() {
		return &notTransferable{"a receive on it is in progress"}
	}
	defer c.r.mu.unlock()
	if n := c.r.buffered(); n > 0 {
		return &notTransferable{fmt.Sprintf("it has %d received bytes not yet read (receive them first)", n)}
	}
	if c.r.err != nil && !c.r.peerClosed.Load() {
		return fmt.Errorf("ipc: passing a broken Conn: %w", c.r.err)
	}
	if c.cfg.canWrite {
		if err := c.w.flushBounded(); err != nil {
			return err
		}
	}
	var f *os.File
	var derr error
	if err := c.rc.Control(func(fd uintptr) { f, derr = dupFD(int(fd)) }); err != nil {
		return fmt.Errorf("ipc: passing a Conn: %w", err)
	}
	if derr != nil {
		return fmt.Errorf("ipc: passing a Conn: %w", derr)
	}
	var flags byte
	if c.cfg.python {
		flags |= flagPython
	}
	if c.cfg.sameBuild {
		flags |= flagSameBuild
	}
	if c.cfg.canRead {
		flags |= flagCanRead
	}
	if c.cfg.canWrite {
		flags |= flagCanWrite
	}
	if c.r.peerClosed.Load() {
		flags |= flagPeerClosed
	}
	st := []byte{stateVersion, flags}
	st = binary.AppendUvarint(st, uint64(c.cfg.max))
	st = append(st, c.cfg.peerBuild...)
	c.exp.add()
	x.ID, x.Files, x.Owned, x.State = 0, []*os.File{f}, true, st
	x.Done = c.settleExport
	return nil
}

// exportState counts c's exports whose outcome (wire.Exported.Done) has
// not come yet, and holds back the end of a Close made meanwhile.
type exportState struct {
	mu       sync.Mutex
	pending  int
	closing  bool // Close began with exports pending
	deferred bool // Close's flush is done: the rest waits for the exports
}

func (e *exportState) add() {
	e.mu.Lock()
	e.pending++
	e.mu.Unlock()
}

// begin reports whether Close must defer its end, marking it so.
func (e *exportState) begin() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closing = e.pending > 0
	return e.closing
}

// closed is Close's flush done with exports pending: finish now if they
// all settled meanwhile.
func (e *exportState) closed(c *Conn) {
	e.mu.Lock()
	e.deferred = true
	last := e.pending == 0
	e.mu.Unlock()
	if last {
		c.finishDeferredClose()
	}
}

// settleExport is the transport's Done hook for c's exports: delivered
// marks c as living on in another process.
func (c *Conn) settleExport(delivered bool) {
	if delivered {
		c.exported.Store(true)
	}
	e := &c.exp
	e.mu.Lock()
	e.pending--
	last := e.pending == 0 && e.deferred
	e.mu.Unlock()
	if last {
		c.finishDeferredClose()
	}
}

// finishDeferredClose ends a Close that waited for c's exports: if none
// was delivered the peer is told the end is closed (as Close would have
// done), then the socket is closed. The hook may run under a transport's
// lock, so the message goes in one non-blocking write: Close flushed
// everything before it, so the socket buffer has room unless the peer
// stopped reading, and then the peer sees the end without it.
func (c *Conn) finishDeferredClose() {
	if !c.exported.Load() && !c.cfg.python && c.cfg.canWrite && c.rc != nil {
		c.w.mu.Lock()
		ok := c.w.err == nil || errors.Is(c.w.err, ErrClosed)
		c.w.mu.Unlock()
		if ok {
			msg := c.appendHeader(nil, kindClose, 0)
			c.rc.Write(func(fd uintptr) bool {
				syscall.Write(int(fd), msg)
				return true
			})
		}
	}
	c.nc.Close()
}

// ImportResource makes the zero Conn c the receiving side's end of a
// passed Conn, taking ownership of files. Programs do not call it.
func (c *Conn) ImportResource(state []byte, files []*os.File) error {
	if len(files) != 1 {
		for _, f := range files {
			f.Close()
		}
		return fmt.Errorf("%w: a Conn arrived with %d descriptors", wire.ErrCorrupt, len(files))
	}
	f := files[0]
	if len(state) < 3 || state[0] != stateVersion {
		f.Close()
		return fmt.Errorf("%w: a Conn's state is malformed", wire.ErrCorrupt)
	}
	flags := state[1]
	max, n := binary.Uvarint(state[2:])
	if n <= 0 || max == 0 || max > 1<<62 {
		f.Close()
		return fmt.Errorf("%w: a Conn's state is malformed", wire.ErrCorrupt)
	}
	peer := string(state[2+n:])
	if c.nc != nil {
		f.Close()
		return errors.New("ipc: ImportResource on a Conn in use")
	}
	nc, err := fileConnOf(f)
	if err != nil {
		return err
	}
	cfg := connConfig{
		python:    flags&flagPython != 0,
		sameBuild: flags&flagSameBuild != 0 && peer == ownBuild(),
		peerBuild: peer,
		max:       int64(max),
		canRead:   flags&flagCanRead != 0,
		canWrite:  flags&flagCanWrite != 0,
	}
	*c = Conn{nc: nc, cfg: cfg}
	if sc, ok := nc.(syscall.Conn); ok {
		c.rc, _ = sc.SyscallConn()
	}
	c.w.init(c)
	c.r.init(c)
	live.Store(c, struct{}{})
	if flags&flagPeerClosed != 0 {
		c.r.peerClosed.Store(true)
		c.r.err = errPeerClosedEOF
	}
	return nil
}

// flushBounded flushes with closeTimeout as the bound.
func (w *writer) flushBounded() error {
	ctx, cancel := contextWithTimeout(closeTimeout)
	defer cancel()
	if err := w.flush(ctx); err != nil {
		return fmt.Errorf("ipc: passing a Conn: flushing what it buffered: %w", err)
	}
	return nil
}
