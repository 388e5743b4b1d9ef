package multiproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// procDeadline bounds every wait of these tests. It is generous: starting a
// race-enabled test binary many times on a loaded 2-core machine is slow,
// and the time is only spent when a test fails.
const procDeadline = 60 * time.Second

// procCtx returns a context that ends at the test's deadline.
func procCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procDeadline)
	t.Cleanup(cancel)
	return ctx
}

// identity is what a child knows about itself and its parent.
type identity struct {
	Name       string
	Pid        int
	Daemon     bool
	ParentName string
	ParentPid  int
	HasParent  bool
}

var (
	whoAmI = multiproc.Register("proc.whoAmI", func(context.Context, struct{}) (identity, error) {
		self := multiproc.CurrentProcess()
		parent, ok := multiproc.ParentProcess()
		return identity{
			Name: self.Name, Pid: self.Pid, Daemon: self.Daemon,
			ParentName: parent.Name, ParentPid: parent.Pid, HasParent: ok,
		}, nil
	})

	// exitHow ends the way its argument says: returning a value, an error,
	// panicking or calling os.Exit.
	exitHow = multiproc.Register("proc.exitHow", func(_ context.Context, how string) (string, error) {
		switch how {
		case "error":
			return "", errors.New("asked to fail")
		case "panic":
			panic("asked to panic")
		case "exit7":
			os.Exit(7)
		}
		return "returned " + how, nil
	})

	// blockForever runs until the process is signalled.
	blockForever = multiproc.Register("proc.blockForever", func(ctx context.Context, _ struct{}) (struct{}, error) {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Minute): // workload bound, in case a test leaks it
		}
		return struct{}{}, nil
	})

	// pause is a short fixed workload.
	pause = multiproc.Register("proc.pause", func(_ context.Context, d time.Duration) (int, error) {
		time.Sleep(d)
		return os.Getpid(), nil
	})

	printer = multiproc.Register("proc.printer", multiproc.NoContext(func(msg string) (struct{}, error) {
		self := multiproc.CurrentProcess()
		fmt.Printf("child %s says %s\n", self.Name, msg)
		fmt.Fprintf(os.Stderr, "child %s writes to stderr\n", self.Name)
		return struct{}{}, nil
	}))

	// startChild starts a process of its own (running whoAmI) and returns
	// the child's identity, or the error of Start or Join.
	startChild = multiproc.Register("proc.startChild", func(ctx context.Context, name string) (identity, error) {
		p := multiproc.NewProcess(whoAmI, struct{}{})
		if name != "" {
			p.Name = name
		}
		if err := p.Start(ctx); err != nil {
			return identity{}, err
		}
		if err := p.Join(ctx); err != nil {
			return identity{}, err
		}
		return multiproc.Result[identity](p)
	})
)

// startProc starts p and registers a cleanup that kills and joins it.
func startProc(t *testing.T, p *multiproc.Process) {
	t.Helper()
	if err := p.Start(procCtx(t)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		p.Kill()
		p.Join(context.Background())
	})
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		how      string
		wantCode int
		check    func(t *testing.T, err error)
	}{
		{name: "success", how: "ok", wantCode: 0, check: func(t *testing.T, err error) {
			if err != nil {
				t.Errorf("Join = %v, want nil", err)
			}
		}},
		{name: "error", how: "error", wantCode: 1, check: wantRemote(false, "asked to fail")},
		{name: "panic", how: "panic", wantCode: 1, check: wantRemote(true, "asked to panic")},
		{name: "os.Exit", how: "exit7", wantCode: 7, check: wantExit(7, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := multiproc.NewProcess(exitHow, tt.how)
			startProc(t, p)
			err := p.Join(procCtx(t))
			tt.check(t, err)
			code, ok := p.ExitCode()
			if !ok || code != tt.wantCode {
				t.Errorf("ExitCode() = %d, %v; want %d, true", code, ok, tt.wantCode)
			}
		})
	}
	signals := []struct {
		name     string
		send     func(*multiproc.Process) error
		wantCode int
		wantSig  syscall.Signal
	}{
		{"Terminate", (*multiproc.Process).Terminate, -15, syscall.SIGTERM},
		{"Kill", (*multiproc.Process).Kill, -9, syscall.SIGKILL},
	}
	for _, tt := range signals {
		t.Run(tt.name, func(t *testing.T) {
			p := multiproc.NewProcess(blockForever, struct{}{})
			startProc(t, p)
			if err := tt.send(p); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			wantExit(tt.wantCode, tt.wantSig)(t, p.Join(procCtx(t)))
			if code, ok := p.ExitCode(); !ok || code != tt.wantCode {
				t.Errorf("ExitCode() = %d, %v; want %d, true", code, ok, tt.wantCode)
			}
		})
	}
}

