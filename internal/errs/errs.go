// Package errs defines the error values and types that cross process
// boundaries, and the envelope that carries them (envelope.go): a remote
// error's function, pid, type, message and stack, the keys of the
// registered sentinels it matched, and the encodings of the registered
// error types in its chain (typed.go). Internal packages produce these
// errors without importing the root; the root re-exports the sentinels
// and defines the public ExitError and RemoteError, bridged to the types
// here by [SetPublic].
//
// It does not choose codecs (registered types bring their own encode and
// decode functions) and does not check when registration happens: the
// root and the registry enforce "before Main".
package errs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"syscall"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// Sentinel errors, each registered for crossing process boundaries (see
// init). The root package re-exports them and documents when each is
// returned.
var (
	// ErrNoMain: a process was started before Main ran (or from code that runs
	// before Main in a child).
	ErrNoMain = errors.New("multiproc: multiproc.Main() was not called: add `multiproc.Main()` as the first line of main() (and of TestMain in tests) so that re-executed children can serve their role")
	// ErrNotRegistered: a name (function, process type) is not registered in
	// this process.
	ErrNotRegistered = errors.New("multiproc: function not registered")
	// ErrDuplicate: a name or type was registered twice.
	ErrDuplicate = errors.New("multiproc: duplicate registration")
	// ErrLateRegistration: a registration came after Main froze the registry.
	ErrLateRegistration = errors.New("multiproc: registration after multiproc.Main")
	// ErrBuildMismatch: a child or remote worker runs another build of the
	// program.
	ErrBuildMismatch = errors.New("multiproc: peer runs a different build of this program")
	// ErrHandshake: a child exited or stayed silent before completing its
	// start-up handshake.
	ErrHandshake = errors.New("multiproc: child failed its start-up handshake")
	// ErrNotStarted: the process was never started.
	ErrNotStarted = errors.New("multiproc: process not started")
	// ErrAlreadyStarted: Start was called a second time.
	ErrAlreadyStarted = errors.New("multiproc: process already started")
	// ErrClosed: the process was closed.
	ErrClosed = errors.New("multiproc: closed")
	// ErrStillRunning: the operation needs a process that has ended.
	ErrStillRunning = errors.New("multiproc: process still running")
	// ErrDaemonChildren: a daemonic process tried to start a child.
	ErrDaemonChildren = errors.New("multiproc: daemonic processes are not allowed to have children")
	// ErrWorkerDied: a task's worker died while running it; an *ExitError with
	// Worker set matches it.
	ErrWorkerDied = errors.New("multiproc: worker died")
	// ErrTimeout: a task ran longer than its limit.
	ErrTimeout = errors.New("multiproc: task timed out")
	// ErrPoolClosed: work was submitted to a closed pool (or the pool was
	// terminated).
	ErrPoolClosed = errors.New("multiproc: pool closed")
	// ErrPoolBroken: the pool cannot keep workers alive; it wraps the cause.
	ErrPoolBroken = errors.New("multiproc: pool broken")
	// ErrResultType: a result was asked for as another type than the function
	// returns.
	ErrResultType = errors.New("multiproc: result of another type")

	// ErrTooLarge is one value for every size limit in the project: a frame
	// over a reader's limit, an argument or result over MaxMessageSize, an
	// item over a queue's capacity. It is wire's frame error itself, since
	// wire sits below this package.
	ErrTooLarge = wire.ErrFrameTooLarge
	// ErrNotTransferable: a value needs descriptors (a resource) and the
	// engine or transport cannot carry them (wire's sentinel, like
	// ErrTooLarge).
	ErrNotTransferable = wire.ErrNoTransport
	// ErrOwnerDead: a lock's holder died while holding it.
	ErrOwnerDead = errors.New("multiproc: owner died")
	// ErrFDLimit: a process ran out of file descriptors (EMFILE).
	ErrFDLimit = errors.New("multiproc: file descriptor limit reached")

	// Why a worker died: an ExitError whose Cause is set matches one.
	ErrOutOfMemory    = errors.New("multiproc: out of memory")
	ErrCPULimit       = errors.New("multiproc: CPU time limit exceeded")
	ErrKilled         = errors.New("multiproc: killed by a signal")
	ErrExit           = errors.New("multiproc: exited from user code")
	ErrFatal          = errors.New("multiproc: Go runtime fatal error")
	ErrGoroutinePanic = errors.New("multiproc: panic in a goroutine")
	ErrCgoFault       = errors.New("multiproc: fault in cgo code")
	ErrProcessLimit   = errors.New("multiproc: process/thread limit reached")
)

// DeathCause says why a process died, as far as its parent could tell.
type DeathCause uint8

