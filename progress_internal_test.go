package multiproc

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/term"
)

// TestProgressNeedsTerminal guards the promise that Progress never writes
// to a stderr that is not a terminal (a CI log, a file).
func TestProgressNeedsTerminal(t *testing.T) {
	if term.IsTerminal(int(os.Stderr.Fd())) {
		t.Skip("stderr is a terminal here")
	}
	var c poolConfig
	if err := Progress()(&c); err != nil {
		t.Fatal(err)
	}
	if pc := newProgressConfig(c); pc.w != nil || pc.start("x", 10) != nil {
		t.Fatal("Progress draws on a stderr that is not a terminal")
	}
}

// TestLineBarRate guards the plain progress lines: at most one per tenth of
// the work and per second, and the final line once.
func TestLineBarRate(t *testing.T) {
	tests := []struct {
		name string
		step time.Duration // clock advance per item
		want []string
	}{
		{"fast: only the final line", time.Millisecond, []string{"m 20/20 100%"}},
		{"slow: one line per tenth", 2 * time.Second, []string{
			"m 2/20 10%", "m 4/20 20%", "m 6/20 30%", "m 8/20 40%", "m 10/20 50%",
			"m 12/20 60%", "m 14/20 70%", "m 16/20 80%", "m 18/20 90%", "m 20/20 100%",
		}},
		{"quarter second: one line per second", 250 * time.Millisecond, []string{
			"m 4/20 20%", "m 8/20 40%", "m 12/20 60%", "m 16/20 80%", "m 20/20 100%",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			now := time.Unix(0, 0)
			b := &bar{line: newLineBar(&buf, new(sync.Mutex), "m", 20, func() time.Time { return now })}
			for range 20 {
				now = now.Add(tt.step)
				b.add(1)
			}
			b.done()
			b.done()
			b.abort()
			if got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLineBarAbort guards the line written when a map fails: one, saying so.
func TestLineBarAbort(t *testing.T) {
	var buf bytes.Buffer
	b := &bar{line: newLineBar(&buf, new(sync.Mutex), "m", 10, time.Now)}
	b.add(3)
	b.abort()
	b.done()
	if got, want := buf.String(), "m 3/10 30% failed\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
