package multiproc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/internal/testutil/cgocrash"
)

// The functions the isolation tests run in workers, each triggering one
// way for a worker to fail on purpose (issue 14).
var (
	isoPid = multiproc.Register("iso.pid", multiproc.Plain(func(struct{}) int { return os.Getpid() }))
	// isoAlloc allocates mb MiB and touches every page, keeping it live.
	isoAlloc = multiproc.Register("iso.alloc", multiproc.Plain(func(mb int) int {
		b := make([]byte, mb<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		return len(b) + int(b[len(b)-1])
	}))
	// isoSpin burns CPU and never looks at its context.
	isoSpin = multiproc.Register("iso.spin", multiproc.Plain(func(struct{}) int {
		for x := 1; ; x++ {
			if x == 0 {
				return x
			}
		}
	}))
	// isoOpen opens /dev/null n times, then closes them all.
	isoOpen = multiproc.Register("iso.open", func(_ context.Context, n int) (int, error) {
		var fs []*os.File
		defer func() {
			for _, f := range fs {
				f.Close()
			}
		}()
		for i := range n {
			f, err := os.Open("/dev/null")
			if err != nil {
				return i, fmt.Errorf("opening file %d: %w", i, err)
			}
			fs = append(fs, f)
		}
		return n, nil
	})
	isoExit  = multiproc.Register("iso.exit", multiproc.Plain(func(code int) int { os.Exit(code); return 0 }))
	isoFault = multiproc.Register("iso.fault", multiproc.Plain(func(struct{}) int {
		addr := uintptr(0xdead0000) // a variable: the constant does not fit a 32-bit int
		*(*int)(unsafe.Add(unsafe.Pointer(nil), addr)) = 1
		return 0
	}))
	isoGoPanic = multiproc.Register("iso.gopanic", func(ctx context.Context, _ struct{}) (int, error) {
		go func() { panic("boom in a goroutine the task started") }()
		<-ctx.Done()
		return 0, ctx.Err()
	})
	isoCgo = multiproc.Register("iso.cgo", multiproc.Plain(func(struct{}) int { cgocrash.Segfault(); return 0 }))
	// isoSleep creates the file marker, then sleeps for d.
	isoSleep = multiproc.Register("iso.sleep", func(ctx context.Context, a isoSleepArg) (int, error) {
		os.WriteFile(a.Marker, nil, 0o644)
		select {
		case <-time.After(a.D):
		case <-ctx.Done():
		}
		return os.Getpid(), nil
	})
	isoProbe = multiproc.Register("iso.probe", multiproc.Plain(func(struct{}) isoProbeResult {
		var r isoProbeResult
		r.MemLimit = debug.SetMemoryLimit(-1)
		r.MaxProcs = runtime.GOMAXPROCS(0)
		var rl syscall.Rlimit
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
		r.NoFileCur, r.NoFileMax = rl.Cur, rl.Max
		syscall.Getrlimit(syscall.RLIMIT_CORE, &rl)
		r.CoreMax = rl.Max
		r.Nice = threadNices()
		return r
	}))
	isoPrint = multiproc.Register("iso.print", func(_ context.Context, fail bool) (int, error) {
		fmt.Println("line on stdout")
		fmt.Fprintln(os.Stderr, "line on stderr")
		if fail {
			return 0, errors.New("failed after printing")
		}
		return 1, nil
	})
)

type isoSleepArg struct {
	D      time.Duration
	Marker string
}

type isoProbeResult struct {
	MemLimit             int64
	MaxProcs             int
	NoFileCur, NoFileMax uint64
	CoreMax              uint64
	Nice                 []int // of every thread
}

// threadNices reads the nice value of every thread of this process.
func threadNices() []int {
	ents, _ := os.ReadDir("/proc/self/task")
	var ns []int
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 16 {
			n, _ := strconv.Atoi(f[16]) // field 19, nice
			ns = append(ns, n)
		}
	}
	return ns
}

// mustServe checks that p still runs tasks after a failure.
func mustServe(t *testing.T, p *multiproc.Pool) {
	t.Helper()
	if _, err := multiproc.Apply(ctxT(t), p, isoPid, struct{}{}); err != nil {
		t.Fatalf("the pool stopped serving after the failure: %v", err)
	}
}

// deathOf checks that err is a worker's death matching cause and returns
// its ExitError.
func deathOf(t *testing.T, err error, cause error) *multiproc.ExitError {
	t.Helper()
	if !errors.Is(err, multiproc.ErrWorkerDied) {
		t.Fatalf("got %v, want an error matching ErrWorkerDied", err)
	}
	if !errors.Is(err, cause) {
		t.Fatalf("got %v, want an error matching %v", err, cause)
	}
	var ee *multiproc.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("errors.As(%v, *ExitError) = false", err)
	}
	for _, other := range []error{multiproc.ErrOutOfMemory, multiproc.ErrCPULimit, multiproc.ErrKilled, multiproc.ErrExit,
		multiproc.ErrFatal, multiproc.ErrGoroutinePanic, multiproc.ErrCgoFault, multiproc.ErrProcessLimit} {
		if other != cause && errors.Is(err, other) {
			t.Errorf("%v also matches %v", err, other)
		}
	}
	return ee
}

