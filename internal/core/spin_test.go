//go:build linux

package core

import (
	"math"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestParseRunnable(t *testing.T) {
	for in, want := range map[string]int{
		"0.96 1.84 2.14 2/89 29093\n": 2,
		"0.00 0.00 0.00 1/79 1":       1,
		"3.10 2.00 1.00 17/1200 77\n": 17,
	} {
		if got, ok := parseRunnable([]byte(in)); !ok || got != want {
			t.Errorf("parseRunnable(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "0.96 1.84 2.14", "0.96 1.84 2.14 x/89 1", "0.96 1.84 2.14 289 1", "0.96 1.84 2.14 -1/89 1"} {
		if got, ok := parseRunnable([]byte(in)); ok {
			t.Errorf("parseRunnable(%q) = %d, true; want a refusal", in, got)
		}
	}
}

// TestSpinPolicy: a long wait stops polling until a short one; a failed
// poll skips 1, 2, 4, ... waits, up to spinBackoffMax, and a successful
// one ends the back-off.
func TestSpinPolicy(t *testing.T) {
	if !spinReads {
		t.Skip("no polling on this platform")
	}
	var s spinPolicy
	// skips counts the waits poll refuses for the policy's own reasons,
	// whatever the machine's load says.
	skips := func() int {
		n := 0
		for s.skip > 0 {
			s.poll()
			n++
		}
		return n
	}
	s.saw(spinWindow + time.Microsecond)
	if s.poll() {
		t.Fatal("polls after a long wait")
	}
	s.saw(spinWindow)
	if s.long {
		t.Fatal("a wait of spinWindow counted as long")
	}
	for _, want := range []int{1, 2, 4, 8, 16, 32, 64, 64} {
		s.polled(false)
		if got := skips(); got != want {
			t.Fatalf("after a failed poll: %d waits skipped, want %d", got, want)
		}
	}
	s.polled(true)
	s.polled(false)
	if got := skips(); got != 1 {
		t.Fatalf("a success did not end the back-off: %d waits skipped after the next failure, want 1", got)
	}
}

// TestLoadProbe: the probe reads /proc/loadavg at most once per
// loadProbeEvery and says no CPU is spare without it.
func TestLoadProbe(t *testing.T) {
	if _, err := os.Stat("/proc/loadavg"); err != nil {
		var l loadProbe
		if l.spare() {
			t.Fatal("a CPU is spare without /proc/loadavg")
		}
		return
	}
	var l loadProbe
	l.spare()
	next := l.next.Load()
	if next <= 0 {
		t.Fatalf("after a reading, next = %d", next)
	}
	if l.spare(); l.next.Load() != next && probeClock() < next {
		t.Fatal("read again before the reading was stale")
	}
}

// TestSpinPending: polling returns as soon as bytes wait, at once when
// told to stop, and after about spinWindow otherwise; the end of the
// stream counts as bytes.
func TestSpinPending(t *testing.T) {
	if !spinReads {
		t.Skip("no polling on this platform")
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	defer b.Close() // closed below too: the end of the stream
	ca, err := net.FileConn(a)
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	rc, err := ca.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	never := func() bool { return false }

	start := time.Now()
	if spinPending(rc, start, never) {
		t.Fatal("bytes reported on an empty socket")
	}
	if d := time.Since(start); d < spinWindow {
		t.Fatalf("gave up after %v, before spinWindow", d)
	}
	calls := 0
	if spinPending(rc, time.Now(), func() bool { calls++; return true }) || calls != 1 {
		t.Fatalf("told to stop: %d calls of stop", calls)
	}
	if _, err := b.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if !spinPending(rc, time.Now(), never) {
		t.Fatal("a waiting byte not reported")
	}
	var one [1]byte
	if _, err := ca.Read(one[:]); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if !spinPending(rc, time.Now(), never) {
		t.Fatal("the end of the stream not reported")
	}
}

// TestAwaitPollingModes runs the Await and parked-stream tests with the
// caller's polling forced on (the load probe says a CPU is always spare)
// and forced off, so that both paths are covered whatever CI's load: a
// cancel, a timeout, a worker's death and concurrent callers must come out
// the same either way. (Workers read their own probe, in their process.)
func TestAwaitPollingModes(t *testing.T) {
	if !spinReads {
		t.Skip("no polling on this platform")
	}
	tests := map[string]func(*testing.T){
		"ReadsReply": TestAwaitReadsReply, "Cancel": TestAwaitCancel, "OwnContext": TestAwaitOwnContext,
		"Timeout": TestAwaitTimeout, "WorkerDeath": TestAwaitWorkerDeath, "Concurrent": TestAwaitConcurrent,
		"Parked": TestParkedStream, "ParkedCancel": TestParkedCancel, "ParkedTimeout": TestParkedTimeout,
		"ParkedWorkerDeath": TestParkedWorkerDeath,
	}
	for mode, next := range map[string]int64{"polling": math.MaxInt64, "sleeping": -1} {
		t.Run(mode, func(t *testing.T) {
			machineLoad.next.Store(next)
			machineLoad.ok.Store(next > 0)
			t.Cleanup(func() { machineLoad.ok.Store(false); machineLoad.next.Store(0) })
			if got := machineLoad.spare(); got != (next > 0) {
				t.Fatalf("forced probe says spare = %v", got)
			}
			for name, f := range tests {
				t.Run(name, f)
			}
		})
	}
}
