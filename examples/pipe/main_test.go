package main

import (
	"slices"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/examples/internal/extest"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}

func TestPipeExample(t *testing.T) {
	got := extest.Lines(extest.RunQuiet(t))
	// proc2 prints before it answers, so its line comes first.
	want := []string{"proc2 rec: hello", "proc1 rec: hello, too", "data sent by the worker"}
	if !slices.Equal(got, want) {
		t.Fatalf("output %q, want %q", got, want)
	}
}