// needCgroups skips on a machine without the cgroup controllers Limits use.
func needCgroups(t *testing.T, l multiproc.Limits) *multiproc.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	p, err := multiproc.NewPool(ctx, 1, multiproc.WorkerLimits(l))
	if err != nil && strings.Contains(err.Error(), "no usable cgroup") {
		t.Skipf("no usable cgroups: %v", err)
	}
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() { p.Terminate() })
	return p
}

func TestIsolationOutOfMemory(t *testing.T) {
	// 192 MiB leaves room for a race-enabled worker's own shadow memory.
	p := needCgroups(t, multiproc.Limits{Memory: 192 << 20})
	_, err := multiproc.Apply(ctxT(t), p, isoAlloc, 2048)
	ee := deathOf(t, err, multiproc.ErrOutOfMemory)
	if ee.Signal != syscall.SIGKILL {
		t.Errorf("Signal = %v, want SIGKILL (the OOM killer's)", ee.Signal)
	}
	t.Logf("error: %v", err)
	mustServe(t, p)
	// A task within the cap runs in the replacement.
	if _, err := multiproc.Apply(ctxT(t), p, isoAlloc, 16); err != nil {
		t.Errorf("16 MiB under a 192 MiB cap: %v", err)
	}
}

// TestIsolationKilledIsNotOOM: a bare SIGKILL from outside, with a memory
// cap in place, is a kill, not an OOM.
func TestIsolationKilled(t *testing.T) {
	p := needCgroups(t, multiproc.Limits{Memory: 256 << 20})
	pid, err := multiproc.Apply(ctxT(t), p, isoPid, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "started")
	r := multiproc.ApplyAsync(ctxT(t), p, isoSleep, isoSleepArg{time.Minute, marker})
	waitForFile(t, marker)
	syscall.Kill(pid, syscall.SIGKILL)
	_, err = r.Get(ctxT(t))
	ee := deathOf(t, err, multiproc.ErrKilled)
	if ee.Signal != syscall.SIGKILL || ee.Code != -9 {
		t.Errorf("Signal %v, Code %d; want SIGKILL, -9", ee.Signal, ee.Code)
	}
	mustServe(t, p)
}

