package logs

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Run(m) }

func TestLimiterOneLinePerKey(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)))
	for range 5 {
		l.Warn("backoff", "restarts back off")
	}
	if !l.Warn("other", "another condition") {
		t.Error("a new key was suppressed")
	}
	out := buf.String()
	if n := strings.Count(out, "restarts back off"); n != 1 {
		t.Errorf("%d lines for one key within the interval, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "another condition") || !strings.Contains(out, "level=WARN") {
		t.Errorf("output %q lacks the second key's warning", out)
	}
}

func TestLimiterCountsSuppressed(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)))
	l.Error("k", "first")
	l.Error("k", "second")
	l.Error("k", "third")
	// Age the entry instead of sleeping through the interval.
	l.mu.Lock()
	e := l.last["k"]
	e.at = e.at.Add(-2 * Interval)
	l.last["k"] = e
	l.mu.Unlock()
	if !l.Error("k", "fourth") {
		t.Fatal("a line after the interval was suppressed")
	}
	if !strings.Contains(buf.String(), "suppressed=2") {
		t.Errorf("output %q does not count the 2 suppressed lines", buf.String())
	}
}

func TestNilLoggerIsDefault(t *testing.T) {
	if New(nil).Logger() != slog.Default() {
		t.Error("New(nil) does not use slog.Default()")
	}
}
