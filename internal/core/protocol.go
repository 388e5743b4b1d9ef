package core

import (
	"encoding/binary"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// Frame kinds between a pool and its workers (after the boot handshake).
const (
	kindInit   = 0x40 + iota // worker -> pool: initializer done; payload: status [+ envelope]
	kindTask                 // pool -> worker: fnRef uvarint, flags, [name], payload
	kindCancel               // pool -> worker: ordinal uvarint
	kindExit                 // pool -> worker: finish and exit 0
	kindResult               // worker -> pool: ordinal uvarint, status, duration uvarint (ns), data
)

// Task frame flags.
const (
	flagDefine    = 1 << iota // the frame carries the function's name for fnRef
	flagChunk                 // payload is a slice of arguments
	flagCancelled             // do not run: answer statusCancelled
)

// Result statuses.
const (
	statusOK        = iota // data: encoded result (a slice for chunks)
	statusError            // data: error envelope
	statusPartial          // chunk failed at item n: n uvarint, encoded slice of n results (bytes), envelope
	statusCancelled        // not run
)

// Shared words a worker publishes.
const (
	wordStarted   = 0 // ordinal of the last task started
	wordCompleted = 1 // ordinal of the last task whose result has left the worker
	wordOutLen    = 2 // bytes of unsent result frames in the shared area
)

// ctrlFiles: the shared words page is the first extra file, fd 4.
const wordsFD = 4

func appendStartPayload(dst []byte, initName string, initArg []byte, procs int) []byte {
	dst = wire.AppendString(dst, initName)
	dst = wire.AppendBytes(dst, initArg)
	return binary.AppendUvarint(dst, uint64(procs))
}

func appendCancel(dst []byte, ord uint64) []byte {
	var b [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(b[:], ord)
	return wire.AppendFrame(dst, kindCancel, b[:n])
}