func TestIsolationCPULimit(t *testing.T) {
	p := newPool(t, 1, multiproc.WorkerLimits(multiproc.Limits{CPUTime: time.Second}))
	start := time.Now()
	_, err := multiproc.Apply(ctxT(t), p, isoSpin, struct{}{})
	deathOf(t, err, multiproc.ErrCPULimit)
	t.Logf("error after %v: %v", time.Since(start), err)
	mustServe(t, p)
	// The allowance is per task: the replacement, and a worker that ran
	// many short tasks, still give a new task its full second.
	for range 3 {
		if _, err := multiproc.Apply(ctxT(t), p, isoAlloc, 1); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIsolationFDLimit(t *testing.T) {
	p := newPool(t, 1, multiproc.WorkerLimits(multiproc.Limits{OpenFiles: 64}))
	pid, err := multiproc.Apply(ctxT(t), p, isoPid, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := multiproc.Apply(ctxT(t), p, isoOpen, 1000)
	if !errors.Is(err, multiproc.ErrFDLimit) || !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("opening 1000 files under a 64 limit: got %d, %v; want an error matching ErrFDLimit and EMFILE", n, err)
	}
	if errors.Is(err, multiproc.ErrWorkerDied) {
		t.Errorf("EMFILE reported as a death: %v", err)
	}
	if again, err := multiproc.Apply(ctxT(t), p, isoPid, struct{}{}); err != nil || again != pid {
		t.Errorf("after EMFILE the task ran in pid %d (%v), want the same worker %d", again, err, pid)
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("Restarts = %d, want 0: running out of descriptors is not a death", s.Restarts)
	}
}

func TestIsolationExit(t *testing.T) {
	p := newPool(t, 1)
	// 3 is also the library's own exit code for "parent gone": the worker's
	// exit record tells them apart.
	for _, code := range []int{3, 2, 0} {
		_, err := multiproc.Apply(ctxT(t), p, isoExit, code)
		ee := deathOf(t, err, multiproc.ErrExit)
		if ee.Code != code || ee.Signal != 0 {
			t.Errorf("os.Exit(%d): Code %d, Signal %v; want %d, 0", code, ee.Code, ee.Signal, code)
		}
		mustServe(t, p)
	}
}

func TestIsolationFatalError(t *testing.T) {
	p := newPool(t, 1)
	_, err := multiproc.Apply(ctxT(t), p, isoFault, struct{}{})
	ee := deathOf(t, err, multiproc.ErrFatal)
	if !strings.Contains(ee.Report, "0xdead0000") || !strings.Contains(ee.Report, "goroutine") {
		t.Errorf("Report should show the fault address and the goroutines; got %q", ee.Report)
	}
	mustServe(t, p)
}

func TestIsolationGoroutinePanic(t *testing.T) {
	p := newPool(t, 1)
	_, err := multiproc.Apply(ctxT(t), p, isoGoPanic, struct{}{})
	ee := deathOf(t, err, multiproc.ErrGoroutinePanic)
	if !strings.Contains(ee.Report, "panic: boom in a goroutine the task started") {
		t.Errorf("Report should hold the panic; got %q", ee.Report)
	}
	mustServe(t, p)
}

func TestIsolationCgoFault(t *testing.T) {
	if !cgocrash.Available {
		t.Skip("this build has no cgo (CGO_ENABLED=0 or no C compiler): the cgo fault cannot be made")
	}
	p := newPool(t, 1)
	_, err := multiproc.Apply(ctxT(t), p, isoCgo, struct{}{})
	ee := deathOf(t, err, multiproc.ErrCgoFault)
	if !strings.Contains(ee.Report, "SIGSEGV") {
		t.Errorf("Report should name SIGSEGV; got %q", ee.Report)
	}
	mustServe(t, p)
}

// TestIsolationRuntimeLimits checks the limits applied inside the worker:
// GOMEMLIMIT, GOMAXPROCS, the descriptor limit (after the runtime raised
// it), core dumps, and nice on every thread.
func TestIsolationRuntimeLimits(t *testing.T) {
	p := newPool(t, 1, multiproc.WorkerLimits(multiproc.Limits{
		GoMemLimit: 300 << 20, GoMaxProcs: 2, OpenFiles: 200, NoCoreDumps: true, Nice: 7,
	}))
	r, err := multiproc.Apply(ctxT(t), p, isoProbe, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if r.MemLimit != 300<<20 || r.MaxProcs != 2 {
		t.Errorf("GOMEMLIMIT %d, GOMAXPROCS %d; want %d, 2", r.MemLimit, r.MaxProcs, 300<<20)
	}
	if r.NoFileCur != 200 || r.NoFileMax != 200 {
		t.Errorf("RLIMIT_NOFILE %d/%d, want 200/200", r.NoFileCur, r.NoFileMax)
	}
	if r.CoreMax != 0 {
		t.Errorf("RLIMIT_CORE hard %d, want 0", r.CoreMax)
	}
	if len(r.Nice) < 2 {
		t.Errorf("read the nice value of %d threads, want them all (a Go worker has several)", len(r.Nice))
	}
	for i, n := range r.Nice {
		if n != 7 {
			t.Errorf("thread %d of %d has nice %d, want 7 on every thread", i, len(r.Nice), n)
		}
	}
	// The default GOMEMLIMIT with a memory cap is nine tenths of it.
	if q := needCgroups(t, multiproc.Limits{Memory: 200 << 20}); q != nil {
		r, err := multiproc.Apply(ctxT(t), q, isoProbe, struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(200<<20) / 10 * 9; r.MemLimit != want {
			t.Errorf("default GOMEMLIMIT under a 200 MiB cap = %d, want %d", r.MemLimit, want)
		}
	}
}

// TestIsolationProcesses: pids.max counts the worker's threads and
// children; past it, a fork fails in the task (EAGAIN) and the worker
// lives.
func TestIsolationProcesses(t *testing.T) {
	p := needCgroups(t, multiproc.Limits{Processes: 24})
	pid, err := multiproc.Apply(ctxT(t), p, isoPid, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "multiproc-") {
		t.Errorf("worker %d is not in a multiproc cgroup:\n%s", pid, b)
	}
	_, err = multiproc.Apply(ctxT(t), p, isoFork, 100)
	if !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("forking 100 children under pids.max 24: got %v, want an error matching EAGAIN", err)
	}
	if again, err := multiproc.Apply(ctxT(t), p, isoPid, struct{}{}); err != nil || again != pid {
		t.Errorf("after the failed fork the task ran in pid %d (%v), want the same worker %d", again, err, pid)
	}
}

// isoThreads starts n goroutines that each block in a raw system call, so
// that the runtime needs a thread for each; under a pids.max below that
// the runtime cannot create one and the worker dies.
var isoThreads = multiproc.Register("iso.threads", multiproc.Plain(func(n int) int {
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		return -1
	}
	for range n {
		go func() {
			// A blocking read on a raw descriptor holds its thread.
			var b [1]byte
			syscall.Read(fds[0], b[:])
		}()
	}
	time.Sleep(time.Minute) // the worker dies long before
	return n
}))

// TestIsolationProcessLimit: a task that needs more threads than
// Limits.Processes kills its worker (the runtime dies when it cannot
// create a thread: SIGABRT from pthread_create with cgo, "fatal error:
// newosproc" without); the error names the process/thread limit, not a
// generic fatal error, and the pool carries on.
func TestIsolationProcessLimit(t *testing.T) {
	for _, capture := range []bool{false, true} {
		t.Run(fmt.Sprintf("capture=%v", capture), func(t *testing.T) {
			l := multiproc.Limits{Processes: 24}
			p := needCgroups(t, l)
			if capture {
				// The captured stderr holds the runtime's own lines.
				p = newPool(t, 1, multiproc.WorkerLimits(l), multiproc.CaptureOutput(4096))
			}
			_, err := multiproc.Apply(ctxT(t), p, isoThreads, 40)
			ee := deathOf(t, err, multiproc.ErrProcessLimit)
			if !strings.Contains(ee.Reason, "Limits.Processes 24") {
				t.Errorf("Reason %q should name the limit", ee.Reason)
			}
			if ee.Cause.String() != "process/thread limit" {
				t.Errorf("Cause = %v", ee.Cause)
			}
			t.Logf("error: %v", err)
			mustServe(t, p)
		})
	}
}

// isoFork starts n sleeping children (killing them all before it returns).
var isoFork = multiproc.Register("iso.fork", func(_ context.Context, n int) (int, error) {
	var ps []*os.Process
	defer func() {
		for _, p := range ps {
			p.Kill()
			p.Wait()
		}
	}()
	for i := range n {
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "60"}, &os.ProcAttr{})
		if err != nil {
			return i, fmt.Errorf("starting child %d: %w", i, err)
		}
		ps = append(ps, p)
	}
	return n, nil
})

