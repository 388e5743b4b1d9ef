package multiproc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/cgroup"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/registry"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Process runs one function, or one [Runner], in a child process: Python's
// multiprocessing.Process. Create it with [NewProcess] or [NewProcessOf],
// optionally set Name, Daemon, MaxMessageSize and Limits, then Start and
// Join it:
//
//	p := multiproc.NewProcess(worker, "A")
//	if err := p.Start(ctx); err != nil { ... }
//	err := p.Join(ctx) // nil when the child exited with code 0
//
// The child inherits the parent's environment, working directory, stdout
// and stderr (so a fmt.Println there shows up like Python's print); its
// stdin is /dev/null, and of the parent's other descriptors it holds none
// (see [Main]). It dies if the parent dies, however the parent dies.
//
// A Process is started at most once. [Process.Exited] gives a channel to
// select on (Python's sentinel). Methods are safe for concurrent use. Name,
// Daemon, MaxMessageSize and Limits must be set before Start and not
// changed after.
type Process struct {
	// Name is the process's name, seen by the child as CurrentProcess().Name.
	// NewProcess sets it to "Process-N" (numbered per parent, nested as
	// "Process-N:M" in a child, as in Python).
	Name string
	// Daemon marks a daemonic process: Finish terminates it instead of
	// waiting for it, and it may not start processes of its own.
	Daemon bool
	// MaxMessageSize bounds, in bytes, the encoded argument (or, for
	// NewProcessOf, the encoded exported fields) sent to the child and the
	// encoded result (or fields after Run) sent back. 0 means the default,
	// 256 MiB; it may be raised up to 1<<32-1, what a frame header carries.
	// An argument over the limit makes Start fail with an error matching
	// ErrTooLarge (a *TooLargeError) without starting anything; a result
	// over it is caught by the child before sending, and Join returns a
	// [*RemoteError] matching ErrTooLarge (exit code 1), in which errors.As
	// finds the [*TooLargeError]. An error report (the child's failure) may
	// take at least 64 KiB whatever the limit. A negative value
	// or one over 1<<32-1 makes Start fail.
	MaxMessageSize int
	// Limits bounds what the child may use (see [Limits]): applied in the
	// child before its target runs. Invalid values make Start fail without
	// starting anything. A CPUTime allowance covers the whole target; past
	// it the child is killed by SIGXCPU. Limited or not, when the child
	// dies without a result Join's [*ExitError] says why as a pool
	// worker's does (Cause, Reason, Report): an OOM kill its cgroup
	// counted or the runtime's out-of-memory throw ([ErrOutOfMemory]),
	// CPUTime ([ErrCPULimit]), a refused thread ([ErrProcessLimit]), a
	// fatal error, a goroutine's panic or a cgo fault ([ErrFatal],
	// [ErrGoroutinePanic], [ErrCgoFault], from the crash report), a signal
	// from outside ([ErrKilled]; Terminate and Kill set no Cause), or
	// os.Exit ([ErrExit]).
	Limits Limits

	payload  []byte        // start payload: target kind, name, the argument, its resource table, the table's 4-byte length
	argLen   int           // bytes of the encoded argument in payload
	res      wire.Outgoing // the argument's resources: duplicates owned until Start or Close
	argWhat  string        // what the argument is, for errors: "argument" or "fields"
	argErr   error
	funcName string
	decode   func([]byte, wire.Incoming) (any, error) // decodes the result frame
	runner   Runner                                   // subclass form: refreshed from the child after Run
	rtype    *registry.Type

	// mu protects the fields below. done is closed, without mu, by the one
	// goroutine that ends the process: Start's on failure, wait's on exit.
	mu       sync.Mutex
	state    procState
	begun    bool  // Start got past its state check: Exited is done
	startErr error // why Start failed (state stateFailed, or closed after it)
	child    *boot.Child
	pid      int
	done     chan struct{} // closed once the child was reaped, or Start failed
	code     int
	err      error // what Join reports
	result   any
	haveRes  bool
	cg       *cgroup.Group // the child's cgroup (Limits), removed once it was reaped
	crash    *os.File      // the child's crash report file (see isoPayload), closed once it was reaped
	stopped  atomic.Bool   // Terminate or Kill signalled the child
	// daemonEnd: Finish terminated this daemonic child at the end of main.
	daemonEnd atomic.Bool
}

