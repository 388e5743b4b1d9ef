package multiproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/registry"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Process runs one function, or one [Runner], in a child process: Python's
// multiprocessing.Process. Create it with [NewProcess] or [NewProcessOf],
// optionally set Name and Daemon, then Start and Join it:
//
//	p := multiproc.NewProcess(worker, "A")
//	if err := p.Start(ctx); err != nil { ... }
//	err := p.Join(ctx) // nil when the child exited with code 0
//
// The child inherits the parent's environment, working directory, stdout
// and stderr (so a fmt.Println there shows up like Python's print); its
// stdin is /dev/null. It dies if the parent dies, however the parent dies.
//
// Methods are safe for concurrent use. Name and Daemon must be set before
// Start and not changed after.
type Process struct {
	// Name is the process's name, seen by the child as CurrentProcess().Name.
	// NewProcess sets it to "Process-N" (numbered per parent, nested as
	// "Process-N:M" in a child, as in Python).
	Name string
	// Daemon marks a daemonic process: Finish terminates it instead of
	// waiting for it, and it may not start processes of its own.
	Daemon bool

	payload  []byte
	argErr   error
	funcName string
	decode   func([]byte) (any, error) // decodes the result frame
	runner   Runner                    // subclass form: refreshed from the child after Run
	rtype    *registry.Type

	mu      sync.Mutex
	state   procState
	child   *boot.Child
	pid     int
	done    chan struct{} // closed when the child was reaped
	code    int
	err     error // what Join reports
	result  any
	haveRes bool
}

type procState int

const (
	stateNew procState = iota
	stateStarting
	stateStarted
	stateClosed
)

// Target kinds: the first byte of a "process" role start payload.
const (
	targetFunc = 'f' // the payload names a registered function
	targetType = 't' // the payload names a registered Runner type
)

// Result frame kinds of the "process" role, sent after boot's handshake.
const (
	kindValue = 0x20 + iota
	kindError
)

var processCounter atomic.Int64

func defaultName() string {
	n := processCounter.Add(1)
	prefix := "Process-"
	if self := boot.Self().Name; strings.HasPrefix(self, "Process-") {
		prefix = self + ":"
	}
	return fmt.Sprintf("%s%d", prefix, n)
}

// NewProcess returns an unstarted process that will run f(ctx, arg) in a
// child. The argument is encoded now; if it cannot be, Start returns the
// error (naming the type) without starting anything.
func NewProcess[In, Out any](f Func[In, Out], arg In) *Process {
	p := &Process{Name: defaultName(), done: make(chan struct{})}
	if p.argErr = f.check(); p.argErr != nil {
		return p
	}
	p.funcName = f.e.Name
	enc, err := f.in.Append(nil, arg)
	if err != nil {
		p.argErr = fmt.Errorf("multiproc: argument of %q: %w", f.e.Name, err)
		return p
	}
	p.payload = wire.AppendBytes(wire.AppendString([]byte{targetFunc}, f.e.Name), enc)
	p.decode = func(b []byte) (any, error) { return f.out.Decode(b) }
	return p
}

// NewProcessOf returns an unstarted process that runs r.Run in a child: the
// subclass form. r must be a pointer to a struct type registered with
// [RegisterProcess]; its exported fields travel to the child, and after a
// successful Join they hold the values Run left in them (Python cannot do
// that). Do not touch *r between Start and Join.
func NewProcessOf(r Runner) *Process {
	p := &Process{Name: defaultName(), done: make(chan struct{}), runner: r}
	t, err := registry.TypeOf(r)
	if err != nil {
		p.argErr = err
		return p
	}
	p.rtype, p.funcName = t, t.Name
	enc, err := t.Encode(nil, r)
	if err != nil {
		p.argErr = fmt.Errorf("multiproc: fields of %q: %w", t.Name, err)
		return p
	}
	p.payload = wire.AppendBytes(wire.AppendString([]byte{targetType}, t.Name), enc)
	return p
}

// Start starts the child and returns once it has completed its handshake
// (it runs the same build and is about to run the target). It fails with
// [ErrNoMain] if Main was not called, [ErrAlreadyStarted] on a second call,
// the argument's encoding error, or [ErrHandshake]/[ErrBuildMismatch] when
// the child could not start; a context that ends first kills the child.
func (p *Process) Start(ctx context.Context) error {
	p.mu.Lock()
	switch p.state {
	case stateClosed:
		p.mu.Unlock()
		return ErrClosed
	case stateNew:
	default:
		p.mu.Unlock()
		return ErrAlreadyStarted
	}
	if p.argErr != nil {
		p.mu.Unlock()
		return p.argErr
	}
	p.state = stateStarting
	p.mu.Unlock()

	c, err := boot.Spawn(ctx, boot.Config{Role: "process", Name: p.Name, Daemon: p.Daemon, Payload: p.payload})
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.state = stateNew
		return err
	}
	p.state, p.child, p.pid = stateStarted, c, c.Pid()
	children.Lock()
	children.set[p] = struct{}{}
	children.Unlock()
	go p.wait(c)
	return nil
}

