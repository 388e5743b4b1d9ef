package main

import (
	"regexp"
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

// TestOutput runs the example and checks that each failure reached the
// caller as the example says: returned errors with their sentinel, type and
// message; a panic with the stack down to the task's line; map and
// error_callback; and a dying worker failing only its own task while the
// pool goes on.
func TestOutput(t *testing.T) {
	out := extest.Run(t, extest.Build(t))
	// Pids vary from run to run: match them with \d+. Each pattern must
	// match a whole line, and the lines must come in this order.
	want := []string{
		`== pool\.apply\(sqrt, \(-4,\)\): the task returns an error`,
		`caught: multiproc: "exceptions\.sqrt" in pid \d+: sqrt\(-4\): negative number`,
		`errors\.Is\(err, ErrNegative\): true`,
		`remote function: exceptions\.sqrt`,
		`remote type: \*fmt\.wrapError`,
		`remote message: sqrt\(-4\): negative number`,
		`raised in another process: true`,

		`== pool\.apply\(third, \(\[1, 2\],\)\): the task panics`,
		`caught: multiproc: panic in "exceptions\.third" in pid \d+: runtime error: index out of range \[2\] with length 2`,
		`panic: true`,
		`remote stack, from the panic to the task:`,
		`    panic\(.*\)`,
		`    \t.*/runtime/panic\.go:\d+ .*`,
		`    main\.init\.func\d+\(.*\)`,
		`    \t.*/examples/exceptions/main\.go:\d+ .*`,

		`== pool\.map\(sqrt, \[4, 1, -9, 16\]\)`,
		`caught: multiproc: "exceptions\.sqrt" in pid \d+: sqrt\(-9\): negative number`,
		`errors\.Is\(err, ErrNegative\): true`,

		`== pool\.apply_async\(sqrt, \(-1,\), callback=\.\.\., error_callback=\.\.\.\)`,
		`error_callback: multiproc: "exceptions\.sqrt" in pid \d+: sqrt\(-1\): negative number`,

		`== apply_async\(work, \(x,\)\) for x in \[0\.\.4, -1, 5\.\.8\]: -1 makes the worker exit\(3\)`,
		`work\(-1\): multiproc: worker \d+ exited with code 3: while running task "exceptions\.work": user code called os\.Exit\(3\)`,
		`exit code: 3`,
		`the other tasks: \[0 1 4 9 16 25 36 49 64\]`,
		`the pool keeps working: map\(work, \[10, 11, 12\]\) = \[100 121 144\]`,
		`stats: 1 task died with its worker, 1 worker restarted`,
	}
	lines := extest.Lines(out)
	if len(lines) != len(want) {
		t.Errorf("got %d lines, want %d", len(lines), len(want))
	}
	for i := range min(len(lines), len(want)) {
		if !regexp.MustCompile(`^` + want[i] + `$`).MatchString(lines[i]) {
			t.Errorf("line %d:\n got %q\nwant %s", i+1, lines[i], want[i])
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", strings.Join(lines, "\n"))
	}
}
