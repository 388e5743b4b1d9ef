package manager

import (
	"errors"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/ipc"
	"github.com/multiproc-go/multiproc/psync"
)

// Errors of this package. Each is registered so that it crosses process
// boundaries: a proxy call answered by the server with one matches it with
// errors.Is in the client, and a pool task or child that returns one gives
// an error that matches it in the parent.
//
// The proxies of the synchronisation kinds return psync's sentinels
// (ErrOwnerDead, ErrNotRecoverable, ErrNotHeld, ErrOverReleased,
// ErrBrokenBarrier), and the queues ipc's (ErrFull, ErrEmpty), re-exported
// here under the same names.
var (
	// ErrNoSuchObject is returned by a call on a proxy whose object the
	// server does not hold: it was released by every holder, the server
	// was shut down, or the proxy names an object of an earlier instance
	// of a restarted server (object ids carry the server's instance id, so
	// a stale reference never reaches a new object).
	ErrNoSuchObject = errs.RegisterSentinel(errors.New("manager: no such object"))
	// ErrConnLost is returned (wrapped, with the cause) by every call on a
	// connection that broke: the manager died, was shut down, or stopped
	// answering heartbeats. Reconnecting is explicit (Connect again); old
	// proxies then get ErrNoSuchObject from a restarted server.
	ErrConnLost = errs.RegisterSentinel(errors.New("manager: connection to the manager lost"))
	// ErrKeyNotFound is Python's KeyError: Dict.Get and Dict.Pop of a key
	// the dict does not hold, Namespace.Get of a missing attribute.
	ErrKeyNotFound = errs.RegisterSentinel(errors.New("manager: key not found"))
	// ErrIndex is Python's IndexError: an index outside a List or Array,
	// or Pop of an empty List.
	ErrIndex = errs.RegisterSentinel(errors.New("manager: index out of range"))
	// ErrNoSuchMethod is returned by Call of a method the object's
	// registered type does not list, and by a built-in proxy's request
	// the server does not know (a newer client).
	ErrNoSuchMethod = errs.RegisterSentinel(errors.New("manager: no such method"))
	// ErrArgType is returned when the arguments of a Call do not decode
	// as the method's argument type.
	ErrArgType = errs.RegisterSentinel(errors.New("manager: argument of another type"))
	// ErrTypeMismatch is returned when a named object exists with another
	// kind or element type than the proxy asks for, or a value stored
	// under a Namespace attribute is read as another type.
	ErrTypeMismatch = errs.RegisterSentinel(errors.New("manager: object of another type"))
	// ErrValueNotFound is Python's ValueError of list.remove and
	// list.index: no element equals the value.
	ErrValueNotFound = errs.RegisterSentinel(errors.New("manager: value not in list"))

	// ErrNotRegistered is returned for a type or update function the
	// server has not registered. It is the root's multiproc.ErrNotRegistered.
	ErrNotRegistered = errs.ErrNotRegistered
	// ErrNotTransferable is returned when a proxy is given to a transport
	// that cannot carry it (the cluster backend). It is the root's
	// multiproc.ErrNotTransferable.
	ErrNotTransferable = errs.ErrNotTransferable
	// ErrBuildMismatch is returned by Connect to a server that stores
	// values in raw memory encodings (a local manager) from another build.
	ErrBuildMismatch = errs.ErrBuildMismatch
	// ErrTooLarge is returned by a call whose request or answer is over
	// the connection's message size limit (MaxMessageSize): that call
	// fails alone, nothing of it is sent, and the connection goes on. It
	// is the root's multiproc.ErrTooLarge (ipc's too).
	ErrTooLarge = errs.ErrTooLarge
	// ErrResultType is returned by Call when the method's result does not
	// decode as Out. It is the root's multiproc.ErrResultType.
	ErrResultType = errs.ErrResultType

	// The synchronisation kinds' sentinels, psync's own values.
	ErrOwnerDead      = psync.ErrOwnerDead
	ErrNotRecoverable = psync.ErrNotRecoverable
	ErrNotHeld        = psync.ErrNotHeld
	ErrOverReleased   = psync.ErrOverReleased
	ErrBrokenBarrier  = psync.ErrBrokenBarrier

	// The queues' sentinels, ipc's own values.
	ErrFull  = ipc.ErrFull
	ErrEmpty = ipc.ErrEmpty
	// ErrClosed is returned by calls on a closed proxy or Manager, and on
	// a zero-value proxy (one no constructor made nor import received).
	ErrClosed = ipc.ErrClosed
)