type procState int

const (
	stateNew      procState = iota
	stateStarting           // Start is spawning the child
	stateStarted            // the child ran (it may have exited since)
	stateFailed             // Start failed; the process is finished
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
	p := &Process{Name: defaultName(), done: make(chan struct{}), argWhat: "argument"}
	if p.argErr = f.check(); p.argErr != nil {
		return p
	}
	p.funcName = f.e.Name
	// The argument is encoded straight after the target's name, and the
	// payload goes to the child from this buffer: a large argument is not
	// copied again on its way.
	head := wire.AppendString([]byte{targetFunc}, f.e.Name)
	payload, err := wire.AppendOut(f.in, head, arg, &p.res)
	p.argLen = len(payload) - len(head)
	if err == nil {
		payload, err = p.finishArg(payload)
	}
	if err != nil {
		p.argErr = fmt.Errorf("multiproc: argument of %q: %w", f.e.Name, err)
		return p
	}
	p.payload = payload
	p.decode = func(b []byte, in wire.Incoming) (any, error) { return wire.DecodeIn(f.out, b, in) }
	return p
}

// NewProcessOf returns an unstarted process that runs r.Run in a child: the
// subclass form. r must be a pointer to a struct type registered with
// [RegisterProcess]; its exported fields travel to the child, and after a
// successful Join they hold the values Run left in them (Python cannot do
// that). Do not touch *r between Start and Join. A resource field (a file,
// a listener, shared memory) comes back as a new object, the child's copy,
// which the caller then owns: keep your own reference to the original if
// you need to close it.
func NewProcessOf(r Runner) *Process {
	p := &Process{Name: defaultName(), done: make(chan struct{}), runner: r, argWhat: "fields"}
	t, err := registry.TypeOf(r)
	if err != nil {
		p.argErr = err
		return p
	}
	p.rtype, p.funcName = t, t.Name
	head := wire.AppendString([]byte{targetType}, t.Name)
	payload, err := t.Encode(head, r, &p.res)
	p.argLen = len(payload) - len(head)
	if err == nil {
		payload, err = p.finishArg(payload)
	}
	if err != nil {
		p.argErr = fmt.Errorf("multiproc: fields of %q: %w", t.Name, err)
		return p
	}
	p.payload = payload
	return p
}

// Start starts the child and returns once it has completed its handshake
// (it runs the same build and is about to run the target).
//
// Start honours ctx in every phase: queued behind other starts, writing the
// argument to the child (which streams a large argument while the child
// reads it), and waiting for the handshake. If ctx ends first, Start kills
// and reaps the child and returns an error wrapping ctx.Err().
//
// Start fails with [ErrNoMain] if Main was not called; the argument's
// encoding error; an error matching ErrTooLarge if the argument is over
// MaxMessageSize, or an error if MaxMessageSize is invalid (both before
// anything is started); [ErrHandshake] or [ErrBuildMismatch] when the child
// could not start. A Start that failed leaves the Process finished, never
// to run: [Process.Exited] is closed, Join and [Result] return errors
// matching [ErrNotStarted] that wrap Start's error, and a later Start
// returns an error matching [ErrAlreadyStarted] that wraps it too. A
// second Start of a started process returns ErrAlreadyStarted, and Start
// after Close [ErrClosed].
func (p *Process) Start(ctx context.Context) error {
	if ctx == nil {
		panic("multiproc: Process.Start with a nil context")
	}
	if p.done == nil {
		panic("multiproc: Process.Start of a Process not made by NewProcess or NewProcessOf")
	}
	p.mu.Lock()
	switch p.state {
	case stateClosed:
		p.mu.Unlock()
		return ErrClosed
	case stateFailed:
		err := p.startErr
		p.mu.Unlock()
		return fmt.Errorf("%w: an earlier Start of %s failed: %w", ErrAlreadyStarted, p.Name, err)
	case stateNew:
	default:
		p.mu.Unlock()
		return ErrAlreadyStarted
	}
	p.state, p.begun = stateStarting, true
	p.mu.Unlock()

	c, err := p.spawn(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.state, p.startErr = stateFailed, err
		close(p.done)
		return err
	}
	p.state, p.child, p.pid = stateStarted, c, c.Pid()
	children.Lock()
	children.set[p] = struct{}{}
	children.Unlock()
	go p.wait(c)
	return nil
}

