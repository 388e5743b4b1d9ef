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

func TestQueueProdConsExample(t *testing.T) {
	lines := extest.Lines(extest.RunQuiet(t))
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 10: %q", len(lines), lines)
	}
	re := regexp.MustCompile(`^([0-9]+)\(get\):([0-9]+)\(put\):[0-9]+\.[0-9]+$`)
	pids := map[string]bool{}
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q: not one consumer's whole line (mixed output?)", l)
		}
		pids[m[1]], pids[m[2]] = true, true
	}
	if len(pids) != 20 {
		t.Errorf("%d distinct pids, want 20 (10 producers, 10 consumers)", len(pids))
	}
}
