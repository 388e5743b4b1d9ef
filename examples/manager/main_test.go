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

func TestManagerExample(t *testing.T) {
	got := extest.RunQuiet(t)
	const want = "3.14\n[5 1 2 3 4 5 6 7 8 9]\n[Hello]\n[0 1 2 3]\n[1 100 3]\nmap[a:Initial b:Updated]\n"
	if got != want {
		t.Fatalf("printed\n%s\nwant\n%s", got, want)
	}
}
