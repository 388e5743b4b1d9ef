package main

import (
	"sort"
	"strconv"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/examples/internal/extest"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}

func TestQueueLogExample(t *testing.T) {
	lines := extest.Lines(extest.RunQuiet(t))
	var want []string
	for i := range 10 {
		want = append(want, "Analyzing: Log entry "+strconv.Itoa(i))
	}
	sort.Strings(lines)
	sort.Strings(want)
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d: %q", len(lines), len(want), lines)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Fatalf("lines %q, want %q (in any order)", lines, want)
		}
	}
}
