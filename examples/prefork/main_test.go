package main

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/examples/internal/extest"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}

// TestOutput runs the example: every client is answered by a pool worker
// through the listener the pool's initializer received.
func TestOutput(t *testing.T) {
	lines := extest.Lines(extest.Run(t, extest.Build(t)))
	if len(lines) != 7 {
		t.Fatalf("%d lines, want 7:\n%q", len(lines), lines)
	}
	for i, l := range lines[:6] {
		re := regexp.MustCompile(fmt.Sprintf(`^hello client-%d from PoolWorker-\d+$`, i))
		if !re.MatchString(l) {
			t.Errorf("line %d = %q", i, l)
		}
	}
	if !regexp.MustCompile(`^6 connections served by [1-3] worker processes, none of them this one \(\d+\)$`).MatchString(lines[6]) {
		t.Errorf("last line = %q", lines[6])
	}
}
