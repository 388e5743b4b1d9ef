package core

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Polling before sleeping.
//
// A synchronous round trip (Apply, Future.Result) on an idle machine is
// mostly two wake-ups: the worker's, when its task arrives, and the
// caller's, when the reply does. Measured here (2 vCPUs, 1-byte socketpair
// ping-pong between two Go processes, medians of 5): 25-27 µs a round trip
// when both sides sleep in read, 9-11 µs when both poll the socket for up
// to 10-30 µs before they sleep. With one CPU-bound process per CPU it goes
// the other way: polling raised it from 35-42 µs to 52-74 µs, because a
// poller holds a CPU its peer needs.
//
// So a waiter polls only while polling pays. The caller waiting for a
// reply (Await) and an idle worker waiting for its next task poll for up
// to spinWindow, and only when three things hold:
//   - the machine has a CPU to spare (loadProbe: no more runnable tasks
//     than CPUs), so that the poller takes no CPU another process wants
//     (it does hold its P: in a process with fewer Ps than busy
//     goroutines, the others wait up to spinWindow);
//   - the previous wait was itself no longer than spinWindow (a long task
//     makes its caller's waits long: polling would only burn CPU);
//   - the last polls did not fail: a poll that gives up makes the next 1,
//     2, 4, ... spinBackoffMax waits sleep at once, and one that succeeds
//     ends that.
//
// A wait is timed to when it ended, whether by polling or by sleeping, so
// a waiter that slept polls again once waits are short.
const spinWindow = 30 * time.Microsecond

// spinBackoffMax bounds the waits that sleep at once after failed polls.
const spinBackoffMax = 64

// spinPolicy is one waiter's record of its recent waits. The zero value
// polls. It is not synchronised: one goroutine at a time waits through it.
type spinPolicy struct {
	long    bool   // the last wait took longer than spinWindow
	skip    uint32 // waits left that sleep at once (after a failed poll)
	backoff uint32 // the skip the next failed poll sets
}

// poll reports whether the next wait should poll first.
func (s *spinPolicy) poll() bool {
	if !spinReads || s.long {
		return false
	}
	if s.skip > 0 {
		s.skip--
		return false
	}
	return machineLoad.spare()
}

// polled records the outcome of a poll: whether what it waited for came.
func (s *spinPolicy) polled(ok bool) {
	if ok {
		s.backoff = 0
		return
	}
	s.backoff = min(max(2*s.backoff, 1), spinBackoffMax)
	s.skip = s.backoff
}

// saw records how long a wait took.
func (s *spinPolicy) saw(d time.Duration) { s.long = d > spinWindow }

// spinPending polls rc for up to spinWindow after start and reports
// whether bytes (or the end of the stream) arrived; it gives up early once
// stop reports true. Each poll is a non-blocking peek (pending), a system
// call that the scheduler does not see, so the calling thread keeps its P.
func spinPending(rc syscall.RawConn, start time.Time, stop func() bool) bool {
	for {
		if pending(rc) {
			return true
		}
		if stop() || time.Since(start) > spinWindow {
			return false
		}
	}
}

// loadProbeEvery is how long a reading of the machine's load stands.
const loadProbeEvery = time.Millisecond

// machineLoad is the process's view of whether a CPU is spare.
var machineLoad loadProbe

// loadProbe tells whether the machine has a CPU to spare: whether the
// number of runnable tasks, the fourth field of /proc/loadavg (read
// afresh at most every loadProbeEvery, ~3 µs a read here), is no more than
// the CPUs this process may use. The reader counts itself. Without
// /proc/loadavg no CPU is ever spare, so nobody polls.
type loadProbe struct {
	next atomic.Int64 // probeClock from which the reading is stale; -1: no /proc/loadavg
	ok   atomic.Bool  // the last reading: a CPU is spare
}

// probeEpoch makes probeClock monotonic: a step of the wall clock must
// not freeze a reading.
var probeEpoch = time.Now()

func probeClock() int64 { return int64(time.Since(probeEpoch)) }

func (l *loadProbe) spare() bool {
	now := probeClock()
	next := l.next.Load()
	if next < 0 || now < next || !l.next.CompareAndSwap(next, now+int64(loadProbeEvery)) {
		return next >= 0 && l.ok.Load()
	}
	// Opened and closed each time: a descriptor kept open would outlive
	// every pool, which leak checks rightly count.
	b, err := os.ReadFile("/proc/loadavg")
	running, ok := parseRunnable(b)
	if err != nil || !ok {
		l.ok.Store(false)
		if errors.Is(err, fs.ErrNotExist) || err == nil {
			l.next.Store(-1) // no such file, or not its format: never again
		} // otherwise (out of descriptors, say) try again once the reading is stale
		return false
	}
	spare := running <= runtime.NumCPU()
	l.ok.Store(spare)
	return spare
}

// parseRunnable returns the runnable count of a /proc/loadavg line
// ("0.96 1.84 2.14 2/89 29093").
func parseRunnable(b []byte) (int, bool) {
	f := bytes.Fields(b)
	if len(f) < 4 {
		return 0, false
	}
	run, _, ok := bytes.Cut(f[3], []byte("/"))
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(string(run))
	return n, err == nil && n >= 0
}
