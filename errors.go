package multiproc

import (
	"fmt"
	"reflect"
	"syscall"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/registry"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Errors returned by this package. Test for them with errors.Is; they keep
// matching after crossing a process boundary inside a [*RemoteError].
var (
	// ErrNoMain is returned when a process is started but Main was not
	// called first in this process (or, in a re-executed child, has not been
	// reached yet: that is how a fork bomb is made impossible). Its message
	// names the line to add.
	ErrNoMain = errs.ErrNoMain
	// ErrNotRegistered is returned when a process is asked to run a
	// function or process type that it has not registered (registration
	// that depends on run-time state, or a zero Func).
	ErrNotRegistered = errs.ErrNotRegistered
	// ErrDuplicate is the panic value's cause when a name is registered twice.
	ErrDuplicate = errs.ErrDuplicate
	// ErrLateRegistration is the panic value's cause when Register is
	// called after Main: a child could not have made the same registration.
	ErrLateRegistration = errs.ErrLateRegistration
	// ErrBuildMismatch is returned when a child or remote worker runs a
	// different build of the program than its parent.
	ErrBuildMismatch = errs.ErrBuildMismatch
	// ErrHandshake is returned when a child exits or stays silent before
	// completing its start-up handshake (most often: its main does not call
	// Main first).
	ErrHandshake = errs.ErrHandshake
	// ErrNotStarted is returned by methods that need a started process;
	// after a failed Start, Join and Result return it wrapping Start's error.
	ErrNotStarted = errs.ErrNotStarted
	// ErrAlreadyStarted is returned by a second Process.Start, including
	// after a failed one (a failed Start is final), wrapping its error.
	ErrAlreadyStarted = errs.ErrAlreadyStarted
	// ErrClosed is returned by methods of a closed Process.
	ErrClosed = errs.ErrClosed
	// ErrStillRunning is returned by Process.Close and Result while the
	// process is running.
	ErrStillRunning = errs.ErrStillRunning
	// ErrDaemonChildren is returned when a daemonic process starts a
	// process, which Python forbids too: its children would be orphaned
	// when it is terminated.
	ErrDaemonChildren = errs.ErrDaemonChildren
	// ErrWorkerDied matches the error of a task whose worker process died
	// while running it; errors.As to [*ExitError] gives the exit status.
	ErrWorkerDied = errs.ErrWorkerDied
	// ErrTimeout matches the error of a task that exceeded its timeout; its
	// worker was stopped and replaced.
	ErrTimeout = errs.ErrTimeout
	// ErrPoolClosed is returned when work is submitted to a closed pool.
	ErrPoolClosed = errs.ErrPoolClosed
	// ErrPoolBroken matches the error of work that could not run because the
	// pool cannot keep workers alive (a failing initializer, a crash loop);
	// it wraps the cause.
	ErrPoolBroken = errs.ErrPoolBroken
	// ErrResultType is returned by [Result] when the process's function
	// returns another type than the one asked for.
	ErrResultType = errs.ErrResultType
	// ErrTooLarge matches every error about a size limit: an argument or a
	// result over [MaxMessageSize] (or a Process's MaxMessageSize), a frame
	// over a reader's limit. It is one value wherever it is reported;
	// errors that carry the sizes are [*TooLargeError].
	ErrTooLarge = errs.ErrTooLarge
	// ErrNotTransferable matches the error of an argument that holds a
	// resource (descriptors, shared memory) given to a backend that cannot
	// carry descriptors, such as a cluster.
	ErrNotTransferable = errs.ErrNotTransferable
	// ErrOwnerDead is returned by a lock whose holder died while holding
	// it; the caller now holds the lock and must repair what it guards.
	ErrOwnerDead = errs.ErrOwnerDead
	// ErrFDLimit matches failures caused by a process running out of file
	// descriptors (EMFILE): a task error wrapping syscall.EMFILE matches
	// it (and syscall.EMFILE) after crossing to the caller, and a pool
	// that cannot duplicate a task's descriptors reports it. Running out
	// of descriptors is a task's failure, not a death: the worker lives
	// on (see [Limits].OpenFiles).
	ErrFDLimit = errs.ErrFDLimit

	// The errors below say why a worker died. A task's error that matches
	// [ErrWorkerDied] matches one of them too when the pool could tell
	// (errors.As to [*ExitError] gives the details: Cause, Code, Signal,
	// Report).

	// ErrOutOfMemory: the worker's cgroup counted an OOM kill (a
	// [Limits].Memory cap), or the Go runtime reported "runtime: out of
	// memory". A bare SIGKILL is [ErrKilled], never this.
	ErrOutOfMemory = errs.ErrOutOfMemory
	// ErrCPULimit: the task used more than [Limits].CPUTime of CPU, or
	// the worker reached [Limits].CPUTimeTotal.
	ErrCPULimit = errs.ErrCPULimit
	// ErrKilled: a signal from outside the pool killed the worker
	// ([ExitError].Signal says which).
	ErrKilled = errs.ErrKilled
	// ErrExit: user code called os.Exit ([ExitError].Code is its
	// argument, exactly: the worker's own exits are recorded apart).
	ErrExit = errs.ErrExit
	// ErrFatal: the Go runtime died of a fatal error (a fault such as a
	// write to an unmapped address, a concurrent map write, a deadlock);
	// [ExitError].Report holds its crash report.
	ErrFatal = errs.ErrFatal
	// ErrGoroutinePanic: a goroutine the task started panicked and did
	// not recover (a task's own panic is recovered and returned as a
	// [*RemoteError] instead); [ExitError].Report holds the trace.
	ErrGoroutinePanic = errs.ErrGoroutinePanic
	// ErrCgoFault: a signal (SIGSEGV, SIGBUS...) arrived while the worker
	// ran C code through cgo; [ExitError].Report holds the crash report.
	ErrCgoFault = errs.ErrCgoFault
	// ErrProcessLimit: the Go runtime could not create a thread because
	// the worker reached its process/thread limit ([Limits].Processes,
	// the cgroup's pids.max, which counts threads), and died: with cgo,
	// of SIGABRT after "runtime/cgo: pthread_create failed"; without, of
	// "fatal error: newosproc". Known from the cgroup's pids.events
	// counter or the crash report. A fork that fails under the limit is
	// not a death: the task gets EAGAIN.
	ErrProcessLimit = errs.ErrProcessLimit
)

// DeathCause classifies a worker's death ([ExitError].Cause). Its String
// names it; test for a cause with errors.Is and the sentinels above
// ([ErrOutOfMemory], [ErrCPULimit], [ErrKilled], [ErrExit], [ErrFatal],
// [ErrGoroutinePanic], [ErrCgoFault], [ErrProcessLimit]); the zero value
// means unknown.
type DeathCause = errs.DeathCause

// The error types below are defined here, so that their fields and docs
// are this package's, but the internal packages (core, boot, errs) that
// detect deaths and decode envelopes cannot import this package. They
// build errs.ExitError and errs.RemoteError instead, whose As methods call
// the bridge installed below: errors.As(err, &target) with a target of
// this package's type finds them anywhere in a chain, however they were
// wrapped (fmt.Errorf("%w: ...: %w", ErrTimeout, exitErr) included). An
// ExitError (or TooLargeError) has exactly the fields of its errs twin,
// so the bridge converts the pointer itself and both name one value; a RemoteError is a
// copy of the decoded one's fields that unwraps to the same errors. Test
// for these types with errors.As, not a type assertion: an error a pool
// returns may be the internal carrier.

func init() {
	// This package's own error types cross processes like the user's
	// registered ones, so that errors.As finds a child's (or grandchild's)
	// *ExitError and *TooLargeError in the parent: the internal twins that
	// the engine builds, and the public types a program may hold itself.
	RegisterErrorType[*errs.ExitError]()
	RegisterErrorType[*errs.TooLargeError]()
	RegisterErrorType[*ExitError]()
	RegisterErrorType[*TooLargeError]()
	errs.SetPublic(toPublic, func(err error) *errs.RemoteError {
		if re, ok := err.(*RemoteError); ok {
			return re.record()
		}
		return nil
	})
}

func toPublic(err error, target any) bool {
	switch e := err.(type) {
	case *errs.ExitError:
		if t, ok := target.(**ExitError); ok {
			*t = (*ExitError)(e)
			return true
		}
	case *errs.TooLargeError:
		if t, ok := target.(**TooLargeError); ok {
			*t = (*TooLargeError)(e)
			return true
		}
	case *errs.RemoteError:
		if t, ok := target.(**RemoteError); ok {
			*t = &RemoteError{Func: e.Func, Pid: e.Pid, Type: e.Type, Message: e.Message, Stack: e.Stack, Panic: e.Panic, Output: e.Output, rec: e}
			return true
		}
	}
	return false
}

// RemoteError is an error returned, or a panic raised, by code running in
// another process. Its Error text names the function, the pid, the remote
// type (unless it is a plain errors.New or fmt.Errorf value) and the
// message. errors.Is matches the sentinel errors the remote error matched
// in its own process, if they are registered with [RegisterError] (the
// standard ones of context, io, io/fs and os, and this package's, always
// are); errors.As finds the values of error types registered with
// [RegisterErrorType] that were in the remote error's chain.
//
// A RemoteError that a process returns unchanged (a nested child's
// failure passed on) reaches its parent as it was: the grandchild's
// function, pid, type, message, stack and errors. Get one with errors.As;
// each call yields a fresh copy of the same fields.
type RemoteError struct {
	// Func is the registered name of the function (or process type) that
	// failed, if known.
	Func string
	// Pid is the process the error happened in.
	Pid int
	// Type is the Go type of the remote error value as fmt's %T prints it
	// ("*main.NotFoundError"), or "panic" for a panic.
	Type string
	// Message is the remote error's Error() text, or the panic value
	// printed with fmt.Sprint.
	Message string
	// Stack is the remote goroutine's stack at a panic; empty for errors
	// returned normally (it would only show the invoker).
	Stack string
	// Panic reports whether the remote code panicked.
	Panic bool
	// Output is the end of what the task printed while it ran, when the
	// pool captures task output ([CaptureOutput]); empty otherwise.
	Output string

	rec *errs.RemoteError // the decoded envelope; nil if built by hand
}

// Error names the function, the pid, the remote type (unless it is a
// plain errors.New or fmt.Errorf value) and the message, or says it was a
// panic.
func (e *RemoteError) Error() string {
	return errs.FormatRemote(e.Func, e.Pid, e.Type, e.Message, e.Panic)
}

// Unwrap returns the registered sentinels the remote error matched and the
// values of registered error types it carried, for errors.Is and errors.As.
func (e *RemoteError) Unwrap() []error {
	if e.rec == nil {
		return nil
	}
	return e.rec.Unwrap()
}

// record is the envelope to pass e on with: the decoded one, with the
// fields as e has them now.
func (e *RemoteError) record() *errs.RemoteError {
	var r *errs.RemoteError
	if e.rec != nil {
		r = e.rec.Clone()
	} else {
		r = new(errs.RemoteError)
	}
	r.Func, r.Pid, r.Type, r.Message, r.Stack, r.Panic, r.Output = e.Func, e.Pid, e.Type, e.Message, e.Stack, e.Panic, e.Output
	return r
}

// ExitError describes a child that ended abnormally (or a pool worker that
// died holding a task). Get one with errors.As; a worker's ExitError also
// matches [ErrWorkerDied].
type ExitError struct {
	// Pid is the process that ended.
	Pid int
	// Code is its exit code in Python's convention: the exit status, or
	// -N when killed by signal N.
	Code int
	// Signal is the signal that killed it, or 0 if it exited.
	Signal syscall.Signal
	// Worker reports that the process was a pool or executor worker that
	// died while it held a task; such errors match ErrWorkerDied.
	Worker bool
	// Reason is extra knowledge about the death (the task it was running,
	// an out-of-memory kill, a limit), empty when nothing more is known.
	Reason string
	// Cause classifies the death; the error also matches its sentinel
	// (ErrOutOfMemory, ErrCPULimit, ErrKilled, ErrExit, ErrFatal,
	// ErrGoroutinePanic, ErrCgoFault, ErrProcessLimit). Zero when unknown.
	Cause DeathCause
	// Report is the Go runtime's crash report (its first 64 KiB) when the
	// worker crashed in Go: a fatal error, an unrecovered panic, a fault
	// in cgo. The runtime also printed it on the worker's stderr.
	Report string
	// Output is the end of what the task printed before the death, when
	// the pool captures task output ([CaptureOutput]).
	Output string
}

// Error says which process (or worker) ended and how: its exit code or
// its signal, and the Reason if known.
func (e *ExitError) Error() string { return (*errs.ExitError)(e).Error() }

// Is makes a worker's ExitError match [ErrWorkerDied], and any ExitError
// the sentinel of its Cause.
func (e *ExitError) Is(target error) bool { return (*errs.ExitError)(e).Is(target) }

// TooLargeError reports a value over a size limit, with the sizes; it
// matches [ErrTooLarge]. Get one with errors.As.
type TooLargeError struct {
	// What was too large: "argument", "result", "item"...
	What string
	// Func is the registered name of the function or type involved, if any.
	Func string
	// Size is the number of bytes the value needed.
	Size int64
	// Limit is the limit it exceeded.
	Limit int64
}

// Error names what was too large, its size and the limit.
func (e *TooLargeError) Error() string { return (*errs.TooLargeError)(e).Error() }

// Is makes a TooLargeError match [ErrTooLarge].
func (e *TooLargeError) Is(target error) bool { return (*errs.TooLargeError)(e).Is(target) }

// RegisterError makes a sentinel error recognisable across process
// boundaries and returns it: a child's error e with errors.Is(e, err)
// reaches the parent as a [*RemoteError] for which errors.Is(remote, err)
// holds. Sentinels are told apart by their message and the order of
// registration, which is the same in every process of one binary, so call
// it in a package-level var, like [Register]:
//
//	var ErrNotFound = multiproc.RegisterError(errors.New("not found"))
//
// Registering a sentinel again is harmless; RegisterError(nil) panics. The
// standard library's context, io, io/fs and os sentinels, errors.ErrUnsupported
// and this package's sentinels are registered already.
func RegisterError(err error) error { return errs.RegisterSentinel(err) }

// RegisterErrorType makes values of the error type E cross process
// boundaries: when a child's error has a value of dynamic type E anywhere
// in its chain (returned as is, wrapped with fmt.Errorf's %w, in
// errors.Join, the value of a panic, or carried by a nested child's
// RemoteError), the parent's errors.As finds both the [*RemoteError] and
// an E with the child's field values:
//
//	type QuotaError struct{ User string; Limit int }
//	func (e *QuotaError) Error() string { ... }
//
//	var _ = multiproc.RegisterErrorType[*QuotaError]()
//
//	var qe *QuotaError
//	if errors.As(err, &qe) { ... qe.Limit ... }
//
// E is the type your code returns and passes to errors.As: *QuotaError for
// an error with pointer receivers, QuotaError for a value type. The value
// travels with the codecs of [Register]: a pointer-free value type as
// memory, anything else with encoding/gob, so only exported fields cross
// (unexported ones arrive zero) and a type with no exported fields cannot
// be sent unless it implements gob.GobEncoder. A value that cannot be
// encoded (or whose encoding is over 1 MiB) is left out: the error still
// arrives as a RemoteError, whose message says which type was not sent and
// why. At most 8 values travel with one error.
//
// Like [Register], call it in a package-level var (its result is always
// true) or an init function, so every process registers the same types
// before [Main]. It panics with an error wrapping [ErrLateRegistration]
// after Main, [ErrDuplicate] if E is registered already, and a
// type error if E is an interface type or cannot cross a process boundary
// (a chan or func field). This package's own [*ExitError] and
// [*TooLargeError] are registered already: a child's (or grandchild's)
// reach the parent for errors.As like the user's.
func RegisterErrorType[E error]() bool {
	t := reflect.TypeFor[E]()
	if registry.Frozen() {
		panic(fmt.Errorf("%w: RegisterErrorType[%v] after Main; call it in a package-level var so every process registers it during initialisation", ErrLateRegistration, t))
	}
	if t.Kind() != reflect.Interface {
		if _, err := wire.Check(t, t.String()); err != nil {
			panic(fmt.Errorf("multiproc: RegisterErrorType[%v]: %w", t, err))
		}
	}
	c := wire.For[E]()
	err := errs.RegisterType(t,
		func(dst []byte, err error) ([]byte, error) { return c.Append(dst, err.(E)) },
		func(src []byte) (error, error) {
			v, err := c.Decode(src)
			if err != nil {
				return nil, err
			}
			return v, nil
		})
	if err != nil {
		panic(err)
	}
	return true
}
