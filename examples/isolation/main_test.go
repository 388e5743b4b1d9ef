package main

import (
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/examples/internal/extest"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}

func TestIsolationExample(t *testing.T) {
	r := extest.Exec(t, extest.Build(t))
	if r.Err != nil {
		t.Fatalf("example failed: %v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
	}
	if strings.HasPrefix(r.Stdout, "cgroups are not available here") {
		t.Skip(strings.TrimSpace(r.Stdout))
	}
	const want = `small leak (64 MiB):
  kept 64 MiB, err = <nil>
big leak (4 GiB):
  the worker died: out of memory
  errors.Is(err, ErrWorkerDied): true
  errors.Is(err, ErrOutOfMemory): true
the pool carries on:
  [1 4 9 16] <nil>
  workers restarted: 1
`
	if r.Stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.Stdout, want)
	}
	if !strings.Contains(r.Stderr, "OOM killer") {
		t.Errorf("stderr %q should carry the whole error, naming the OOM killer", r.Stderr)
	}
}
