package core

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// Frame kinds between a pool and its workers (after the boot handshake).
// Both directions are descriptor-carrying streams (wire.NewUnixReader): a
// frame whose kind has wire.FlagFiles set declares, before its payload,
// how many descriptors travel with it (SCM_RIGHTS).
const (
	kindInit   = 0x40 + iota // worker -> pool: initializer done; payload: status [+ envelope]
	kindTask                 // pool -> worker: fnRef uvarint, flags, [name], [budget uvarint (ns)], payload
	kindCancel               // pool -> worker: ordinal uvarint
	kindExit                 // pool -> worker: finish and exit 0
	kindResult               // worker -> pool: ordinal uvarint, status, duration uint64 LE (ns), data [+ resource trailer if statusRes]
	kindEvict                // pool -> worker: count uvarint, resource IDs uvarint: drop them once the tasks before have run
)

// Task frame flags.
const (
	flagDefine    = 1 << iota // the frame carries the function's name for fnRef
	flagChunk                 // payload is a slice of arguments
	flagCancelled             // do not run: answer statusCancelled
	// flagBudget: a uvarint follows the name (if any): the task's time
	// budget in nanoseconds, relative (hosts' clocks differ), counted from
	// when the worker starts the task. Its context ends with
	// context.DeadlineExceeded when the budget is spent.
	flagBudget
	// flagRes: the task's resource table follows the budget: a count, then
	// per resource its ID and how many of the frame's descriptors are its
	// (0 for a resource the worker holds already). The payload refers to
	// the entries by index (wire's resource codec).
	flagRes
)

// Result statuses.
const (
	statusOK        = iota // data: encoded result (a slice for chunks)
	statusError            // data: error envelope
	statusPartial          // chunk failed at item n: n uvarint, encoded slice of n results (bytes), envelope
	statusCancelled        // not run
	statusResend           // not run: a resource it refers to is not held by the worker; send it again with its descriptors
	numStatuses

	// statusRes, set in a status, says that the data ends with a resource
	// trailer (wire.AppendTrailer): the result holds resources, whose
	// descriptors came with the frame.
	statusRes = 0x80
)

// Shared words a worker publishes.
const (
	wordStarted   = 0 // ordinal of the last task started
	wordCompleted = 1 // ordinal of the last task whose result has left the worker
	wordOutLen    = 2 // bytes of unsent result frames in the shared area
	wordExit      = 3 // the worker's own exit record (see exitRecorded), 0 until it exits on its own
	wordCPU       = 4 // CPU time the worker had used after its last task, ns (with a lifetime CPU limit)
)

// frameSlack is what a task or result frame may add to the message it
// carries (ordinal, status, duration, function reference and name,
// budget, descriptor count): the readers accept the message limit plus
// this, so that a message of exactly the limit goes through.
const frameSlack = 64 << 10

// readerLimit is the frame limit of a reader of messages up to msg bytes.
func readerLimit(msg int) int { return int(min(uint64(msg)+frameSlack, math.MaxUint32)) }

// msgLimit is the pool's message limit: Config.MaxMessageSize, or the wire
// default.
func (p *Pool) msgLimit() int {
	if p.cfg.MaxMessageSize > 0 {
		return p.cfg.MaxMessageSize
	}
	return wire.DefaultMaxFrame
}

// Start payload: initializer name and argument, GOMAXPROCS, message limit,
// and the initializer's resource table (wire.AppendTable; its descriptors
// are the start's files after the shared page).
func appendStartPayload(dst []byte, initName string, initArg []byte, initRes []wire.Sent, procs, limit int) []byte {
	dst = wire.AppendString(dst, initName)
	dst = wire.AppendBytes(dst, initArg)
	dst = binary.AppendUvarint(dst, uint64(procs))
	dst = binary.AppendUvarint(dst, uint64(limit))
	return wire.AppendTable(dst, initRes)
}

func appendCancel(dst []byte, ord uint64) []byte {
	var b [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(b[:], ord)
	return wire.AppendFrame(dst, kindCancel, b[:n])
}

// parseResult splits the payload of a result frame: the task's ordinal,
// its status, the run time the worker measured and the status's data
// (aliasing payload). It touches no pool state: the bytes come from another
// process, so it is fuzzed alone (FuzzResultFrame). A run time that does
// not fit a Duration is an error: a negative one would poison the pool's
// moving average, and with it the pipelining window.
func parseResult(payload []byte) (ord uint64, status byte, dur time.Duration, data []byte, err error) {
	d := wire.NewBuf(payload)
	ord = d.Uvarint()
	status = d.Byte()
	u := d.Uint64()
	data = d.Rest()
	switch {
	case d.Err() != nil:
		return 0, 0, 0, nil, fmt.Errorf("result frame: %w", d.Err())
	case ord == 0:
		return 0, 0, 0, nil, fmt.Errorf("%w: result for task ordinal 0", wire.ErrCorrupt)
	case status&^statusRes >= numStatuses || (status&statusRes != 0 && status&^statusRes != statusOK && status&^statusRes != statusPartial):
		return 0, 0, 0, nil, fmt.Errorf("%w: unknown result status %d", wire.ErrCorrupt, status)
	case u > math.MaxInt64:
		return 0, 0, 0, nil, fmt.Errorf("%w: result run time %d ns out of range", wire.ErrCorrupt, u)
	}
	return ord, status, time.Duration(u), data, nil
}

// nextAreaFrame returns the payload of the result frame at the start of
// area (the bytes a dead worker left in the area it shared with us) and the
// bytes after it. ok is false at the end or at anything that is not a whole
// result frame within max bytes: the rest cannot be trusted. It is fuzzed
// (FuzzRecoveredArea).
func nextAreaFrame(area []byte, max int) (payload, rest []byte, ok bool) {
	kind, payload, size, err := wire.ParseFrame(area, max)
	if err != nil || size == 0 || kind != kindResult {
		return nil, nil, false
	}
	return payload, area[size:], true
}
