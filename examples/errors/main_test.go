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

func TestErrorsExample(t *testing.T) {
	stdout := extest.RunQuiet(t)
	const want = `share(4): exit code 0
  result: 25
share(-1): exit code 1
  Error: multiproc: "share" in pid PID: an error occurred in worker: -1 people: invalid value
  remote type: *fmt.wrapError
  remote message: an error occurred in worker: -1 people: invalid value
  errors.Is(err, ErrInvalidValue): true
share(0): exit code 1
  Error: multiproc: panic in "share" in pid PID: runtime error: integer divide by zero
  remote type: panic
  remote message: runtime error: integer divide by zero
  errors.Is(err, ErrInvalidValue): false
  panicked in: main.divide
`
	if got := regexp.MustCompile(`pid [0-9]+`).ReplaceAllString(stdout, "pid PID"); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
}

// runQuietly builds and runs the example and returns its stdout; the
// example must exit with status 0 and write nothing to stderr.