// TestIsolationCgroupRemoved: a worker's cgroup goes with the worker, and
// the process's own directory with its last worker.
func TestIsolationCgroupRemoved(t *testing.T) {
	p := needCgroups(t, multiproc.Limits{Memory: 256 << 20, Processes: 64})
	pid, err := multiproc.Apply(ctxT(t), p, isoPid, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	dirs := cgroupDirsOf(t, pid)
	if len(dirs) == 0 {
		t.Fatalf("worker %d is in no multiproc cgroup", pid)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s still there after Close: %v", d, err)
		}
		if _, err := os.Stat(filepath.Dir(d)); !os.IsNotExist(err) {
			t.Errorf("%s still there after the pool's last worker went: %v", filepath.Dir(d), err)
		}
	}
}

// cgroupDirsOf lists the multiproc cgroup directories process pid is in
// (v1: one per hierarchy), from /proc/PID/cgroup and the usual mounts.
func cgroupDirsOf(t *testing.T, pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.Contains(parts[2], "multiproc-") {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			mount := "/sys/fs/cgroup/" + c
			if c == "" {
				mount = "/sys/fs/cgroup/unified"
			}
			if _, err := os.Stat(mount + parts[2]); err == nil {
				dirs = append(dirs, mount+parts[2])
			}
		}
	}
	return dirs
}

func TestIsolationInvalidLimits(t *testing.T) {
	var nofile syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		l     multiproc.Limits
		field string // the field the message must name, as "Limits.Field:"
	}{
		{"tiny memory", multiproc.Limits{Memory: 1 << 20}, "Memory"},
		{"swap without memory", multiproc.Limits{Swap: 1 << 20}, "Swap"},
		{"negative CPUs", multiproc.Limits{CPUs: -1}, "CPUs"},
		{"negative CPU time", multiproc.Limits{CPUTime: -time.Second}, "CPUTime"},
		{"negative CPU time total", multiproc.Limits{CPUTimeTotal: -time.Second}, "CPUTimeTotal"},
		{"total below per task", multiproc.Limits{CPUTime: 5 * time.Second, CPUTimeTotal: 2 * time.Second}, "CPUTimeTotal"},
		{"too few files", multiproc.Limits{OpenFiles: 10}, "OpenFiles"},
		{"too few processes", multiproc.Limits{Processes: 5}, "Processes"},
		{"processes below the GOMAXPROCS floor", multiproc.Limits{Processes: 20, GoMaxProcs: 8}, "Processes"},
		{"nice out of range", multiproc.Limits{Nice: 20}, "Nice"},
		{"bad GOMEMLIMIT", multiproc.Limits{GoMemLimit: -5}, "GoMemLimit"},
		{"GOMEMLIMIT above the cap", multiproc.Limits{Memory: 64 << 20, GoMemLimit: 128 << 20}, "GoMemLimit"},
	}
	if nofile.Max < 1<<30 {
		// The child inherits the hard limit and cannot raise it: caught at
		// construction, not when the worker starts.
		tests = append(tests, struct {
			name  string
			l     multiproc.Limits
			field string
		}{"files above the hard limit", multiproc.Limits{OpenFiles: int(nofile.Max) + 1}, "OpenFiles"})
	}
	check := func(t *testing.T, err error, field string) {
		t.Helper()
		if !errors.Is(err, multiproc.ErrInvalidLimits) {
			t.Errorf("error %v does not match ErrInvalidLimits", err)
		}
		if err != nil && !strings.Contains(err.Error(), "Limits."+field+":") {
			t.Errorf("error %q does not name Limits.%s", err, field)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := multiproc.NewPool(ctxT(t), 1, multiproc.WorkerLimits(tt.l))
			if err == nil {
				p.Terminate()
				t.Fatalf("NewPool with %+v succeeded", tt.l)
			}
			check(t, err, tt.field)
			pr := multiproc.NewProcess(isoPid, struct{}{})
			pr.Limits = tt.l
			if err := pr.Start(ctxT(t)); err == nil {
				pr.Kill()
				pr.Join(ctxT(t))
				t.Errorf("Process.Start with %+v succeeded", tt.l)
			} else {
				check(t, err, tt.field)
			}
		})
	}
	// WorkerMaxProcs and GoMaxProcs are one setting, in either order.
	_, err := multiproc.NewPool(ctxT(t), 1, multiproc.WorkerMaxProcs(2), multiproc.WorkerLimits(multiproc.Limits{GoMaxProcs: 3}))
	check(t, err, "GoMaxProcs")
	_, err = multiproc.NewPool(ctxT(t), 1, multiproc.WorkerLimits(multiproc.Limits{GoMaxProcs: 3}), multiproc.WorkerMaxProcs(2))
	check(t, err, "GoMaxProcs")
	// The sentinel is registered: it still matches after crossing from a
	// worker whose task tried to start a Process with bad limits.
	p := newPool(t, 1)
	_, err = multiproc.Apply(ctxT(t), p, isoBadProcess, struct{}{})
	var re *multiproc.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want the task's RemoteError", err)
	}
	check(t, err, "Memory")
}

