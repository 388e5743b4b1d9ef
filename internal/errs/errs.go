// Package errs defines the error values and types that cross process
// boundaries, and the envelope that carries them. The root package re-exports
// them; they live here so that internal packages can produce them without
// importing the root.
package errs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// Sentinel errors. The root package documents when each is returned.
var (
	ErrNoMain           = errors.New("multiproc: multiproc.Main() was not called: add `multiproc.Main()` as the first line of main() (and of TestMain in tests) so that re-executed children can serve their role")
	ErrNotRegistered    = errors.New("multiproc: function not registered")
	ErrDuplicate        = errors.New("multiproc: duplicate registration")
	ErrLateRegistration = errors.New("multiproc: registration after multiproc.Main")
	ErrBuildMismatch    = errors.New("multiproc: peer runs a different build of this program")
	ErrHandshake        = errors.New("multiproc: child failed its start-up handshake")
	ErrNotStarted       = errors.New("multiproc: process not started")
	ErrAlreadyStarted   = errors.New("multiproc: process already started")
	ErrClosed           = errors.New("multiproc: closed")
	ErrStillRunning     = errors.New("multiproc: process still running")
	ErrDaemonChildren   = errors.New("multiproc: daemonic processes are not allowed to have children")
	ErrWorkerDied       = errors.New("multiproc: worker died")
	ErrTimeout          = errors.New("multiproc: task timed out")
	ErrPoolClosed       = errors.New("multiproc: pool closed")
	ErrPoolBroken       = errors.New("multiproc: pool broken")
	ErrResultType       = errors.New("multiproc: result of another type")

	// ErrTooLarge is one value for every size limit in the project: a frame
	// over a reader's limit, an argument or result over MaxMessageSize, an
	// item over a queue's capacity. It is wire's frame error itself, since
	// wire sits below this package.
	ErrTooLarge = wire.ErrFrameTooLarge
	// ErrNotTransferable: a value needs descriptors (a resource) and the
	// engine or transport cannot carry them.
	ErrNotTransferable = errors.New("multiproc: value cannot be transferred by this engine")
	// ErrOwnerDead: a lock's holder died while holding it.
	ErrOwnerDead = errors.New("multiproc: owner died")
	// ErrFDLimit: a process ran out of file descriptors (EMFILE).
	ErrFDLimit = errors.New("multiproc: file descriptor limit reached")
)

// TooLargeError reports a value over a size limit; it matches ErrTooLarge.
type TooLargeError struct {
	What  string // "argument", "result", "fields", "item"...
	Func  string // registered name of the function or type, if any
	Size  int64  // bytes the value needed
	Limit int64  // the limit it exceeded
}

func (e *TooLargeError) Error() string {
	of := ""
	if e.Func != "" {
		of = fmt.Sprintf(" of %q", e.Func)
	}
	return fmt.Sprintf("multiproc: %s%s is %d bytes, over the %d-byte limit (see MaxMessageSize)", e.What, of, e.Size, e.Limit)
}

// Is makes a TooLargeError match ErrTooLarge.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

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
}

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
func (e *ExitError) Is(target error) bool { return target == ErrWorkerDied && e.Worker }

// RemoteError is an error or panic that happened in another process.
type RemoteError struct {
	Func    string // registered name of the function that failed, if known
	Pid     int    // process it failed in
	Type    string // Go type of the remote error value, or "panic"
	Message string
	// Stack is the remote goroutine's stack at the panic; empty for errors
	// returned normally (the stack would only show the invoker).
	Stack string
	Panic bool
	keys  []string
	local []error
}

func (e *RemoteError) Error() string {
	where := fmt.Sprintf("pid %d", e.Pid)
	if e.Func != "" {
		where = fmt.Sprintf("%q in pid %d", e.Func, e.Pid)
	}
	if e.Panic {
		return fmt.Sprintf("multiproc: panic in %s: %s", where, e.Message)
	}
	return fmt.Sprintf("multiproc: %s: %s", where, e.Message)
}

// Unwrap returns the registered sentinel errors the remote error matched
// with errors.Is in its own process, so errors.Is works across the boundary.
func (e *RemoteError) Unwrap() []error { return e.local }

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
	} {
		RegisterSentinel(e)
	}
}

// matchKeys lists the keys of registered sentinels that err matches.
func matchKeys(err error) []string {
	sentinels.RLock()
	defer sentinels.RUnlock()
	var keys []string
	for _, s := range sentinels.list {
		if errors.Is(err, s) {
			keys = append(keys, sentinels.keys[s])
		}
	}
	return keys
}

// Envelope flags.
const (
	flagPanic = 1 << iota
)

// AppendError appends the envelope of err (from function fn in process pid)
// to dst. stack is the panic stack, or empty.
func AppendError(dst []byte, fn string, pid int, err error, panicked bool, stack string) []byte {
	var re *RemoteError
	typ := fmt.Sprintf("%T", err)
	msg := err.Error()
	var keys []string
	if errors.As(err, &re) && re.Error() == msg {
		// Pass a remote error through unchanged (a nested child's failure).
		fn, pid, typ, msg, stack, panicked, keys = re.Func, re.Pid, re.Type, re.Message, re.Stack, re.Panic, re.keys
	} else {
		keys = matchKeys(err)
	}
	if panicked {
		typ = "panic"
	}
	var flags byte
	if panicked {
		flags |= flagPanic
	}
	dst = append(dst, flags)
	dst = wire.AppendString(dst, fn)
	dst = binary.AppendUvarint(dst, uint64(pid))
	dst = wire.AppendString(dst, typ)
	dst = wire.AppendString(dst, msg)
	dst = wire.AppendString(dst, stack)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = wire.AppendString(dst, k)
	}
	return dst
}

// DecodeError decodes an envelope written by AppendError.
func DecodeError(payload []byte) (*RemoteError, error) {
	d := wire.NewBuf(payload)
	flags := d.Byte()
	e := &RemoteError{Panic: flags&flagPanic != 0}
	e.Func = d.String()
	e.Pid = int(d.Uvarint())
	e.Type = d.String()
	e.Message = d.String()
	e.Stack = d.String()
	n := d.Uvarint()
	if n > uint64(len(payload)) {
		return nil, fmt.Errorf("%w: %d sentinel keys in a %d-byte envelope", wire.ErrCorrupt, n, len(payload))
	}
	for range n {
		e.keys = append(e.keys, d.String())
	}
	if d.Err() != nil {
		return nil, fmt.Errorf("error envelope: %w", d.Err())
	}
	if len(d.Rest()) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after error envelope", wire.ErrCorrupt, len(d.Rest()))
	}
	sentinels.RLock()
	for _, k := range e.keys {
		if s, ok := sentinels.byKey[k]; ok {
			e.local = append(e.local, s)
		}
	}
	sentinels.RUnlock()
	return e, nil
}
