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

func TestDaemonExample(t *testing.T) {
	stdout := extest.RunQuiet(t)
	const want = `Starting: non-daemon
Exiting : non-daemon
daemon: daemon=true exit code -15, joined: multiproc: process PID was killed by signal 15 (terminated): stopped by Finish, ending a daemonic process with its parent
non-daemon: daemon=false exit code 0, joined: <nil>
`
	if got := pidRE.ReplaceAllString(stdout, "process PID "); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
}

var pidRE = regexp.MustCompile(`process [0-9]+ `)

// runQuietly builds and runs the example and returns its stdout; the
// example must exit with status 0 and write nothing to stderr.