// spawn checks what can be checked without a child, then starts it.
func (p *Process) spawn(ctx context.Context) (*boot.Child, error) {
	if p.argErr != nil {
		return nil, p.argErr
	}
	limit, err := boot.MessageLimit(p.MaxMessageSize)
	if err != nil {
		return nil, err
	}
	if p.argLen > limit {
		return nil, &errs.TooLargeError{What: p.argWhat, Func: p.funcName, Size: int64(p.argLen), Limit: int64(limit)}
	}
	payload, g, crash, err := p.isoPayload()
	if err != nil {
		return nil, err
	}
	c, err := spawnIn(ctx, boot.Config{Role: "process", Name: p.Name, Daemon: p.Daemon, Payload: payload, MaxMessageSize: limit, Files: append(wire.AllFiles(p.res.Res), crash)}, g)
	// The child has its own copies now (or never will).
	p.res.Finish(err == nil)
	if err != nil {
		crash.Close()
		if g != nil {
			g.Remove()
		}
		return nil, err
	}
	p.cg, p.crash = g, crash // read by wait, which starts after Start stored the child
	return c, nil
}

// finishArg appends the argument's resource table to the start payload
// and makes the table own its descriptors, so that the caller may close
// its resources before Start.
func (p *Process) finishArg(payload []byte) ([]byte, error) {
	if err := p.res.Own(); err != nil {
		return nil, fmt.Errorf("passing its resources: %w", err)
	}
	return wire.AppendTrailer(payload, p.res.Res), nil
}

