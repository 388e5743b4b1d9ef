package core

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/multiproc-go/multiproc/internal/isolate"
	"github.com/multiproc-go/multiproc/internal/shmword"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Isolation, the worker's side (issue 14).

// limitsName names the limits in the error a worker answers when it
// cannot apply them (an initializer's failure, at start-up).
const limitsName = "multiproc.Limits"

// childWords is this worker's shared page once mapped, for exit records.
var childWords atomic.Pointer[shmword.Words]

// recordExit notes in the shared page that the worker exits on its own
// (reason, code), so that its parent does not take the exit for user
// code's os.Exit. The first record wins.
func recordExit(reason, code int) {
	if w := childWords.Load(); w != nil && w.Load(wordExit) == 0 {
		w.Store(wordExit, exitRecorded|uint64(reason)<<32|uint64(uint32(code)))
	}
}

// exit is os.Exit for the worker's own reasons.
func exit(code int) {
	recordExit(exitLibrary, code)
	os.Exit(code)
}

// setCrashOutput sends the runtime's crash reports to f, the file the
// parent passed for them, as well as to stderr. It runs before any user
// code, so a crash anywhere in it is reported.
func setCrashOutput(f *os.File) {
	if err := isolate.SetCrashOutput(f); err != nil {
		fmt.Fprintf(os.Stderr, "multiproc: worker %d: crash reports: %v\n", os.Getpid(), err)
	}
	f.Close() // the runtime holds its own duplicate
}

// childIso is the worker's isolation while it runs tasks.
type childIso struct {
	guard   *isolate.CPUGuard // per-task CPU allowance; nil without
	total   bool              // a lifetime CPU limit: publish the CPU used after each task
	capture *isolate.Capture  // output capture; nil without
}

// isoStart is the isolation part of a worker's start payload, which comes
// first in it (see appendIsoPayload).
type isoStart struct {
	spec    isolate.Spec
	capture int // bytes of captured output kept, 0 for no capture
}

// files is how many of the start's files are the isolation's: they come
// last, the crash report file, then the capture file.
func (in isoStart) files() int {
	if in.capture > 0 {
		return 2
	}
	return 1
}

// readIso reads the isolation part at the start of a worker's payload.
func readIso(d *wire.Buf) (isoStart, error) {
	var in isoStart
	var err error
	if in.spec, err = isolate.Decode(d); err != nil {
		return in, err
	}
	in.capture = int(min(d.Uvarint(), 1<<30))
	return in, d.Err()
}

// startIso applies the limits, before any user code (the initializer
// included) runs. files are the isolation's files (see isoStart.files).
func startIso(in isoStart, files []*os.File) (*childIso, error) {
	setCrashOutput(files[0])
	spec := in.spec
	if err := isolate.Apply(spec); err != nil {
		return nil, err
	}
	ci := &childIso{total: spec.CPUTimeTotal > 0}
	var err error
	ci.guard, err = isolate.NewCPUGuard(spec, func() {
		// Only where the kernel cannot end the worker itself (see
		// isolate.CPUGuard): the running task crossed its allowance; a
		// goroutine cannot be stopped from outside, so the worker goes,
		// saying why.
		recordExit(exitCPULimit, 2)
		fmt.Fprintf(os.Stderr, "multiproc: worker %d: the task exceeded its CPU time limit (%v)\n", os.Getpid(), spec.CPUTime)
		os.Exit(2)
	})
	if err != nil {
		return nil, err
	}
	if in.capture > 0 {
		if ci.capture, err = isolate.NewCapture(files[1], in.capture); err != nil {
			return nil, err
		}
	}
	return ci, nil
}

// begin runs just before a task.
func (ci *childIso) begin() {
	if ci == nil {
		return
	}
	if ci.guard != nil {
		ci.guard.Begin()
	}
	if ci.capture != nil {
		ci.capture.Begin()
	}
}

// end runs just after a task and returns the end of its output if it
// failed (with output capture).
func (ci *childIso) end(words *shmword.Words, failed bool) string {
	if ci == nil {
		return ""
	}
	if ci.guard != nil {
		ci.guard.End()
	}
	if ci.total {
		words.Store(wordCPU, uint64(isolate.Used()))
	}
	if ci.capture != nil {
		return ci.capture.End(failed)
	}
	return ""
}