// isoBadProcess starts a Process with a memory cap below the floor and
// returns Start's error.
var isoBadProcess = multiproc.Register("iso.badProcess", func(ctx context.Context, _ struct{}) (int, error) {
	p := multiproc.NewProcess(isoPid, struct{}{})
	p.Limits = multiproc.Limits{Memory: 1 << 20}
	if err := p.Start(ctx); err != nil {
		return 0, err
	}
	p.Kill()
	p.Join(ctx)
	return 0, errors.New("a Process with a 1 MiB cap started")
})

func TestIsolationCaptureOutput(t *testing.T) {
	p := newPool(t, 1, multiproc.CaptureOutput(1024))
	_, err := multiproc.Apply(ctxT(t), p, isoPrint, true)
	var re *multiproc.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a RemoteError", err)
	}
	if !strings.Contains(re.Output, "line on stdout\n") || !strings.Contains(re.Output, "line on stderr\n") {
		t.Errorf("Output = %q, want both lines the task printed", re.Output)
	}
	// The cap keeps the end.
	q := newPool(t, 1, multiproc.CaptureOutput(10))
	_, err = multiproc.Apply(ctxT(t), q, isoPrint, true)
	if !errors.As(err, &re) || re.Output != "on stderr\n" {
		t.Errorf("Output with a 10-byte cap = %q, want the last 10 bytes %q", re.Output, "on stderr\n")
	}
	// A death keeps what was printed before it.
	_, err = multiproc.Apply(ctxT(t), p, isoPrintExit, 4)
	ee := deathOf(t, err, multiproc.ErrExit)
	if !strings.Contains(ee.Output, "about to exit") {
		t.Errorf("ExitError.Output = %q, want the line printed before os.Exit", ee.Output)
	}
	mustServe(t, p)
}

var isoPrintExit = multiproc.Register("iso.printexit", multiproc.Plain(func(code int) int {
	fmt.Println("about to exit")
	os.Exit(code)
	return 0
}))

// TestIsolationPrefixOutput runs a program whose pool prefixes its
// workers' lines, and reads its stdout and stderr.
func TestIsolationPrefixOutput(t *testing.T) {
	stdout, stderr, err := runHelperProgram(t, "iso-prefix")
	if err != nil {
		t.Fatalf("helper: %v\nstderr: %s", err, stderr)
	}
	if !strings.Contains(stdout, "] line on stdout\n") || !strings.Contains(stdout, "[IsoWorker-") {
		t.Errorf("stdout %q lacks the worker's prefixed line", stdout)
	}
	if !strings.Contains(stderr, "] line on stderr\n") {
		t.Errorf("stderr %q lacks the worker's prefixed line", stderr)
	}
	if !strings.Contains(stdout, "parent line\n") || strings.Contains(stdout, "] parent line") {
		t.Errorf("the parent's own line must pass unprefixed; stdout %q", stdout)
	}
}

func init() { helpers["iso-prefix"] = helperPrefix }

