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

func TestSubclassExample(t *testing.T) {
	stdout := extest.RunQuiet(t)
	lines := extest.Lines(stdout)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), stdout)
	}
	m := regexp.MustCompile(`^([0-9]+) Sleeping 0.25 second\(s\)$`).FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("line 1 = %q, want <pid> Sleeping 0.25 second(s)", lines[0])
	}
	pid := m[1]
	want := []string{
		pid + " Done sleeping for 0.25",
		fmt.Sprintf("child %s ran; result: slept 0.25 second(s) in pid %s", pid, pid),
	}
	for i, w := range want {
		if lines[i+1] != w {
			t.Errorf("line %d = %q, want %q", i+2, lines[i+1], w)
		}
	}
	if !regexp.MustCompile(`^Finished in [0-9]+\.[0-9]{2} second\(s\)$`).MatchString(lines[3]) {
		t.Errorf("last line %q, want Finished in ...", lines[3])
	}
}

// runQuietly builds and runs the example and returns its stdout; the
// example must exit with status 0 and write nothing to stderr.
