package multiproc

import (
	"os"
	"testing"

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