// wait collects the child's result frame, then reaps it.
func (p *Process) wait(c *boot.Child) {
	var (
		result  any
		haveRes bool
		failure error
		readErr error
	)
	// Error reports may use at least minReportLimit, so that a small
	// MaxMessageSize still lets the child say why it failed.
	limit, _ := boot.MessageLimit(p.MaxMessageSize) // checked by Start
	c.Reader.SetLimit(reportLimit(limit) + tableSlack)
	// The result may hold resources: their descriptors come with it.
	c.Reader.ReceiveFiles(c.Conn)
	defer c.Reader.CloseFiles()
	for {
		kind, payload, err := c.Reader.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		switch kind {
		case kindValue:
			var (
				in  *wire.Files
				val []byte
			)
			if val, in, failure = wire.SplitTrailer(payload, c.Reader.Files()); failure == nil {
				if len(val) > limit {
					// The child checks its result before sending; this only
					// keeps the limit exact should it not have.
					failure = &errs.TooLargeError{What: "result", Func: p.funcName, Size: int64(len(val)), Limit: int64(limit)}
				} else if p.rtype != nil {
					failure = p.rtype.Decode(val, p.runner, in)
				} else if p.decode != nil {
					result, failure = p.decode(val, in)
				}
				in.Close()
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
	// Closing the socket also ends a child blocked writing a frame the
	// reader refused.
	c.Conn.Close()
	c.Cmd.Wait()
	code, sig := exitStatus(c.Cmd.ProcessState)
	var err error
	switch {
	case failure != nil:
		err = failure
	case errors.Is(readErr, errs.ErrTooLarge) || errors.Is(readErr, wire.ErrCorrupt):
		// What the child sent is the failure, whatever its exit code.
		err = fmt.Errorf("multiproc: reading the result of %s (pid %d): %w", p.Name, p.pid, readErr)
	case code != 0:
		ps := c.Cmd.ProcessState
		err = p.deathError(code, sig, ps.UserTime()+ps.SystemTime())
	case readErr != nil:
		err = fmt.Errorf("multiproc: reading the result of %s (pid %d): %w", p.Name, p.pid, readErr)
	}
	if p.cg != nil {
		p.cg.Remove()
	}
	p.crash.Close()
	p.mu.Lock()
	p.code, p.err, p.result, p.haveRes = code, err, result, haveRes
	p.mu.Unlock()
	children.Lock()
	delete(children.set, p)
	children.Unlock()
	close(p.done)
}

// Exited returns a channel that is closed once the child has exited and
// been reaped, or once Start failed: Python's Process.sentinel. It is nil
// before Start (a nil channel never becomes ready in a select), and the
// same channel on every call after. Once it is closed, Join returns at once
// and ExitCode reports the exit (ok is false if Start failed). It lets a
// program wait for the first of many processes, or for a process and a
// context:
//
//	select {
//	case <-p.Exited():
//	case <-q.Exited():
//	case <-ctx.Done():
//	}
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.begun {
		return nil
	}
	return p.done
}

// Join waits for the process to exit. It returns nil if the child exited
// with code 0; the target's error or panic as a [*RemoteError] (exit code
// 1); or an [*ExitError] for any other exit (a signal, os.Exit). If ctx ends
// first Join returns an error wrapping ctx.Err() and the process runs on,
// like Python's join(timeout). Join before Start returns [ErrNotStarted];
// Join while Start runs waits for the outcome; after a failed Start Join
// returns an error matching ErrNotStarted that wraps Start's error.
func (p *Process) Join(ctx context.Context) error {
	p.mu.Lock()
	begun := p.begun
	p.mu.Unlock()
	if !begun {
		return ErrNotStarted
	}
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.startErr != nil {
			return p.notStartedLocked()
		}
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("multiproc: join %s (pid %d): %w", p.Name, p.Pid(), ctx.Err())
	}
}

// notStartedLocked is the error of a process whose Start failed.
func (p *Process) notStartedLocked() error {
	return fmt.Errorf("%w: Start of %s failed: %w", ErrNotStarted, p.Name, p.startErr)
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
// ok is false while the process has not been started or not been reaped,
// and after a failed Start (no child ran).
func (p *Process) ExitCode() (code int, ok bool) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.startErr != nil {
			return 0, false
		}
		return p.code, true
	default:
		return 0, false
	}
}

// Terminate sends SIGTERM to the child (Python's terminate). It is a no-op
// if the child already exited, and idempotent. It returns [ErrNotStarted]
// before Start, while Start runs and after a failed Start, and [ErrClosed]
// after Close.
func (p *Process) Terminate() error { return p.signal(termSignal) }

// Kill sends SIGKILL to the child (Python's kill). It is a no-op if the
// child already exited, and idempotent. It returns errors as Terminate does.
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
	// Its death is then the parent's doing, not "from outside".
	p.stopped.Store(true)
	// os.Process signals through a pidfd, so a recycled pid can never be hit.
	if err := c.Cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("multiproc: signalling %s (pid %d): %w", p.Name, p.pid, err)
	}
	return nil
}

// Close releases the Process. It fails with [ErrStillRunning] while Start
// runs or the child is running; afterwards other methods return [ErrClosed]
// (Join and ExitCode still report the outcome).
func (p *Process) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.state {
	case stateStarting:
		return ErrStillRunning
	case stateStarted:
		select {
		case <-p.done:
		default:
			return ErrStillRunning
		}
	}
	p.state = stateClosed
	p.res.Close() // never started: the argument's descriptors go
	return nil
}

