package main

import (
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/examples/internal/extest"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}

func TestSemaphoreExample(t *testing.T) {
	lines := extest.Lines(extest.RunQuiet(t))
	if len(lines) != 11 || lines[10] != "all done; units left: 2" {
		t.Fatalf("output %q: want 10 enter/leave lines and the summary", lines)
	}
	// Each line is one write, made inside the section: their order is the
	// order of entering and leaving.
	inside, most := 0, 0
	for _, l := range lines[:10] {
		switch {
		case strings.HasSuffix(l, " enters"):
			inside++
		case strings.HasSuffix(l, " leaves"):
			inside--
		default:
			t.Fatalf("unexpected line %q", l)
		}
		most = max(most, inside)
	}
	if most > 2 || inside != 0 {
		t.Fatalf("%d processes inside at once (want at most 2), %d at the end", most, inside)
	}
}
