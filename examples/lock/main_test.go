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

func TestLockExample(t *testing.T) {
	lines := extest.Lines(extest.RunQuiet(t))
	if len(lines) != 11 {
		t.Fatalf("%d lines, want 11 (Main, 5 threads, 5 processes): %q", len(lines), lines)
	}
	main := regexp.MustCompile(`^Main: ([0-9]+)$`).FindStringSubmatch(lines[0])
	if main == nil {
		t.Fatalf("first line %q", lines[0])
	}
	pids := map[string]bool{}
	for i, l := range lines[1:] {
		m := regexp.MustCompile(`^(thread|process) ([0-9]+)$`).FindStringSubmatch(l)
		switch {
		case m == nil:
			t.Fatalf("line %q: not a whole line of one worker (mixed output?)", l)
		case i < 5 && (m[1] != "thread" || m[2] != main[1]):
			t.Errorf("line %q: want thread %s", l, main[1])
		case i >= 5 && (m[1] != "process" || m[2] == main[1]):
			t.Errorf("line %q: want a process with a pid of its own", l)
		}
		if i >= 5 {
			pids[m[2]] = true
		}
	}
	if len(pids) != 5 {
		t.Errorf("%d distinct process pids, want 5", len(pids))
	}
}
