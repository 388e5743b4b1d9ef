package main

import (
	"os/exec"
	"slices"
	"testing"

	"github.com/multiproc-go/multiproc/examples/internal/extest"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Run(m) }

func TestPyconnExample(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 on PATH")
	}
	got := extest.Lines(extest.RunQuiet(t))
	want := []string{"go received: hello from python", "go received: HELLO FROM GO", "then: EOF"}
	if !slices.Equal(got, want) {
		t.Fatalf("output %q, want %q", got, want)
	}
}
