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

func TestNamesExample(t *testing.T) {
	stdout := extest.RunQuiet(t)
	lines := extest.Lines(stdout)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), stdout)
	}
	m := regexp.MustCompile(`^MainProcess \(pid ([0-9]+)\)$`).FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("line 1 = %q, want MainProcess (pid N)", lines[0])
	}
	parent := m[1]
	pids := map[string]bool{parent: true}
	for i, name := range []string{"my_service", "worker 1", "Process-3"} {
		q := regexp.QuoteMeta(name)
		re := regexp.MustCompile(fmt.Sprintf(`^%s: %s \(pid ([0-9]+)\), child of MainProcess \(pid %s\)$`, q, q, parent))
		m := re.FindStringSubmatch(lines[i+1])
		if m == nil {
			t.Errorf("line %d = %q, want %s describing itself as a child of MainProcess (pid %s)", i+2, lines[i+1], name, parent)
			continue
		}
		if pids[m[1]] {
			t.Errorf("pid %s appears twice", m[1])
		}
		pids[m[1]] = true
	}
}

// runQuietly builds and runs the example and returns its stdout; the
// example must exit with status 0 and write nothing to stderr.
