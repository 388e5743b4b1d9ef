package main

import (
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/examples/internal/extest"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}

func TestQueueExample(t *testing.T) {
	const want = "Hello from worker\nError: An error occurred in worker\n"
	if out := extest.RunQuiet(t); out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
}
