package testutil

import (
	"fmt"
	"testing"
	"time"
)

const (
	// firstBackoff is the first pause between polls: most conditions a test
	// waits for (a child exiting, a goroutine returning) become true within
	// tens of microseconds, and a short first pause keeps such tests fast.
	firstBackoff = 50 * time.Microsecond
	// maxWaitBackoff caps the pause in WaitFor so that a condition that
	// becomes true is seen within about 10 ms.
	maxWaitBackoff = 10 * time.Millisecond
	// maxCheckBackoff caps the pause between leak checks lower than
	// WaitFor's: one round of checks reads /proc, which takes a few
	// milliseconds itself.
	maxCheckBackoff = 5 * time.Millisecond
)

// WaitFor polls cond until it returns true, and fails t with the message
// made from format and args if that does not happen within timeout. The
// pause between polls grows from 50 µs to 10 ms, so a condition that becomes
// true is seen promptly without spinning. cond runs on the caller's goroutine
// at least once, and WaitFor gives up only when a call that ended after the
// deadline returned false. Like t.Fatalf, WaitFor must be called from the
// goroutine running the test.
//
// Use it instead of time.Sleep to wait for state that changes on its own,
// such as a process exiting; pick a timeout generous enough for a loaded
// 2-core machine, since the cost is only paid when the test fails.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !poll(timeout, maxWaitBackoff, cond) {
		t.Fatalf("%s (still not true after %v)", fmt.Sprintf(format, args...), timeout)
	}
}

// poll calls cond until it returns true or timeout has elapsed, pausing with
// exponential backoff capped at maxBackoff, and reports whether cond returned
// true. cond is called at least once, and poll returns false only when a
// call that ended at or after the deadline returned false.
func poll(timeout, maxBackoff time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	backoff := firstBackoff
	timer := time.NewTimer(backoff)
	defer timer.Stop()
	for {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		timer.Reset(min(backoff, left))
		<-timer.C
		backoff = min(2*backoff, maxBackoff)
	}
}
