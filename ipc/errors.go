package ipc

import (
	"errors"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/handshake"
)

// Errors of this package. Each is registered so that it crosses process
// boundaries: a pool task or child that returns one (wrapped or not) gives an
// error that matches it with errors.Is in the parent.
var (
	// ErrClosed is returned (wrapped) by operations on a connection, listener
	// or queue after Close (or, for a queue, after any process closed it).
	ErrClosed = errs.RegisterSentinel(errors.New("ipc: closed"))
	// ErrPeerDied is returned by a receive on a connection whose peer went
	// away without closing it (EOF with no close message).
	ErrPeerDied = errs.RegisterSentinel(errors.New("ipc: peer died"))
	// ErrHandshake is returned (wrapped) when a connection's opening
	// handshake fails: the peer is not a multiproc peer of this protocol
	// (a Python program without the Python option), it timed out, or the
	// framing is wrong. It is internal/handshake's, shared with the
	// manager.
	ErrHandshake = errs.RegisterSentinel(handshake.ErrHandshake)
	// ErrAuth is returned (wrapped) when the peer does not prove it holds
	// the authentication key. An error matching ErrAuth also matches
	// ErrHandshake.
	ErrAuth = errs.RegisterSentinel(handshake.ErrAuth)
	// ErrBufferTooShort is matched by the [*BufferTooShortError] of
	// [Conn.RecvBytesInto] for a message longer than the caller's buffer
	// (Python's BufferTooShort); the message is in the error.
	ErrBufferTooShort = errs.RegisterSentinel(errors.New("ipc: buffer too short"))
	// ErrMessageType is returned (wrapped) by a receive that found a
	// message of another kind or type than it asks for: a typed value
	// where RecvBytes expects bytes, bytes where Recv[T] expects a T, or
	// a value sent as another type. The message is consumed.
	ErrMessageType = errs.RegisterSentinel(errors.New("ipc: message of another type"))
	// ErrFull is returned by TryPut on a queue that holds its MaxItems
	// items or its byte capacity.
	ErrFull = errs.RegisterSentinel(errors.New("ipc: queue full"))
	// ErrEmpty is returned by TryGet on an empty queue.
	ErrEmpty = errs.RegisterSentinel(errors.New("ipc: queue empty"))
	// ErrTooLarge is returned (wrapped) for a message or item over a size
	// limit. It is the root package's multiproc.ErrTooLarge.
	ErrTooLarge = errs.ErrTooLarge
)