func wantRemote(panicked bool, msg string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var re *multiproc.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("Join = %v (%T), want a *RemoteError", err, err)
		}
		if re.Panic != panicked || !strings.Contains(re.Message, msg) {
			t.Errorf("RemoteError{Panic: %v, Message: %q}, want Panic %v and a message containing %q", re.Panic, re.Message, panicked, msg)
		}
	}
}

func wantExit(code int, sig syscall.Signal) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ee *multiproc.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("Join = %v (%T), want an *ExitError", err, err)
		}
		if ee.Code != code || ee.Signal != sig {
			t.Errorf("ExitError{Code: %d, Signal: %v}, want {%d, %v}", ee.Code, ee.Signal, code, sig)
		}
		if errors.Is(err, multiproc.ErrWorkerDied) {
			t.Errorf("a Process's ExitError matches ErrWorkerDied; only pool workers' should")
		}
	}
}

func TestResult(t *testing.T) {
	p := multiproc.NewProcess(exitHow, "fine")
	if _, err := multiproc.Result[string](p); !errors.Is(err, multiproc.ErrNotStarted) {
		t.Errorf("Result before Start = %v, want ErrNotStarted", err)
	}
	startProc(t, p)
	if err := p.Join(procCtx(t)); err != nil {
		t.Fatal(err)
	}
	got, err := multiproc.Result[string](p)
	if err != nil || got != "returned fine" {
		t.Errorf("Result = %q, %v; want %q, nil", got, err, "returned fine")
	}
	if _, err := multiproc.Result[int](p); err == nil {
		t.Errorf("Result[int] of a function returning string succeeded")
	}
}