func helperPrefix() int {
	ctx := context.Background()
	p, err := multiproc.NewPool(ctx, 1, multiproc.PrefixOutput(), multiproc.WorkerName("IsoWorker"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("parent line")
	if _, err := multiproc.Apply(ctx, p, isoPrint, false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := p.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestIsolationProcessLimits: a Process takes the same Limits, as a field
// set before Start.
func TestIsolationProcessLimits(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		p := multiproc.NewProcess(isoAlloc, 2048)
		p.Limits = multiproc.Limits{Memory: 192 << 20}
		err := p.Start(ctxT(t))
		if err != nil && strings.Contains(err.Error(), "no usable cgroup") {
			t.Skipf("no usable cgroups: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		err = p.Join(ctxT(t))
		if !errors.Is(err, multiproc.ErrOutOfMemory) {
			t.Fatalf("Join = %v, want an error matching ErrOutOfMemory", err)
		}
		p.Close()
	})
	t.Run("cpu", func(t *testing.T) {
		p := multiproc.NewProcess(isoSpin, struct{}{})
		p.Limits = multiproc.Limits{CPUTime: time.Second}
		if err := p.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		err := p.Join(ctxT(t))
		var ee *multiproc.ExitError
		if !errors.Is(err, multiproc.ErrCPULimit) || !errors.As(err, &ee) || ee.Signal != syscall.SIGXCPU {
			t.Fatalf("Join = %v, want an ExitError for SIGXCPU matching ErrCPULimit", err)
		}
		p.Close()
	})
	t.Run("runtime", func(t *testing.T) {
		p := multiproc.NewProcess(isoProbe, struct{}{})
		p.Limits = multiproc.Limits{Nice: 4, OpenFiles: 100, GoMaxProcs: 1}
		if err := p.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if err := p.Join(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		r, err := multiproc.Result[isoProbeResult](p)
		if err != nil {
			t.Fatal(err)
		}
		if r.NoFileMax != 100 || r.MaxProcs != 1 || slices.ContainsFunc(r.Nice, func(n int) bool { return n != 4 }) {
			t.Errorf("in the process: RLIMIT_NOFILE %d, GOMAXPROCS %d, nice %v; want 100, 1, all 4", r.NoFileMax, r.MaxProcs, r.Nice)
		}
		p.Close()
	})
	t.Run("invalid", func(t *testing.T) {
		p := multiproc.NewProcess(isoPid, struct{}{})
		p.Limits = multiproc.Limits{OpenFiles: 3}
		if err := p.Start(ctxT(t)); err == nil || !strings.Contains(err.Error(), "OpenFiles") {
			t.Errorf("Start with OpenFiles 3 = %v, want an error naming OpenFiles", err)
		}
	})
}

// orphanLimits are the helper's: one group in each of the memory, cpu and
// pids hierarchies on v1.
var orphanLimits = multiproc.Limits{Memory: 256 << 20, CPUs: 1, Processes: 64}

// TestIsolationSweepAfterKilledParent: a parent SIGKILLed with a limited
// pool leaves its workers' cgroups behind (it cannot remove them); the next
// limited start removes them in every hierarchy, whatever it limits itself
// (here a memory cap alone, while the helper's groups are in the memory,
// cpu and pids hierarchies).
func TestIsolationSweepAfterKilledParent(t *testing.T) {
	needCgroups(t, orphanLimits).Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(helperEnviron(), helperEnv+"=iso-orphan")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said nothing: %v", err)
	}
	worker, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "worker ")))
	dirs := cgroupDirsOf(t, worker)
	cmd.Process.Kill()
	cmd.Wait()
	if len(dirs) == 0 {
		t.Fatalf("the helper's worker %d is in no multiproc cgroup (helper said %q)", worker, line)
	}
	// The worker dies with its parent (parent-death signal); its group
	// stays until someone removes it.
	testutil.WaitFor(t, deadline, func() bool { return syscall.Kill(worker, 0) != nil }, "the helper's worker to die")
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Dir(d)); err != nil {
			t.Fatalf("the killed parent's cgroup %s is already gone (%v): nothing to sweep", filepath.Dir(d), err)
		}
	}
	if len(dirs) < 3 {
		t.Logf("the helper's worker is in %d hierarchies (%v), not 3", len(dirs), dirs)
	}
	needCgroups(t, multiproc.Limits{Memory: 256 << 20}).Close()
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Dir(d)); !os.IsNotExist(err) {
			t.Errorf("the killed parent's cgroup %s survived the next pool start: %v", filepath.Dir(d), err)
		}
	}
}

func init() { helpers["iso-orphan"] = helperOrphan }

// helperOrphan starts a limited pool, prints its worker's pid and waits to
// be killed.
func helperOrphan() int {
	ctx := context.Background()
	p, err := multiproc.NewPool(ctx, 1, multiproc.WorkerLimits(orphanLimits))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pid, err := multiproc.Apply(ctx, p, isoPid, struct{}{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("worker %d\n", pid)
	time.Sleep(time.Minute) // the test kills it long before
	return 0
}

// isoAddressSpace lowers the worker's own RLIMIT_AS to what it maps now
// plus 64 MiB, then allocates 1 GiB: the Go runtime cannot get the memory
// from the system and dies with "fatal error: runtime: out of memory" (a
// second road to ErrOutOfMemory, without any cgroup).
var isoAddressSpace = multiproc.Register("iso.addressSpace", multiproc.Plain(func(struct{}) int {
	b, _ := os.ReadFile("/proc/self/status")
	var vm uint64
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			vm = kb << 10
		}
	}
	lim := vm + 64<<20
	syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: lim, Max: lim})
	big := make([]byte, 1<<30)
	for i := 0; i < len(big); i += 4096 {
		big[i] = 1
	}
	return len(big)
}))

func TestIsolationRuntimeOutOfMemory(t *testing.T) {
	p := newPool(t, 1)
	_, err := multiproc.Apply(ctxT(t), p, isoAddressSpace, struct{}{})
	ee := deathOf(t, err, multiproc.ErrOutOfMemory)
	// The crash report starts at the traceback (the runtime prints its
	// "runtime: out of memory" line on stderr before it): the allocator's
	// frame under runtime.throw is what names the failure there.
	if !strings.Contains(ee.Report, "runtime.throw(") || !strings.Contains(ee.Report, "runtime.(*mcache).allocLarge(") {
		t.Errorf("Report should show the allocator throwing; got %.300q", ee.Report)
	}
	mustServe(t, p)
}

