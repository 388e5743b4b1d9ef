package testutil

import "io"

// Exports for the black-box tests in package testutil_test, which need to
// run one round of checks and read its report instead of exiting.

type (
	Report   = report
	Proc     = proc
	FD       = fd
	Baseline = baseline
	Runner   = runner
)

// Snapshot takes a baseline as Run does before the tests.
func Snapshot() (*Baseline, error) { return snapshot() }

// Check polls as Run does after the tests and returns what is left.
func Check(b *Baseline, opts ...Option) *Report { return check(b, newOptions(opts)) }

// RunCode is Run without the exit: it returns the exit code Run would use.
func RunCode(m Runner, stderr io.Writer, opts ...Option) int { return run(m, stderr, opts...) }

// Empty reports whether nothing leaked.
func (r *report) Empty() bool { return r.empty() }

// MarkerEnv is the variable that marks this process's descendants.
const MarkerEnv = markerEnv
