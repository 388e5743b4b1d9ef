package multiproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// counter is the subclass form under test: Target and Args go to the
// child, Run fills in Sum, Seen and Pid there, and the parent reads them
// after Join.
type counter struct {
	Target string
	Args   []int
	Sum    int
	Seen   string
	Pid    int
	hidden int // unexported: stays behind
}

func (c *counter) Run(ctx context.Context) error {
	if c.Target != "sum" {
		return fmt.Errorf("counter: unknown target %q", c.Target)
	}
	for _, a := range c.Args {
		c.Sum += a
	}
	c.Seen = multiproc.CurrentProcess().Name
	c.Pid = os.Getpid()
	c.hidden = 99
	return nil
}

var counterType = multiproc.RegisterProcess[counter]("proc.counter")

func TestCurrentProcessInParent(t *testing.T) {
	self := multiproc.CurrentProcess()
	if self.Name != "MainProcess" || self.Pid != os.Getpid() || self.Daemon {
		t.Errorf("CurrentProcess() = %+v, want MainProcess with pid %d, not daemonic", self, os.Getpid())
	}
	if parent, ok := multiproc.ParentProcess(); ok {
		t.Errorf("ParentProcess() in the main process = %+v, true; want ok false", parent)
	}
}

func TestNames(t *testing.T) {
	defaultName := regexp.MustCompile(`^Process-[0-9]+$`)
	a := multiproc.NewProcess(whoAmI, struct{}{})
	b := multiproc.NewProcess(whoAmI, struct{}{})
	for _, p := range []*multiproc.Process{a, b} {
		if !defaultName.MatchString(p.Name) {
			t.Errorf("default name %q, want Process-N", p.Name)
		}
	}
	if a.Name == b.Name {
		t.Errorf("two processes share the default name %q", a.Name)
	}
	b.Name = "custom-name"
	for _, p := range []*multiproc.Process{a, b} {
		startProc(t, p)
		if err := p.Join(procCtx(t)); err != nil {
			t.Fatal(err)
		}
		id, err := multiproc.Result[identity](p)
		if err != nil {
			t.Fatal(err)
		}
		if id.Name != p.Name {
			t.Errorf("child sees CurrentProcess().Name = %q, want %q", id.Name, p.Name)
		}
		if id.Pid != p.Pid() {
			t.Errorf("child sees CurrentProcess().Pid = %d, parent's Pid() = %d", id.Pid, p.Pid())
		}
		if !id.HasParent || id.ParentPid != os.Getpid() || id.ParentName != "MainProcess" {
			t.Errorf("child sees ParentProcess() = {%q %d}, %v; want {MainProcess %d}, true", id.ParentName, id.ParentPid, id.HasParent, os.Getpid())
		}
	}
}

// TestNestedNames checks a grandchild's default name, "Process-N:M" as in
// Python, and that its parent is the child.
func TestNestedNames(t *testing.T) {
	p := multiproc.NewProcess(startChild, "")
	startProc(t, p)
	if err := p.Join(procCtx(t)); err != nil {
		t.Fatal(err)
	}
	id, err := multiproc.Result[identity](p)
	if err != nil {
		t.Fatal(err)
	}
	if want := regexp.MustCompile("^" + regexp.QuoteMeta(p.Name) + ":[0-9]+$"); !want.MatchString(id.Name) {
		t.Errorf("grandchild's default name %q, want %s:M", id.Name, p.Name)
	}
	if id.ParentPid != p.Pid() || id.ParentName != p.Name {
		t.Errorf("grandchild's parent = {%q %d}, want {%q %d}", id.ParentName, id.ParentPid, p.Name, p.Pid())
	}
}

func TestSubclass(t *testing.T) {
	c := &counter{Target: "sum", Args: []int{1, 2, 3, 4}, hidden: 1}
	p := multiproc.NewProcessOf(c)
	p.Name = "summer"
	startProc(t, p)
	if err := p.Join(procCtx(t)); err != nil {
		t.Fatal(err)
	}
	if c.Sum != 10 || c.Seen != "summer" || c.Pid != p.Pid() {
		t.Errorf("after Join: Sum %d, Seen %q, Pid %d; want 10, %q, %d", c.Sum, c.Seen, c.Pid, "summer", p.Pid())
	}
	if c.hidden != 1 {
		t.Errorf("unexported field changed to %d by the child, want it left at 1", c.hidden)
	}

	bad := &counter{Target: "nope"}
	p = multiproc.NewProcessOf(bad)
	startProc(t, p)
	err := p.Join(procCtx(t))
	var re *multiproc.RemoteError
	if !errors.As(err, &re) || re.Func != "proc.counter" || re.Message != `counter: unknown target "nope"` {
		t.Errorf("failing Run: Join = %v, want a RemoteError from proc.counter with Run's message", err)
	}
	if code, _ := p.ExitCode(); code != 1 {
		t.Errorf("failing Run: exit code %d, want 1", code)
	}
}

// tally is a pointer-free subclass, so it travels in the raw codec, which
// copies unexported fields too.
type tally struct {
	N, Sum int
	secret int
}

func (t *tally) Run(context.Context) error {
	t.Sum = t.N * (t.N + 1) / 2
	t.secret = -1
	return nil
}

var _ = multiproc.RegisterProcess[tally]("proc.tally")

// TestSubclassKeepsUnexportedFields guards the parent's unexported fields:
// Join copies back only the exported ones, whichever codec carried them.
func TestSubclassKeepsUnexportedFields(t *testing.T) {
	tl := &tally{N: 100, secret: 42}
	p := multiproc.NewProcessOf(tl)
	startProc(t, p)
	if err := p.Join(procCtx(t)); err != nil {
		t.Fatal(err)
	}
	if tl.Sum != 5050 || tl.secret != 42 {
		t.Errorf("after Join: Sum %d, secret %d; want 5050, 42", tl.Sum, tl.secret)
	}
}

