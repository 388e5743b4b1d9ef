// Package extest builds and runs the programs under examples/ for their
// tests: each test builds its example with the go command, as a user would,
// runs the binary and checks what it prints.
//
// When the test itself is built with -race, the example is too, so a data
// race in the example or in the library's parent side fails the test (a
// race-enabled program exits with status 66 after a report).
//
// It deliberately does not share the test binary as the worker: the point is
// to run the program exactly as `go run ./examples/…` would.
package extest

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runTimeout bounds one run of an example, so that a hang fails the test
// with the output so far instead of waiting for go test's own timeout.
const runTimeout = 2 * time.Minute

// Build builds the main package in the test's working directory (the
// example's directory, where go test runs its tests) into a temporary
// directory and returns the binary's path.
func Build(t testing.TB) string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "example")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(gocmd, append(args, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	return bin
}

// Result is what one run of an example printed and how it ended.
type Result struct {
	Stdout, Stderr string
	Err            error // nil when the program exited with status 0
}

// Exec runs bin with args and returns its output, whatever the exit status.
// It fails the test only if the program could not be started or ran longer
// than two minutes.
func Exec(t testing.TB, bin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %q: %v in %v", filepath.Base(bin), args, exitStatus(err), time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		t.Fatalf("killed after %v\nstdout:\n%s\nstderr:\n%s", runTimeout, &stdout, &stderr)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running %s: %v", bin, err)
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// Run runs bin with args, fails the test unless it exits with status 0, and
// returns its standard output. The output is logged, so `go test -v` shows
// what the example printed.
func Run(t testing.TB, bin string, args ...string) string {
	t.Helper()
	r := Exec(t, bin, args...)
	t.Logf("stdout:\n%s", r.Stdout)
	if r.Stderr != "" {
		t.Logf("stderr:\n%s", r.Stderr)
	}
	if r.Err != nil {
		t.Fatalf("%s %q: %v", filepath.Base(bin), args, r.Err)
	}
	return r.Stdout
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Lines splits output into lines, without the final empty one.
func Lines(out string) []string {
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// RunQuiet builds the example in the current directory, runs it with args
// and fails the test unless it exits with status 0 and writes nothing to
// standard error (no noise from any child). It returns standard output.
func RunQuiet(t testing.TB, args ...string) string {
	t.Helper()
	r := Exec(t, Build(t), args...)
	if r.Err != nil || r.Stderr != "" {
		t.Fatalf("example: %v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
	}
	return r.Stdout
}