// isoInitFile keeps the file its initializer received; isoReadInit reads it.
var (
	isoInitFile *os.File
	isoKeepFile = multiproc.Register("iso.keepFile", func(_ context.Context, f *os.File) (int, error) {
		isoInitFile = f
		return 0, nil
	})
	isoReadInit = multiproc.Register("iso.readInit", func(_ context.Context, _ struct{}) (string, error) {
		b := make([]byte, 64)
		n, err := isoInitFile.ReadAt(b, 0)
		if n == 0 {
			return "", err
		}
		fmt.Println("read the initializer's file")
		return string(b[:n]), errors.New("failing on purpose, after printing")
	})
)

// TestIsolationWithInitializerResources: the isolation's files come after
// an initializer's resources; both arrive where they belong.
func TestIsolationWithInitializerResources(t *testing.T) {
	path := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(path, []byte("from the parent"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	p := newPool(t, 1, multiproc.Initializer(isoKeepFile, f), multiproc.CaptureOutput(256),
		multiproc.WorkerLimits(multiproc.Limits{OpenFiles: 128}))
	f.Close()
	got, err := multiproc.Apply(ctxT(t), p, isoReadInit, struct{}{})
	var re *multiproc.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Output, "read the initializer's file") {
		t.Fatalf("got %q, %v; want the task's failure with its captured output", got, err)
	}
	// The crash report file is in place too.
	_, err = multiproc.Apply(ctxT(t), p, isoFault, struct{}{})
	deathOf(t, err, multiproc.ErrFatal)
}

// processDeath runs fn(arg) in a Process, limited by l, and returns Join's
// error, which must be an ExitError matching cause and no other cause.
func processDeath(t *testing.T, l multiproc.Limits, fn any, arg any, cause error) *multiproc.ExitError {
	t.Helper()
	var p *multiproc.Process
	switch f := fn.(type) {
	case multiproc.Func[int, int]:
		p = multiproc.NewProcess(f, arg.(int))
	case multiproc.Func[struct{}, int]:
		p = multiproc.NewProcess(f, struct{}{})
	default:
		t.Fatalf("processDeath: %T", fn)
	}
	p.Limits = l
	if err := p.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	err := p.Join(ctxT(t))
	p.Close()
	var ee *multiproc.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Join = %v, want an ExitError", err)
	}
	if cause != nil && !errors.Is(err, cause) {
		t.Fatalf("Join = %v, want an error matching %v", err, cause)
	}
	for _, other := range []error{multiproc.ErrOutOfMemory, multiproc.ErrCPULimit, multiproc.ErrKilled, multiproc.ErrExit,
		multiproc.ErrFatal, multiproc.ErrGoroutinePanic, multiproc.ErrCgoFault, multiproc.ErrProcessLimit} {
		if other != cause && errors.Is(err, other) {
			t.Errorf("%v also matches %v", err, other)
		}
	}
	if errors.Is(err, multiproc.ErrWorkerDied) {
		t.Errorf("a Process's death %v matches ErrWorkerDied", err)
	}
	return ee
}

// poolReason is the Reason of the death fn(arg) causes in a pool worker.
func poolReason[A any](t *testing.T, fn multiproc.Func[A, int], arg A) string {
	t.Helper()
	p := newPool(t, 1)
	_, err := multiproc.Apply(ctxT(t), p, fn, arg)
	var ee *multiproc.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("pool: %v, want an ExitError", err)
	}
	return ee.Reason
}

