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

func TestNamespaceExample(t *testing.T) {
	got := extest.RunQuiet(t)
	const want = "Namespace(count=1, x=10, y=\"hello\")\nmanager: Namespace.Get: manager: object of another type: attribute \"x\" holds a int, not a string\n"
	if got != want {
		t.Fatalf("printed\n%s\nwant\n%s", got, want)
	}
}