type unregisteredRunner struct{}

func (*unregisteredRunner) Run(context.Context) error { return nil }

func TestSubclassUnregistered(t *testing.T) {
	p := multiproc.NewProcessOf(&unregisteredRunner{})
	err := p.Start(procCtx(t))
	if !errors.Is(err, multiproc.ErrNotRegistered) || !regexp.MustCompile(`unregisteredRunner`).MatchString(err.Error()) {
		t.Errorf("Start of an unregistered Runner = %v, want ErrNotRegistered naming the type", err)
	}
	if p.Pid() != 0 {
		t.Errorf("a child was started: pid %d", p.Pid())
	}
}

// TestFinish checks Python's exit semantics: Finish terminates daemonic
// children and waits for the others to end on their own.
func TestFinish(t *testing.T) {
	daemon := multiproc.NewProcess(blockForever, struct{}{})
	daemon.Daemon = true
	worker := multiproc.NewProcess(pause, 200*time.Millisecond)
	startProc(t, daemon)
	startProc(t, worker)
	multiproc.Finish()
	if daemon.IsAlive() || worker.IsAlive() {
		t.Fatalf("after Finish: daemon alive %v, worker alive %v", daemon.IsAlive(), worker.IsAlive())
	}
	wantExit(-15, syscall.SIGTERM)(t, daemon.Join(procCtx(t)))
	if err := worker.Join(procCtx(t)); err != nil {
		t.Errorf("non-daemonic process after Finish: %v, want it to have finished normally", err)
	}
	if pid, err := multiproc.Result[int](worker); err != nil || pid != worker.Pid() {
		t.Errorf("non-daemonic result = %d, %v; want %d", pid, err, worker.Pid())
	}
	if n := len(multiproc.ActiveChildren()); n != 0 {
		t.Errorf("%d active children after Finish", n)
	}
}

func TestDaemonCannotStartChildren(t *testing.T) {
	p := multiproc.NewProcess(startChild, "")
	p.Daemon = true
	startProc(t, p)
	err := p.Join(procCtx(t))
	if !errors.Is(err, multiproc.ErrDaemonChildren) {
		t.Fatalf("daemon starting a child: Join = %v, want an error matching ErrDaemonChildren", err)
	}
	if code, _ := p.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}

	q := multiproc.NewProcess(whoAmI, struct{}{})
	q.Daemon = true
	startProc(t, q)
	if err := q.Join(procCtx(t)); err != nil {
		t.Fatal(err)
	}
	if id, _ := multiproc.Result[identity](q); !id.Daemon {
		t.Errorf("daemonic child's CurrentProcess().Daemon = false")
	}
}

func TestActiveChildren(t *testing.T) {
	if n := len(multiproc.ActiveChildren()); n != 0 {
		t.Fatalf("%d active children before the test", n)
	}
	a := multiproc.NewProcess(blockForever, struct{}{})
	b := multiproc.NewProcess(blockForever, struct{}{})
	startProc(t, a)
	startProc(t, b)
	same := func(got []*multiproc.Process, want ...*multiproc.Process) bool {
		return len(got) == len(want) && !slices.ContainsFunc(want, func(p *multiproc.Process) bool { return !slices.Contains(got, p) })
	}
	if got := multiproc.ActiveChildren(); !same(got, a, b) {
		t.Errorf("ActiveChildren() has %d processes, want a and b", len(got))
	}
	a.Kill()
	a.Join(procCtx(t))
	if got := multiproc.ActiveChildren(); !same(got, b) {
		t.Errorf("ActiveChildren() after a was joined has %d processes, want b only", len(got))
	}
	b.Kill()
	b.Join(procCtx(t))
	if got := multiproc.ActiveChildren(); len(got) != 0 {
		t.Errorf("ActiveChildren() after both were joined has %d processes", len(got))
	}
}

// TestManyConcurrent starts and joins 50 processes from 50 goroutines at
// once; afterwards no child process is left (the package's leak check
// looks for goroutines and descriptors too).
func TestManyConcurrent(t *testing.T) {
	const n = 50
	ctx := procCtx(t)
	procs := make([]*multiproc.Process, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		procs[i] = multiproc.NewProcess(whoAmI, struct{}{})
		procs[i].Name = fmt.Sprintf("many-%02d", i)
		wg.Go(func() {
			if errs[i] = procs[i].Start(ctx); errs[i] == nil {
				errs[i] = procs[i].Join(ctx)
			}
		})
	}
	wg.Wait()
	pids := map[int]bool{}
	for i, p := range procs {
		if errs[i] != nil {
			t.Errorf("process %d: %v", i, errs[i])
			continue
		}
		id, err := multiproc.Result[identity](p)
		if err != nil || id.Name != p.Name || id.Pid != p.Pid() {
			t.Errorf("process %d: Result = %+v, %v; want name %q pid %d", i, id, err, p.Name, p.Pid())
		}
		pids[p.Pid()] = true
	}
	if len(pids) != n {
		t.Errorf("%d distinct pids for %d processes", len(pids), n)
	}
	// Joined means reaped: not running, not a zombie, gone from /proc.
	for pid := range pids {
		if state, ok := testutil.ProcessState(pid); ok {
			t.Errorf("process %d still exists after Join, state %c", pid, state)
		}
	}
	if n := len(multiproc.ActiveChildren()); n != 0 {
		t.Errorf("%d active children after joining all", n)
	}
}
