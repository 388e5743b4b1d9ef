package multiproc

import (
	"github.com/multiproc-go/multiproc/internal/errs"
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
	// ErrNotStarted is returned by methods that need a started process.
	ErrNotStarted = errs.ErrNotStarted
	// ErrAlreadyStarted is returned by a second Process.Start.
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
	// ErrTooLarge matches every error about a size limit: an argument or a
	// result over [MaxMessageSize] (or a Process's MaxMessageSize), a frame
	// over a reader's limit. Errors that carry the sizes are *TooLargeError.
	ErrTooLarge = errs.ErrTooLarge
	// ErrNotTransferable matches the error of an argument that holds a
	// resource (descriptors, shared memory) given to a backend that cannot
	// carry descriptors, such as a cluster.
	ErrNotTransferable = errs.ErrNotTransferable
)

// RemoteError is an error returned, or a panic raised, by code running in
// another process. It carries the remote type name, message and (for
// panics) stack. errors.Is matches the sentinel errors registered with
// [RegisterError] (and the standard ones: context, io, fs) that the remote
// error matched in its own process.
type RemoteError = errs.RemoteError

// ExitError describes a child that ended abnormally: its pid, its exit code
// in Python's convention (the exit status, or -N when killed by signal N)
// and the signal. A pool worker's ExitError matches [ErrWorkerDied].
type ExitError = errs.ExitError

// RegisterError makes a sentinel error recognisable across process
// boundaries: a child's error e with errors.Is(e, err) reaches the parent as
// a [*RemoteError] for which errors.Is(remote, err) holds. Call it in a
// package-level var, like Register:
//
//	var ErrNotFound = multiproc.RegisterError(errors.New("not found"))
func RegisterError(err error) error { return errs.RegisterSentinel(err) }
