package main

import (
	"regexp"
	"slices"
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

func TestProcessExample(t *testing.T) {
	stdout := extest.RunQuiet(t)
	lines := extest.Lines(stdout)
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 10 (Main, 2 per child, Finished):\n%s", len(lines), stdout)
	}
	mainLine := regexp.MustCompile(`^Main: ([0-9]+)$`).FindStringSubmatch(lines[0])
	if mainLine == nil {
		t.Errorf("first line %q, want Main: <pid>", lines[0])
	}
	if !regexp.MustCompile(`^Finished in [0-9]+\.[0-9]{2} second\(s\)$`).MatchString(lines[9]) {
		t.Errorf("last line %q, want Finished in ...", lines[9])
	}
	// The children's lines come in any order; each child says both, with
	// its own pid, and no pid is the parent's.
	child := regexp.MustCompile(`^(Process-[0-9]+) \(pid ([0-9]+)\): (sleeping 0.25 second\(s\)|done sleeping for 0.25)$`)
	said := map[string][]string{}
	pids := map[string]string{}
	for _, l := range lines[1:9] {
		m := child.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unexpected line %q", l)
		}
		if m[2] == mainLine[1] {
			t.Errorf("child line %q has the parent's pid", l)
		}
		if p, ok := pids[m[1]]; ok && p != m[2] {
			t.Errorf("%s printed pids %s and %s", m[1], p, m[2])
		}
		pids[m[1]] = m[2]
		said[m[1]] = append(said[m[1]], m[3][:5])
	}
	if len(said) != 4 {
		t.Errorf("%d distinct children, want 4: %v", len(said), said)
	}
	for name, what := range said {
		if !slices.Equal(what, []string{"sleep", "done "}) {
			t.Errorf("%s said %v, want sleeping then done", name, what)
		}
		if _, err := strconv.Atoi(pids[name]); err != nil {
			t.Errorf("%s: bad pid %q", name, pids[name])
		}
	}
}

// runQuietly builds and runs the example and returns its stdout; the
// example must exit with status 0 and write nothing to stderr.