// TestIsolationProcessDeaths: a Process's death is classified as a pool
// worker's is, with the same reason text (the pool's starts with the
// task's name), limited or not.
func TestIsolationProcessDeaths(t *testing.T) {
	same := func(t *testing.T, ee *multiproc.ExitError, pool string) {
		t.Helper()
		want := strings.ReplaceAll(ee.Reason, "target", "task")
		if ee.Reason == "" || !strings.HasSuffix(pool, ": "+want) {
			t.Errorf("Process Reason %q; the pool's is %q: want the same text", ee.Reason, pool)
		}
	}
	t.Run("exit", func(t *testing.T) {
		for _, code := range []int{3, 2} {
			ee := processDeath(t, multiproc.Limits{}, isoExit, code, multiproc.ErrExit)
			if ee.Code != code {
				t.Errorf("Code %d, want %d", ee.Code, code)
			}
			same(t, ee, poolReason(t, isoExit, code))
		}
	})
	t.Run("fatal", func(t *testing.T) {
		ee := processDeath(t, multiproc.Limits{}, isoFault, struct{}{}, multiproc.ErrFatal)
		if !strings.Contains(ee.Report, "0xdead0000") {
			t.Errorf("Report should show the fault address; got %.300q", ee.Report)
		}
		same(t, ee, poolReason(t, isoFault, struct{}{}))
	})
	t.Run("goroutine panic", func(t *testing.T) {
		ee := processDeath(t, multiproc.Limits{}, isoGoPanicPlain, struct{}{}, multiproc.ErrGoroutinePanic)
		if !strings.Contains(ee.Report, "panic: boom in a goroutine") {
			t.Errorf("Report should hold the panic; got %.300q", ee.Report)
		}
		same(t, ee, poolReason(t, isoGoPanicPlain, struct{}{}))
	})
	t.Run("cgo", func(t *testing.T) {
		if !cgocrash.Available {
			t.Skip("no cgo in this build")
		}
		ee := processDeath(t, multiproc.Limits{}, isoCgo, struct{}{}, multiproc.ErrCgoFault)
		same(t, ee, poolReason(t, isoCgo, struct{}{}))
	})
	t.Run("runtime out of memory", func(t *testing.T) {
		ee := processDeath(t, multiproc.Limits{}, isoAddressSpace, struct{}{}, multiproc.ErrOutOfMemory)
		same(t, ee, poolReason(t, isoAddressSpace, struct{}{}))
	})
	t.Run("thread limit", func(t *testing.T) {
		l := multiproc.Limits{Processes: 24, GoMaxProcs: 1}
		pr := multiproc.NewProcess(isoPid, struct{}{})
		pr.Limits = l
		if err := pr.Start(ctxT(t)); err != nil && strings.Contains(err.Error(), "no usable cgroup") {
			t.Skipf("no usable cgroups: %v", err)
		} else if err != nil {
			t.Fatal(err)
		}
		pr.Join(ctxT(t))
		pr.Close()
		ee := processDeath(t, l, isoThreads, 40, multiproc.ErrProcessLimit)
		if !strings.Contains(ee.Reason, "Limits.Processes 24") {
			t.Errorf("Reason %q should name the limit", ee.Reason)
		}
	})
	t.Run("killed from outside", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "started")
		p := multiproc.NewProcess(isoSleep, isoSleepArg{time.Minute, marker})
		if err := p.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		waitForFile(t, marker)
		syscall.Kill(p.Pid(), syscall.SIGKILL)
		err := p.Join(ctxT(t))
		p.Close()
		var ee *multiproc.ExitError
		if !errors.Is(err, multiproc.ErrKilled) || !errors.As(err, &ee) || !strings.Contains(ee.Reason, "from outside") {
			t.Fatalf("Join = %v, want an ExitError matching ErrKilled that says it came from outside", err)
		}
	})
	t.Run("terminated", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "started")
		p := multiproc.NewProcess(isoSleep, isoSleepArg{time.Minute, marker})
		if err := p.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		waitForFile(t, marker)
		p.Terminate()
		err := p.Join(ctxT(t))
		p.Close()
		var ee *multiproc.ExitError
		if !errors.As(err, &ee) || ee.Cause != 0 || errors.Is(err, multiproc.ErrKilled) || !strings.Contains(ee.Reason, "stopped by Process.Terminate") {
			t.Fatalf("Join = %v, want an ExitError without a cause, saying Terminate stopped it", err)
		}
	})
}

// isoGoPanicPlain panics in a goroutine it starts, and waits.
var isoGoPanicPlain = multiproc.Register("iso.gopanicPlain", multiproc.Plain(func(struct{}) int {
	go func() { panic("boom in a goroutine the task started") }()
	time.Sleep(time.Minute)
	return 0
}))

// isoPrintMB writes mb MiB of lines to stderr.
var isoPrintMB = multiproc.Register("iso.printmb", multiproc.Plain(func(mb int) int {
	line := strings.Repeat("x", 1023) + "\n"
	for range mb * 1024 {
		os.Stderr.WriteString(line)
	}
	return os.Getpid()
}))

// cgroupMemory is the memory charged to process pid's v1 memory cgroup
// (memory.usage_in_bytes), or -1 where it cannot be read.
func cgroupMemory(t *testing.T, pid int) int64 {
	for _, d := range cgroupDirsOf(t, pid) {
		if b, err := os.ReadFile(filepath.Join(d, "memory.usage_in_bytes")); err == nil {
			n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			return n
		}
	}
	return -1
}

// TestIsolationCaptureOutputCharge: with CaptureOutput, what a task prints
// is held in a memory file whose pages count against the worker's Memory
// cap while the task runs (documented on CaptureOutput, with the figure);
// they are freed when the task returns, not left charged until the next
// task.
func TestIsolationCaptureOutputCharge(t *testing.T) {
	needCgroups(t, multiproc.Limits{Memory: 256 << 20}).Close()
	p := newPool(t, 1, multiproc.WorkerLimits(multiproc.Limits{Memory: 256 << 20}), multiproc.CaptureOutput(4096))
	pid, err := multiproc.Apply(ctxT(t), p, isoPrintMB, 64)
	if err != nil {
		t.Fatal(err)
	}
	used := cgroupMemory(t, pid)
	if used < 0 {
		t.Skip("no v1 memory.usage_in_bytes for the worker")
	}
	t.Logf("worker's cgroup after a task printed 64 MiB: %d bytes charged", used)
	if used > 32<<20 {
		t.Errorf("the worker's cgroup still has %d bytes charged after the task returned: the captured output should have been freed", used)
	}
}