// TestSignalsIdempotent guards Terminate and Kill: repeating them, mixing
// them and calling them after the process was reaped is harmless, and the
// exit code stays the first signal's.
func TestSignalsIdempotent(t *testing.T) {
	p := multiproc.NewProcess(blockForever, struct{}{})
	if err := p.Terminate(); !errors.Is(err, multiproc.ErrNotStarted) {
		t.Errorf("Terminate before Start = %v, want ErrNotStarted", err)
	}
	if err := p.Kill(); !errors.Is(err, multiproc.ErrNotStarted) {
		t.Errorf("Kill before Start = %v, want ErrNotStarted", err)
	}
	startProc(t, p)
	for i := range 3 {
		if err := p.Terminate(); err != nil {
			t.Fatalf("Terminate #%d: %v", i+1, err)
		}
	}
	wantExit(-15, syscall.SIGTERM)(t, p.Join(procCtx(t)))
	for i := range 3 {
		if err := p.Terminate(); err != nil {
			t.Errorf("Terminate #%d after exit: %v", i+1, err)
		}
		if err := p.Kill(); err != nil {
			t.Errorf("Kill #%d after exit: %v", i+1, err)
		}
	}
	if code, _ := p.ExitCode(); code != -15 {
		t.Errorf("ExitCode after more signals = %d, want -15", code)
	}
	if p.IsAlive() {
		t.Errorf("IsAlive after Join = true")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Kill(); !errors.Is(err, multiproc.ErrClosed) {
		t.Errorf("Kill after Close = %v, want ErrClosed", err)
	}
	if err := p.Start(procCtx(t)); !errors.Is(err, multiproc.ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	wantExit(-15, syscall.SIGTERM)(t, p.Join(procCtx(t))) // Join still reports the outcome
}

func TestStartTwiceAndCloseRunning(t *testing.T) {
	p := multiproc.NewProcess(blockForever, struct{}{})
	startProc(t, p)
	if err := p.Start(procCtx(t)); !errors.Is(err, multiproc.ErrAlreadyStarted) {
		t.Errorf("second Start = %v, want ErrAlreadyStarted", err)
	}
	if err := p.Close(); !errors.Is(err, multiproc.ErrStillRunning) {
		t.Errorf("Close of a running process = %v, want ErrStillRunning", err)
	}
	if _, err := multiproc.Result[struct{}](p); !errors.Is(err, multiproc.ErrStillRunning) {
		t.Errorf("Result of a running process = %v, want ErrStillRunning", err)
	}
}

func TestJoinTimeout(t *testing.T) {
	p := multiproc.NewProcess(blockForever, struct{}{})
	startProc(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.Join(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Join with an expiring context = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), p.Name) {
		t.Errorf("Join error %q does not name the process %q", err, p.Name)
	}
	if !p.IsAlive() || !testutil.ProcessAlive(p.Pid()) {
		t.Fatalf("process not running after a Join timeout")
	}
	if _, ok := p.ExitCode(); ok {
		t.Errorf("ExitCode reports an exit after a Join timeout")
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	wantExit(-9, syscall.SIGKILL)(t, p.Join(procCtx(t)))
}

// TestParentKillTakesChildren kills a process whose target started two
// processes of its own: both grandchildren must die with it (parent-death
// signal and control-socket EOF), leaving nothing running.
func TestParentKillTakesChildren(t *testing.T) {
	path := t.TempDir() + "/pids"
	p := multiproc.NewProcess(startTree, path)
	startProc(t, p)
	var data []byte
	testutil.WaitFor(t, procDeadline, func() bool {
		var err error
		data, err = os.ReadFile(path)
		return err == nil || !p.IsAlive()
	}, "the middle process did not report its children's pids")
	if !p.IsAlive() {
		t.Fatalf("middle process ended early: %v", p.Join(procCtx(t)))
	}
	var pids []int
	for f := range strings.FieldsSeq(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("bad pid file %q", data)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 2 {
		t.Fatalf("pid file %q: want 2 pids", data)
	}
	for _, pid := range pids {
		if !testutil.ProcessAlive(pid) {
			t.Fatalf("grandchild %d not running before the kill", pid)
		}
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	wantExit(-9, syscall.SIGKILL)(t, p.Join(procCtx(t)))
	testutil.WaitFor(t, procDeadline, func() bool {
		return !testutil.ProcessAlive(pids[0]) && !testutil.ProcessAlive(pids[1])
	}, "grandchildren %v still running after their parent was killed", pids)
}

// startTree starts two processes that block forever, writes their pids to
// the file named by its argument (atomically, by renaming), then blocks
// until it is killed.
var startTree = multiproc.Register("proc.startTree", func(ctx context.Context, path string) (struct{}, error) {
	var pids []string
	for range 2 {
		p := multiproc.NewProcess(blockForever, struct{}{})
		if err := p.Start(ctx); err != nil {
			return struct{}{}, err
		}
		pids = append(pids, strconv.Itoa(p.Pid()))
	}
	if err := os.WriteFile(path+".tmp", []byte(strings.Join(pids, " ")), 0o600); err != nil {
		return struct{}{}, err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return struct{}{}, err
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Minute): // workload bound: the test kills it
	}
	return struct{}{}, nil
})