// The causes, each matching its sentinel (see [DeathCause.Err]).
const (
	CauseUnknown        DeathCause = iota // nothing more is known
	CauseOutOfMemory                      // its cgroup's OOM counter rose, or the runtime printed "runtime: out of memory"
	CauseCPULimit                         // it crossed its CPU time limit
	CauseKilled                           // a signal from outside killed it (a bare SIGKILL included)
	CauseExit                             // user code called os.Exit
	CauseFatal                            // the Go runtime's fatal error (a fault, a concurrent map write...)
	CauseGoroutinePanic                   // an unrecovered panic in a goroutine a task started
	CauseCgoFault                         // a signal while running C code through cgo
	CauseProcessLimit                     // the runtime could not create a thread: its cgroup's pids.max (Limits.Processes), or another task limit
	numCauses
)

var causeErrs = [numCauses]error{nil, ErrOutOfMemory, ErrCPULimit, ErrKilled, ErrExit, ErrFatal, ErrGoroutinePanic, ErrCgoFault, ErrProcessLimit}

var causeNames = [numCauses]string{"unknown", "out of memory", "CPU time limit", "killed by a signal", "os.Exit", "Go runtime fatal error", "panic in a goroutine", "fault in cgo", "process/thread limit"}

// Err is the sentinel the cause matches, nil for CauseUnknown.
func (c DeathCause) Err() error {
	if c < numCauses {
		return causeErrs[c]
	}
	return nil
}

// String names the cause.
func (c DeathCause) String() string {
	if c < numCauses {
		return causeNames[c]
	}
	return fmt.Sprintf("DeathCause(%d)", uint8(c))
}

// TooLargeError reports a value over a size limit; it matches ErrTooLarge.
type TooLargeError struct {
	What  string // "argument", "result", "fields", "item"...
	Func  string // registered name of the function or type, if any
	Size  int64  // bytes the value needed
	Limit int64  // the limit it exceeded
}

// Error names what was too large, its size and the limit.
func (e *TooLargeError) Error() string {
	of := ""
	if e.Func != "" {
		of = fmt.Sprintf(" of %q", e.Func)
	}
	if e.What == "descriptors" {
		// Not a size MaxMessageSize sets: a frame's descriptor count.
		return fmt.Sprintf("multiproc: the descriptors%s are %d, over the %d a task frame carries (pass fewer resources per task, or a smaller Chunksize)", of, e.Size, e.Limit)
	}
	return fmt.Sprintf("multiproc: %s%s is %d bytes, over the %d-byte limit (see MaxMessageSize)", e.What, of, e.Size, e.Limit)
}

// Is makes a TooLargeError match ErrTooLarge.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// As lets errors.As fill the root package's public type from this one
// (see [SetPublic]).
func (e *TooLargeError) As(target any) bool { return public.as != nil && public.as(e, target) }

// ExitError describes how a child process ended. Code follows Python's
// Process.exitcode: the exit status, or -N when killed by signal N.
type ExitError struct {
	Pid    int
	Code   int
	Signal syscall.Signal // 0 unless killed by a signal
	// Worker is set when the process was a pool worker that died while it
	// held a task; such errors match ErrWorkerDied.
	Worker bool
	// Reason is extra knowledge about the death (an out-of-memory kill, a
	// limit, a recycled worker), empty when nothing more is known.
	Reason string
	// Cause classifies the death; the error matches Cause.Err().
	Cause DeathCause
	// Report is the Go runtime's crash report (its first 64 KiB), when
	// it wrote one.
	Report string
	// Output is the end of what the task printed before the death, when
	// output capture was on.
	Output string
}

