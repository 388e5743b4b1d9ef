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

func TestConditionExample(t *testing.T) {
	lines := extest.Lines(extest.RunQuiet(t))
	if len(lines) != 4 || lines[0] != "work is ready: notifying all" {
		t.Fatalf("output %q: want the parent's line first, then 3 workers", lines)
	}
	for _, l := range lines[1:] {
		if !regexp.MustCompile(`^Process-[0-9]+ continues processing$`).MatchString(l) {
			t.Fatalf("unexpected line %q", l)
		}
	}
}
