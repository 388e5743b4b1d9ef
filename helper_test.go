package multiproc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
)

// helperEnv makes the test binary run one of the small programs below
// instead of its tests, for tests that must watch a whole program from
// outside: its stdout, its exit, a signal to its process group. The value
// names the program. Children of a helper inherit the variable but never
// reach it: their Main serves their role and exits.
const helperEnv = "MULTIPROC_TEST_HELPER"

// helperNoMain is the helper that must reach Start without Main having run;
// TestMain skips Main for it.
const helperNoMain = "no-main"

// helpers are the programs TestMain runs when helperEnv is set. Each
// returns the program's exit status.
var helpers = map[string]func() int{
	helperNoMain: helperStartWithoutMain,
	"print":      helperPrint,
	"ctrl-c":     helperCtrlC,
}

// runHelper runs the helper program named by helperEnv, if any, and exits.
func runHelper(name string) {
	h, ok := helpers[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, name)
		os.Exit(2)
	}
	os.Exit(h())
}

// helperStartWithoutMain tries to start a process in a program that did
// not call Main and prints what Start said.
func helperStartWithoutMain() int {
	p := multiproc.NewProcess(whoAmI, struct{}{})
	err := p.Start(context.Background())
	fmt.Printf("is ErrNoMain: %v\n", errors.Is(err, multiproc.ErrNoMain))
	fmt.Printf("pid: %d\n", p.Pid())
	fmt.Printf("error: %v\n", err)
	if err == nil {
		p.Kill()
		p.Join(context.Background())
	}
	return 0
}

// helperPrint starts a process that prints to stdout and stderr, like
// Python's print in a child.
func helperPrint() int {
	fmt.Println("parent: starting")
	p := multiproc.NewProcess(printer, "hello")
	p.Name = "printer"
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := p.Join(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("parent: joined")
	return 0
}

// helperCtrlC starts three processes that block, reports their pids on
// stdout and waits to be interrupted, as a program does when its user
// presses Ctrl-C.
func helperCtrlC() int {
	ctx := context.Background()
	var pids []string
	for range 3 {
		p := multiproc.NewProcess(blockForever, struct{}{})
		if err := p.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		pids = append(pids, fmt.Sprint(p.Pid()))
	}
	fmt.Printf("ready %s\n", strings.Join(pids, " "))
	time.Sleep(time.Minute) // workload: the test interrupts it long before
	return 0
}

// runHelperProgram runs this test binary as helper program name with the
// extra environment env and returns its stdout and stderr. It fails the test
// if the program does not finish within the deadline.
func runHelperProgram(t *testing.T, name string, env ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(helperEnviron(), append([]string{helperEnv + "=" + name}, env...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("helper %q did not finish within %v; stdout %q, stderr %q", name, procDeadline, out.String(), errOut.String())
	}
	return out.String(), errOut.String(), err
}

// helperEnviron is this process's environment without the variables that
// would make the helper something else than a fresh program.
func helperEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, helperEnv+"=") || strings.HasPrefix(kv, "MULTIPROC_CHILD=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