// Result returns the value the target of p returned, once p has exited. It
// returns:
//   - [ErrNotStarted] before Start, and an error matching ErrNotStarted
//     (wrapping Start's error) after a failed Start;
//   - [ErrStillRunning] while Start runs or the child is running;
//   - the error Join returns, if the process failed (a [*RemoteError], an
//     [*ExitError]...);
//   - an error wrapping ErrResultType if Out is not the function's result
//     type, or p was made by NewProcessOf (its fields are the result);
//   - an error saying the child exited without a result, if it exited with
//     code 0 before its target returned (the target called os.Exit(0)).
//
// Result does not wait: use Join or Exited first.
func Result[Out any](p *Process) (Out, error) {
	var zero Out
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.begun {
		return zero, ErrNotStarted
	}
	select {
	case <-p.done:
	default:
		return zero, ErrStillRunning
	}
	if p.startErr != nil {
		return zero, p.notStartedLocked()
	}
	if p.err != nil {
		return zero, p.err
	}
	if p.rtype != nil {
		return zero, fmt.Errorf("%w: %q is a process type: Run's results are in its fields", errs.ErrResultType, p.funcName)
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
	kind, name := d.Byte(), d.String()
	files := s.Files()
	if kind&targetLimits != 0 {
		kind &^= targetLimits
		var crash *os.File
		files, crash = takeCrashFile(files)
		if err := applyProcessLimits(d, crash); err != nil {
			s.Conn.Write(appendErrorFrame(nil, name, fmt.Errorf("multiproc: applying the process's limits: %w", err), s.Start.MaxMessageSize))
			return 1
		}
	}
	arg, in, err := wire.SplitTrailer(d.Rest(), files)
	if d.Err() != nil || err != nil {
		// Said in an error frame, so that the parent does not take the
		// exit for user code's os.Exit (a Process keeps no exit record).
		err = fmt.Errorf("multiproc: child %d: bad target: %w", os.Getpid(), errors.Join(d.Err(), err))
		s.Conn.Write(appendErrorFrame(nil, name, err, s.Start.MaxMessageSize))
		return 2
	}
	limit := s.Start.MaxMessageSize
	// The argument's resources are the target's; those of its result go
	// back with the result frame.
	var out wire.Outgoing
	ctx := wire.WithResources(context.Background(), in, &out)
	buf, off := wire.BeginFrame(make([]byte, 0, 256), kindValue)
	what := "result"
	returned := false
	defer func() {
		if !returned {
			// Panics are recovered in Call and Run, so the target called
			// runtime.Goexit on this, the main, goroutine: the program would
			// live on without ever answering. Report it and exit.
			s.Conn.Write(appendErrorFrame(nil, name, errors.New("multiproc: the target called runtime.Goexit"), limit))
			os.Exit(1)
		}
	}()
	switch kind {
	case targetFunc:
		var e *registry.Entry
		if e, err = registry.Lookup(name); err == nil {
			buf, err = e.Call(ctx, arg, buf)
		}
	case targetType:
		what = "fields after Run"
		var t *registry.Type
		if t, err = registry.LookupType(name); err == nil {
			buf, err = t.Run(ctx, arg, buf)
		}
	default:
		err = fmt.Errorf("multiproc: unknown target kind %q", kind)
	}
	returned = true
	in.Close() // what the target did not take
	var fds []int
	if size := len(buf) - off - wire.HeaderSize; err == nil && size > limit {
		// Caught here, before sending: the parent's reader would refuse
		// the frame, and the child would look as if it had succeeded.
		err = &errs.TooLargeError{What: what, Func: name, Size: int64(size), Limit: int64(limit)}
	}
	if err == nil {
		buf, fds, err = appendResultTable(buf, off, &out)
	}
	if err == nil && wire.EndFrame(buf, off, limit+tableSlack) != nil {
		err = &errs.TooLargeError{What: what + " with its resource table", Func: name, Size: int64(len(buf) - off - wire.HeaderSize), Limit: int64(limit + tableSlack)}
	}
	if err != nil {
		buf, fds = appendErrorFrame(buf[:0], name, err, reportLimit(limit)), nil
	}
	var werr error
	if len(fds) > 0 {
		werr = wire.WriteFiles(s.Conn, buf, []wire.Attach{{At: off, Fds: fds}})
	} else {
		_, werr = s.Conn.Write(buf)
	}
	out.Finish(err == nil && werr == nil) // the result, with its table, went to the parent
	Finish()
	if err != nil {
		return 1
	}
	return 0
}

// appendResultTable ends the result frame begun at off with its resource
// table, and returns the descriptors to send with it. A frame with
// descriptors declares their count before its payload, so the value is
// moved once to make room: only results that hold resources pay for it.
func appendResultTable(buf []byte, off int, out *wire.Outgoing) ([]byte, []int, error) {
	buf = wire.AppendTrailer(buf, out.Res)
	if out.Files() == 0 {
		return buf, nil, nil
	}
	fds, err := wire.Descriptors(out.Res)
	if err != nil {
		return buf, nil, fmt.Errorf("multiproc: passing the result's resources: %w", err)
	}
	count := binary.AppendUvarint(nil, uint64(len(fds)))
	body := off + wire.HeaderSize
	buf = slices.Insert(buf, body, count...)
	buf[body-1] |= wire.FlagFiles
	return buf, fds, nil
}

// tableSlack is the room a result frame has beyond MaxMessageSize for its
// resource table: the limit bounds the value, not the table.
const tableSlack = 64 << 10

// minReportLimit is the least room an error report has, whatever
// MaxMessageSize says: a report is a few hundred bytes, more with a panic
// stack, and a limit below that must not turn a child's failure into an
// unreadable frame (and the child into one that looks killed by its
// parent's hang-up).
const minReportLimit = 64 << 10

// reportLimit is the limit of an error report under a MaxMessageSize of
// limit; parent and child agree on it.
func reportLimit(limit int) int { return max(limit, minReportLimit) }

// appendErrorFrame appends the error frame of err, the failure of target
// name. A report over limit (a huge message or panic stack) is replaced by
// one that says so and keeps the error's sentinels; should even that be
// over the limit, it is sent anyway, and the parent's reader refuses it
// with an error that matches ErrTooLarge too. Either way the parent learns
// of a failure: no frame is ever dropped.
func appendErrorFrame(dst []byte, name string, err error, limit int) []byte {
	buf, off := wire.BeginFrame(dst, kindError)
	buf = registry.AppendFailure(buf, name, err)
	if wire.EndFrame(buf, off, limit) == nil {
		return buf
	}
	tl := &errs.TooLargeError{What: "error report", Func: name, Size: int64(len(buf) - off - wire.HeaderSize), Limit: int64(limit)}
	// Not AppendFailure: it would find the panic inside the cut error
	// and send its whole stack again.
	var pe *registry.PanicError
	panicked := errors.As(err, &pe)
	buf, off = wire.BeginFrame(buf[:off], kindError)
	buf = errs.AppendError(buf, name, os.Getpid(), &cutError{tl, err}, panicked, "")
	if wire.EndFrame(buf, off, limit) != nil {
		wire.EndFrame(buf, off, 0) // a few hundred bytes: always fits a header
	}
	return buf
}

// cutError is an error report cut down to fit MaxMessageSize: why it was
// cut and the beginning of the original message. It matches what both
// errors match.
type cutError struct {
	tooLarge *errs.TooLargeError
	err      error
}

// cutMessage is how much of the original message a cutError keeps.
const cutMessage = 512

func (e *cutError) Error() string {
	msg := e.err.Error()
	if len(msg) > cutMessage {
		msg = msg[:cutMessage] + "…"
	}
	return e.tooLarge.Error() + "; it began: " + msg
}

func (e *cutError) Unwrap() []error { return []error{e.tooLarge, e.err} }
