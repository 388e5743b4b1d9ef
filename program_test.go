package multiproc_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/testutil"
)

// These tests run this test binary as a whole program (see helper_test.go)
// and watch it from outside.

// TestStartWithoutMain runs a program that never called Main: Start must
// fail with ErrNoMain, whose message says what line to add, and start
// nothing.
func TestStartWithoutMain(t *testing.T) {
	stdout, stderr, err := runHelperProgram(t, helperNoMain)
	if err != nil {
		t.Fatalf("helper: %v; stderr:\n%s", err, stderr)
	}
	for _, want := range []string{"is ErrNoMain: true\n", "pid: 0\n", "add `multiproc.Main()` as the first line of main()"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestStartInChildBeforeMain runs the same program as if it were a
// re-executed child that has not reached Main yet (code in package
// initialisation, or before Main in main): Start must refuse, which is what
// makes a fork bomb impossible.
func TestStartInChildBeforeMain(t *testing.T) {
	stdout, stderr, err := runHelperProgram(t, helperNoMain, "MULTIPROC_CHILD=1")
	if err != nil {
		t.Fatalf("helper: %v; stderr:\n%s", err, stderr)
	}
	for _, want := range []string{"is ErrNoMain: true\n", "pid: 0\n", "would recurse"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestChildOutputReachesParent checks that a child's stdout and stderr are
// the parent's, like Python's print in a child.
func TestChildOutputReachesParent(t *testing.T) {
	stdout, stderr, err := runHelperProgram(t, "print")
	if err != nil {
		t.Fatalf("helper: %v; stderr:\n%s", err, stderr)
	}
	if want := "parent: starting\nchild printer says hello\nparent: joined\n"; stdout != want {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	if want := "child printer writes to stderr\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
}

// TestChildRunByHand runs the binary the way a confused user might: marked
// as a child but without a parent on the other end of fd 3. It must explain
// and exit with status 2, never wait.
func TestChildRunByHand(t *testing.T) {
	tests := []struct {
		name  string
		fd3   func(t *testing.T) *os.File // nil: no fd 3 at all
		wants []string
	}{
		{"no fd 3", nil, []string{"started as a multiproc child", "MULTIPROC_CHILD", "run it without"}},
		{"fd 3 not a socket", func(t *testing.T) *os.File {
			f, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}, []string{"not a socket", "run it without"}},
		{"silent peer hangs up", func(t *testing.T) *os.File {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			syscall.Close(fds[1]) // the "parent" is gone before saying anything
			return os.NewFile(uintptr(fds[0]), "socket")
		}, []string{"no start message"}},
		{"garbage from peer", func(t *testing.T) *os.File {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			syscall.Write(fds[1], []byte("GET / HTTP/1.1\r\n\r\n"))
			syscall.Close(fds[1])
			return os.NewFile(uintptr(fds[0]), "socket")
		}, []string{"no start message"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), procDeadline)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(helperEnviron(), "MULTIPROC_CHILD=1")
			if tt.fd3 != nil {
				f := tt.fd3(t)
				defer f.Close()
				cmd.ExtraFiles = []*os.File{f}
			}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("child run by hand still running after %v", procDeadline)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v, want exit status 2", err)
			}
			for _, want := range tt.wants {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing: stdout belongs to user code", stdout.String())
			}
			t.Logf("exited after %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestCtrlC runs a program with three blocked children in a process group
// of its own and sends SIGINT to the group, as a terminal does on Ctrl-C:
// the program must end promptly, nothing may be printed by the children, and
// no child may survive.
func TestCtrlC(t *testing.T) {
	stderrFile, err := os.Create(t.TempDir() + "/stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer stderrFile.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(helperEnviron(), helperEnv+"=ctrl-c")
	cmd.Stderr = stderrFile // a file, not a pipe: Wait returns when the program exits
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	reaped := false
	// Whatever happens, take the whole group down before the test ends.
	defer func() {
		syscall.Kill(-pgid, syscall.SIGKILL)
		if !reaped {
			<-exited
		}
	}()

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(procDeadline):
		t.Fatalf("the program did not report its children within %v", procDeadline)
	}
	fields := strings.Fields(line)
	if len(fields) != 4 || fields[0] != "ready" {
		t.Fatalf("program said %q, want \"ready\" and 3 pids", line)
	}
	var pids []int
	for _, f := range fields[1:] {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("bad pid %q", f)
		}
		if !testutil.ProcessAlive(pid) {
			t.Fatalf("child %d not running before Ctrl-C", pid)
		}
		pids = append(pids, pid)
	}

	sent := time.Now()
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-exited:
		reaped = true
	case <-time.After(procDeadline):
		t.Fatalf("program still running %v after SIGINT", procDeadline)
	}
	t.Logf("program exited %v after SIGINT: %v", time.Since(sent).Round(time.Millisecond), err)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !(ws.Signaled() && ws.Signal() == syscall.SIGINT) && ws.ExitStatus() != 130 {
		t.Errorf("program ended with %v, want death by SIGINT (or exit status 130)", cmd.ProcessState)
	}
	testutil.WaitFor(t, procDeadline, func() bool {
		for _, pid := range pids {
			if testutil.ProcessAlive(pid) {
				return false
			}
		}
		return true
	}, "children %v still running after Ctrl-C", pids)
	noise, err := os.ReadFile(stderrFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(noise) != 0 {
		t.Errorf("stderr after Ctrl-C is not empty:\n%s", noise)
	}
}
