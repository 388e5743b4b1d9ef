package main

import (
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

func TestEventExample(t *testing.T) {
	lines := extest.Lines(extest.RunQuiet(t))
	if len(lines) != 4 || lines[0] != "setting the event" {
		t.Fatalf("output %q: want the parent's line first, then 3 waiters", lines)
	}
	seen := map[string]bool{}
	for _, l := range lines[1:] {
		m := regexp.MustCompile(`^(Process-[0-9]+) saw the event$`).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unexpected line %q", l)
		}
		seen[m[1]] = true
	}
	if len(seen) != 3 {
		t.Fatalf("%d distinct waiters, want 3", len(seen))
	}
}