// wait collects the child's result frame, then reaps it.
func (p *Process) wait(c *boot.Child) {
	var (
		result  any
		haveRes bool
		failure error
	)
	for {
		kind, payload, err := c.Reader.Next()
		if err != nil {
			break
		}
		switch kind {
		case kindValue:
			if p.rtype != nil {
				failure = p.rtype.Decode(payload, p.runner)
			} else if p.decode != nil {
				result, failure = p.decode(payload)
			}
			haveRes = failure == nil
		case kindError:
			re, err := errs.DecodeError(payload)
			if err != nil {
				failure = fmt.Errorf("multiproc: process %d sent a bad error envelope: %w", p.pid, err)
			} else {
				failure = re
			}
		}
	}
	c.Conn.Close()
	c.Cmd.Wait()
	code, sig := exitStatus(c.Cmd.ProcessState)
	var err error
	switch {
	case failure != nil:
		err = failure
	case code != 0:
		err = &ExitError{Pid: p.pid, Code: code, Signal: sig}
	}
	p.mu.Lock()
	p.code, p.err, p.result, p.haveRes = code, err, result, haveRes
	p.mu.Unlock()
	children.Lock()
	delete(children.set, p)
	children.Unlock()
	close(p.done)
}

// Join waits for the process to exit. It returns nil if the child exited
// with code 0; the target's error or panic as a [*RemoteError] (exit code
// 1); or an [*ExitError] for any other exit (a signal, os.Exit). If ctx ends
// first Join returns an error wrapping ctx.Err() and the process runs on,
// like Python's join(timeout).
func (p *Process) Join(ctx context.Context) error {
	p.mu.Lock()
	st := p.state
	p.mu.Unlock()
	if st != stateStarted && st != stateClosed {
		return ErrNotStarted
	}
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("multiproc: join %s (pid %d): %w", p.Name, p.pid, ctx.Err())
	}
}

// IsAlive reports whether the process was started and has not been reaped.
func (p *Process) IsAlive() bool {
	p.mu.Lock()
	st := p.state
	p.mu.Unlock()
	if st != stateStarted {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid returns the child's process id, or 0 before Start.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// ExitCode returns the exit code in Python's convention (0 success, 1 when
// the target returned an error or panicked, -N when killed by signal N);
// ok is false while the process has not been started or not been reaped.
func (p *Process) ExitCode() (code int, ok bool) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.code, true
	default:
		return 0, false
	}
}

// Terminate sends SIGTERM to the child (Python's terminate). It is a no-op
// if the child already exited, and idempotent.
func (p *Process) Terminate() error { return p.signal(termSignal) }

// Kill sends SIGKILL to the child (Python's kill). It is a no-op if the
// child already exited, and idempotent.
func (p *Process) Kill() error { return p.signal(os.Kill) }

func (p *Process) signal(sig os.Signal) error {
	p.mu.Lock()
	st, c := p.state, p.child
	p.mu.Unlock()
	switch st {
	case stateClosed:
		return ErrClosed
	case stateStarted:
	default:
		return ErrNotStarted
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	// os.Process signals through a pidfd, so a recycled pid can never be hit.
	if err := c.Cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("multiproc: signalling %s (pid %d): %w", p.Name, p.pid, err)
	}
	return nil
}

// Close releases the Process. It fails with [ErrStillRunning] if the child
// is running; afterwards other methods return [ErrClosed] (Join and
// ExitCode still report the outcome).
func (p *Process) Close() error {
	if p.IsAlive() {
		return ErrStillRunning
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = stateClosed
	return nil
}

// Result returns the value the target of p returned, after p was joined. It
// returns the process's error if it failed, [ErrStillRunning] or
// [ErrNotStarted] before the process ended, and an error wrapping
// ErrNotRegistered if Out is not the function's result type.
func Result[Out any](p *Process) (Out, error) {
	var zero Out
	select {
	case <-p.done:
	default:
		if p.IsAlive() {
			return zero, ErrStillRunning
		}
		return zero, ErrNotStarted
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return zero, p.err
	}
	if !p.haveRes {
		return zero, fmt.Errorf("multiproc: %s (pid %d) exited without returning a result", p.Name, p.pid)
	}
	v, ok := p.result.(Out)
	if !ok {
		return zero, fmt.Errorf("%w: %q returns %T, not %T", errs.ErrResultType, p.funcName, p.result, zero)
	}
	return v, nil
}

func init() { boot.Handle("process", serveProcess) }

// serveProcess is the child side of a Process.
func serveProcess(s *boot.Session) int {
	s.WatchParent()
	d := wire.NewBuf(s.Start.Payload)
	kind, name, arg := d.Byte(), d.String(), d.Bytes()
	if d.Err() != nil {
		fmt.Fprintf(os.Stderr, "multiproc: child %d: bad target: %v\n", os.Getpid(), d.Err())
		return 2
	}
	ctx := context.Background()
	buf, off := wire.BeginFrame(make([]byte, 0, 256), kindValue)
	var err error
	switch kind {
	case targetFunc:
		var e *registry.Entry
		if e, err = registry.Lookup(name); err == nil {
			buf, err = e.Call(ctx, arg, buf)
		}
	case targetType:
		var t *registry.Type
		if t, err = registry.LookupType(name); err == nil {
			buf, err = t.Run(ctx, arg, buf)
		}
	default:
		err = fmt.Errorf("multiproc: unknown target kind %q", kind)
	}
	if err != nil {
		buf, off = wire.BeginFrame(buf[:0], kindError)
		buf = registry.AppendFailure(buf, name, err)
	}
	if ferr := wire.EndFrame(buf, off, 0); ferr == nil {
		s.Conn.Write(buf)
	}
	Finish()
	if err != nil {
		return 1
	}
	return 0
}
