package testutil_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/testutil"
)

// A short deadline for checks that are expected to find a leak; the checks
// that are expected to pass keep the default, generous one.
const failFast = 100 * time.Millisecond

const blockerFunc = "github.com/multiproc-go/multiproc/internal/testutil_test.blockUntilClosed"

// blockUntilClosed is the body of the goroutines the tests leak on purpose:
// a named function, so that reports and IgnoreGoroutine can name it.
func blockUntilClosed(c chan struct{}) { <-c }

// leakGoroutine starts a goroutine that stays blocked until the test ends.
func leakGoroutine(t *testing.T) {
	t.Helper()
	c := make(chan struct{})
	go blockUntilClosed(c)
	t.Cleanup(func() { close(c) })
}

func snapshot(t *testing.T) *testutil.Baseline {
	t.Helper()
	b, err := testutil.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return b
}

// checkClean fails t if a check against b finds anything, which proves that
// the detectors tested here do not report what was cleaned up.
func checkClean(t *testing.T, b *testutil.Baseline) {
	t.Helper()
	if r := testutil.Check(b); !r.Empty() {
		t.Fatalf("Check after cleanup found leaks:\n%s", r)
	}
}

func TestCheckReportsLeakedGoroutine(t *testing.T) {
	b := snapshot(t)
	c := make(chan struct{})
	go blockUntilClosed(c)

	r := testutil.Check(b, testutil.Deadline(failFast))
	if !strings.Contains(r.Goroutines, blockerFunc) {
		t.Errorf("Check reported goroutines %q, want one in %s", r.Goroutines, blockerFunc)
	}
	if r := testutil.Check(b, testutil.Deadline(failFast), testutil.IgnoreGoroutine(blockerFunc)); r.Goroutines != "" {
		t.Errorf("Check with IgnoreGoroutine(%q) reported goroutines:\n%s", blockerFunc, r.Goroutines)
	}

	close(c)
	checkClean(t, b)
}

func TestCheckIgnoresBaselineGoroutines(t *testing.T) {
	leakGoroutine(t) // before the baseline, like a goroutine package init starts
	b := snapshot(t)
	if r := testutil.Check(b); r.Goroutines != "" {
		t.Errorf("Check reported a goroutine that predates the baseline:\n%s", r.Goroutines)
	}
}

// fakeM stands in for *testing.M in tests of Run's exit codes.
type fakeM struct {
	code int
	run  func()
}

func (m *fakeM) Run() int {
	if m.run != nil {
		m.run()
	}
	return m.code
}

func TestRunExitCode(t *testing.T) {
	tests := []struct {
		name       string
		code       int  // what the tests return
		leak       bool // whether they leak a goroutine
		want       int
		wantReport bool
	}{
		{name: "pass", code: 0, want: 0},
		{name: "pass with leak", code: 0, leak: true, want: 1, wantReport: true},
		{name: "fail", code: 3, want: 3},
		// A failing run is not checked: its report would only bury the
		// failure under its consequences.
		{name: "fail with leak", code: 3, leak: true, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := make(chan struct{})
			defer close(c)
			m := &fakeM{code: tt.code}
			if tt.leak {
				m.run = func() { go blockUntilClosed(c) }
			}
			var stderr bytes.Buffer
			got := testutil.RunCode(m, &stderr, testutil.Deadline(failFast))
			if got != tt.want {
				t.Errorf("exit code %d, want %d; stderr:\n%s", got, tt.want, &stderr)
			}
			if gotReport := strings.Contains(stderr.String(), blockerFunc); gotReport != tt.wantReport {
				t.Errorf("stderr names the leaked goroutine: %v, want %v; stderr:\n%s", gotReport, tt.wantReport, &stderr)
			}
		})
	}
}

func TestOptionsPanicOnMisuse(t *testing.T) {
	tests := []struct {
		name string
		opt  func()
	}{
		{"zero deadline", func() { testutil.Deadline(0) }},
		{"negative deadline", func() { testutil.Deadline(-time.Second) }},
		{"empty goroutine name", func() { testutil.IgnoreGoroutine("") }},
		{"empty fd prefix", func() { testutil.IgnoreFD("") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil {
					t.Error("no panic, want one")
				} else if msg := fmt.Sprint(r); !strings.HasPrefix(msg, "testutil: ") {
					t.Errorf("panic %q, want it prefixed with \"testutil: \"", msg)
				}
			}()
			tt.opt()
		})
	}
}

func TestWaitForReturnsWhenTrue(t *testing.T) {
	done := make(chan struct{})
	go close(done)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}, "channel closed")
}

// fatalTB records Fatalf instead of failing the test, and ends the goroutine
// that called it as the real Fatalf does.
type fatalTB struct {
	testing.TB
	msg string
}

func (*fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitForFailsAfterTimeout(t *testing.T) {
	const timeout = 20 * time.Millisecond
	tb := &fatalTB{TB: t}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		testutil.WaitFor(tb, timeout, func() bool { return false }, "widget %d ready", 7)
	}()
	<-done
	if elapsed := time.Since(start); elapsed < timeout {
		t.Errorf("WaitFor gave up after %v, want at least %v", elapsed, timeout)
	}
	if !strings.Contains(tb.msg, "widget 7 ready") {
		t.Errorf("Fatalf message %q, want it to contain %q", tb.msg, "widget 7 ready")
	}

}
