package multiproc_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
)

// TestProgressToFilePlainLines guards ProgressTo on a writer that is not a
// terminal (a log file, here a buffer): it used to receive mpb's cursor
// movements; now it gets plain lines, with the final count exactly once.
func TestProgressToFilePlainLines(t *testing.T) {
	// The bar writes only while Map runs and has written its last line
	// before Map returns, so a plain bytes.Buffer is safe to read after.
	var buf bytes.Buffer
	p := newPool(t, 2, multiproc.ProgressTo(&buf))
	if _, err := multiproc.Map(ctxT(t), p, square, make([]int, 100), multiproc.Chunksize(1)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "\x1b") {
		t.Fatalf("progress on a non-terminal holds escape codes: %q", out)
	}
	const final = "test.square 100/100 100%"
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if n := strings.Count(out, final); n != 1 || lines[len(lines)-1] != final {
		t.Fatalf("got %q; want the final line %q exactly once (got %d), last", out, final, n)
	}
	if len(lines) > 10 {
		t.Fatalf("got %d lines, want at most one per tenth: %q", len(lines), out)
	}
}