// Error says which process ended and how: its exit code or its signal,
// and the Reason if known.
func (e *ExitError) Error() string {
	what := "process"
	if e.Worker {
		what = "worker"
	}
	var how string
	if e.Signal != 0 {
		how = fmt.Sprintf("was killed by signal %d (%v)", int(e.Signal), e.Signal)
	} else {
		how = fmt.Sprintf("exited with code %d", e.Code)
	}
	s := fmt.Sprintf("multiproc: %s %d %s", what, e.Pid, how)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Is makes a worker's ExitError match ErrWorkerDied.
// It also matches the sentinel of its Cause.
func (e *ExitError) Is(target error) bool {
	if target == nil {
		return false
	}
	return (target == ErrWorkerDied && e.Worker) || target == e.Cause.Err()
}

// RemoteError is an error or panic that happened in another process, as
// decoded from its envelope ([DecodeError]). It is the internal carrier:
// users see multiproc.RemoteError, which has the same exported fields and
// which errors.As fills from a RemoteError through [RemoteError.As]. Both
// report the same Error text and unwrap to the same errors.
type RemoteError struct {
	Func    string // registered name of the function that failed, if known
	Pid     int    // process it failed in
	Type    string // Go type of the remote error value, or "panic"
	Message string
	// Stack is the remote goroutine's stack at the panic; empty for errors
	// returned normally (the stack would only show the invoker).
	Stack string
	Panic bool
	// Output is the end of what the task printed, when the pool captured
	// task output (see multiproc.CaptureOutput); empty otherwise.
	Output string
	keys   []string        // sentinel keys, passed on by a middle process
	errnos []syscall.Errno // errnos of the chain, passed on by a middle process
	typed  []typedEntry    // typed-error section, passed on as received
	local  []error         // this process's sentinels and decoded typed errors
}

// Error is [FormatRemote] of the remote error's fields.
func (e *RemoteError) Error() string {
	return FormatRemote(e.Func, e.Pid, e.Type, e.Message, e.Panic)
}

// FormatRemote is the text of a remote error: the function and pid, then,
// like a Python traceback's last line, the remote type (unless it says
// nothing, as for errors.New or fmt.Errorf) and the message.
func FormatRemote(fn string, pid int, typ, msg string, panicked bool) string {
	where := fmt.Sprintf("pid %d", pid)
	if fn != "" {
		where = fmt.Sprintf("%q in pid %d", fn, pid)
	}
	if panicked {
		return fmt.Sprintf("multiproc: panic in %s: %s", where, msg)
	}
	switch typ {
	case "", "*errors.errorString", "*fmt.wrapError", "*fmt.wrapErrors", "*errors.joinError",
		"*errs.TooLargeError": // the worker's own size check: its message says it all
		return fmt.Sprintf("multiproc: %s: %s", where, msg)
	}
	return fmt.Sprintf("multiproc: %s: %s: %s", where, typ, msg)
}

// Unwrap returns the registered sentinel errors the remote error matched
// with errors.Is in its own process, then the values of registered error
// types ([RegisterType]) found in its chain there, so errors.Is and
// errors.As work across the boundary.
func (e *RemoteError) Unwrap() []error { return e.local }

// As lets errors.As fill the root package's public types from the
// internal ones (see [SetPublic]).
func (e *RemoteError) As(target any) bool { return public.as != nil && public.as(e, target) }

// As lets errors.As fill the root package's public types from the
// internal ones (see [SetPublic]).
func (e *ExitError) As(target any) bool { return public.as != nil && public.as(e, target) }

// public holds the root package's hooks. They are set once, during the
// root's initialisation, before any error exists, and only read after.
var public struct {
	as       func(err error, target any) bool
	recordOf func(err error) *RemoteError
}

// SetPublic installs the root package's bridge to its exported error
// types, which this package cannot import: as fills target (a pointer to
// a root type) from err (a *RemoteError, *ExitError or *TooLargeError of
// this package) and
// reports whether it did; recordOf returns the *RemoteError a root
// RemoteError stands for, or nil for any other error, so that a middle
// process passes a grandchild's failure on unchanged whichever of the two
// types it holds. Call it from an init function, before any error exists.
func SetPublic(as func(err error, target any) bool, recordOf func(err error) *RemoteError) {
	public.as, public.recordOf = as, recordOf
}

// Clone returns a copy of e that shares nothing mutable with e.
func (e *RemoteError) Clone() *RemoteError {
	c := *e
	c.keys = slices.Clone(e.keys)
	c.typed = slices.Clone(e.typed)
	c.local = slices.Clone(e.local)
	c.errnos = slices.Clone(e.errnos)
	return &c
}

var sentinels = struct {
	sync.RWMutex
	byKey  map[string]error
	keys   map[error]string
	counts map[string]int
	list   []error
}{byKey: map[string]error{}, keys: map[error]string{}, counts: map[string]int{}}

// RegisterSentinel makes err recognisable across process boundaries. Keys
// are the message plus the message's registration rank: registration runs in
// package initialisation, identical in every process of one binary.
func RegisterSentinel(err error) error {
	if err == nil {
		panic("multiproc: RegisterError(nil)")
	}
	sentinels.Lock()
	defer sentinels.Unlock()
	if _, ok := sentinels.keys[err]; ok {
		return err
	}
	msg := err.Error()
	key := fmt.Sprintf("%s#%d", msg, sentinels.counts[msg])
	sentinels.counts[msg]++
	sentinels.byKey[key] = err
	sentinels.keys[err] = key
	sentinels.list = append(sentinels.list, err)
	return err
}

func init() {
	for _, e := range []error{
		context.Canceled, context.DeadlineExceeded, io.EOF, io.ErrUnexpectedEOF,
		os.ErrNotExist, os.ErrExist, os.ErrPermission, os.ErrClosed, os.ErrDeadlineExceeded,
		errors.ErrUnsupported,
		ErrNoMain, ErrNotRegistered, ErrDuplicate, ErrLateRegistration, ErrBuildMismatch, ErrHandshake,
		ErrNotStarted, ErrAlreadyStarted, ErrClosed, ErrStillRunning, ErrDaemonChildren,
		ErrWorkerDied, ErrTimeout, ErrPoolClosed, ErrPoolBroken, ErrResultType,
		ErrTooLarge, ErrNotTransferable, ErrOwnerDead, ErrFDLimit,
		ErrOutOfMemory, ErrCPULimit, ErrKilled, ErrExit, ErrFatal, ErrGoroutinePanic, ErrCgoFault,
		ErrProcessLimit,
	} {
		RegisterSentinel(e)
	}
}
