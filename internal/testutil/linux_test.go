//go:build linux

package testutil_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/testutil"
)

// exitTimeout bounds waits for a killed process to change state; generous
// for a loaded 2-core machine, and only spent when a test fails.
const exitTimeout = 10 * time.Second

// startSleep starts a child that outlives the test unless killed, and kills
// and waits for it at cleanup in case the test did not.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sleep: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

func pids(ps []testutil.Proc) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.PID)
	}
	return out
}

func TestChildrenAndProcessState(t *testing.T) {
	cmd := startSleep(t)
	pid := cmd.Process.Pid

	children, err := testutil.Children(os.Getpid())
	if err != nil {
		t.Fatalf("Children: %v", err)
	}
	if !slices.Contains(children, pid) {
		t.Errorf("Children(self) = %v, want it to contain the sleep child %d", children, pid)
	}
	if !testutil.ProcessAlive(pid) {
		t.Errorf("ProcessAlive(%d) = false for a running child, want true", pid)
	}
	if state, ok := testutil.ProcessState(pid); !ok || !strings.ContainsRune("RS", rune(state)) {
		t.Errorf("ProcessState(%d) = %q, %v; want 'R' or 'S', true", pid, state, ok)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	// Killed but not yet waited for: a zombie, which is not alive but is
	// still a child.
	testutil.WaitFor(t, exitTimeout, func() bool {
		state, _ := testutil.ProcessState(pid)
		return state == 'Z'
	}, "killed child %d becomes a zombie", pid)
	if testutil.ProcessAlive(pid) {
		t.Errorf("ProcessAlive(%d) = true for a zombie, want false", pid)
	}
	if children, _ := testutil.Children(os.Getpid()); !slices.Contains(children, pid) {
		t.Errorf("Children(self) = %v, want it to contain the zombie %d", children, pid)
	}

	cmd.Wait()
	if state, ok := testutil.ProcessState(pid); ok {
		t.Errorf("ProcessState(%d) = %q, true after Wait; want false", pid, state)
	}
	if children, _ := testutil.Children(os.Getpid()); slices.Contains(children, pid) {
		t.Errorf("Children(self) = %v after Wait, want it without %d", children, pid)
	}
}

func TestProcessStateOfSelf(t *testing.T) {
	// The calling thread is running; other threads may be sleeping, and
	// stat shows the main thread's state.
	if state, ok := testutil.ProcessState(os.Getpid()); !ok || !strings.ContainsRune("RS", rune(state)) {
		t.Errorf("ProcessState(self) = %q, %v; want 'R' or 'S', true", state, ok)
	}
}

func TestOpenFDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fd-test")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())

	fds, err := testutil.OpenFDs()
	if err != nil {
		t.Fatalf("OpenFDs: %v", err)
	}
	if fds[fd] != path {
		t.Errorf("OpenFDs()[%d] = %q, want %q", fd, fds[fd], path)
	}
	procFD := "/proc/" + strconv.Itoa(os.Getpid()) + "/fd"
	for n, target := range fds {
		if target == procFD {
			t.Errorf("OpenFDs() lists its own directory descriptor %d -> %s", n, target)
		}
	}

	f.Close()
	fds, err = testutil.OpenFDs()
	if err != nil {
		t.Fatalf("OpenFDs: %v", err)
	}
	if target, ok := fds[fd]; ok && target == path {
		t.Errorf("OpenFDs() still lists fd %d -> %s after Close", fd, target)
	}
}

func TestCheckReportsChild(t *testing.T) {
	b := snapshot(t)
	cmd := startSleep(t)
	pid := cmd.Process.Pid

	r := testutil.Check(b, testutil.Deadline(failFast))
	if !slices.Contains(pids(r.Children), pid) {
		t.Errorf("Check reported children %v, want the running sleep %d; report:\n%s", pids(r.Children), pid, r)
	}
	if s := r.String(); !strings.Contains(s, "sleep 60") {
		t.Errorf("report does not show the child's command line \"sleep 60\":\n%s", s)
	}

	cmd.Process.Kill()
	cmd.Wait()
	checkClean(t, b)
}

func TestCheckReportsZombie(t *testing.T) {
	b := snapshot(t)
	cmd := startSleep(t)
	pid := cmd.Process.Pid
	cmd.Process.Kill()
	testutil.WaitFor(t, exitTimeout, func() bool {
		state, _ := testutil.ProcessState(pid)
		return state == 'Z'
	}, "killed child %d becomes a zombie", pid)

	r := testutil.Check(b, testutil.Deadline(failFast))
	i := slices.Index(pids(r.Children), pid)
	if i < 0 {
		t.Fatalf("Check reported children %v, want the zombie %d; report:\n%s", pids(r.Children), pid, r)
	}
	if got := r.Children[i].State; got != 'Z' {
		t.Errorf("reported state of the zombie %c, want Z", got)
	}
	// A zombie has no command line left; the report shows its name.
	if s := r.String(); !strings.Contains(s, "[sleep]") || !strings.Contains(s, "zombie") {
		t.Errorf("report does not show \"[sleep]\" as a zombie:\n%s", s)
	}

	cmd.Wait()
	checkClean(t, b)
}

// runHelper runs this test binary in the given helper role and returns the
// pid it prints.
func runHelper(t *testing.T, role string, env ...string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+role)
	// Under -race a binary sleeps a second before exiting, to let racing
	// goroutines report; the helper has none, and the test waits for it.
	cmd.Env = append(cmd.Env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %s: %v", role, err)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(out)))
	if err != nil {
		t.Fatalf("helper %s printed %q, want a pid", role, out)
	}
	return pid
}

// orphan is a process that a helper started and left to us to kill. The
// handle of os.FindProcess is a pidfd on Linux, so a kill can never hit an
// unrelated process that reused the pid.
type orphan struct {
	pid  int
	proc *os.Process
}

// adoptOrphan takes a handle on pid, which a helper just printed, and kills
// it at cleanup if the test did not.
func adoptOrphan(t *testing.T, pid int) *orphan {
	t.Helper()
	p, err := os.FindProcess(pid)
	if err != nil {
		t.Fatalf("FindProcess(%d): %v", pid, err)
	}
	o := &orphan{pid: pid, proc: p}
	t.Cleanup(func() { o.kill(t) })
	return o
}

// kill kills the orphan, if it still runs, and waits until it has exited.
// It is no longer our child, so init reaps it: there is nothing to Wait for.
func (o *orphan) kill(t *testing.T) {
	t.Helper()
	if o.proc == nil {
		return
	}
	if err := o.proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("killing orphan %d: %v", o.pid, err)
	}
	o.proc.Release()
	o.proc = nil
	testutil.WaitFor(t, exitTimeout, func() bool { return !testutil.ProcessAlive(o.pid) },
		"killed orphan %d exits", o.pid)
}

func TestCheckReportsOrphan(t *testing.T) {
	b := snapshot(t)
	// The helper starts a copy of this binary and exits without waiting
	// for it, so the copy is reparented: a grandchild the children check
	// cannot see.
	pid := runHelper(t, "orphan")
	o := adoptOrphan(t, pid)
	if !testutil.ProcessAlive(pid) {
		t.Fatalf("orphan %d is not running", pid)
	}

	r := testutil.Check(b, testutil.Deadline(failFast))
	if !slices.Contains(pids(r.Orphans), pid) {
		t.Errorf("Check reported orphans %v, want %d; report:\n%s", pids(r.Orphans), pid, r)
	}
	if slices.Contains(pids(r.Children), pid) {
		t.Errorf("Check reported orphan %d as a child too", pid)
	}

	o.kill(t)
	checkClean(t, b)
}

func TestCheckReportsOrphanWithoutMarker(t *testing.T) {
	// A descendant started with an environment that dropped the marker is
	// still recognised by running this executable.
	t.Setenv(testutil.MarkerEnv, "")
	os.Unsetenv(testutil.MarkerEnv)
	b := snapshot(t)
	os.Unsetenv(testutil.MarkerEnv) // the snapshot sets it again
	pid := runHelper(t, "orphan")
	o := adoptOrphan(t, pid)

	r := testutil.Check(b, testutil.Deadline(failFast))
	if !slices.Contains(pids(r.Orphans), pid) {
		t.Errorf("Check reported orphans %v, want unmarked %d; report:\n%s", pids(r.Orphans), pid, r)
	}

	o.kill(t)
	checkClean(t, b)
}

func TestCheckIgnoresOtherTestBinaries(t *testing.T) {
	// A copy of this binary whose marker names another test process is that
	// process's, as when the same test binary runs twice at once.
	t.Setenv(testutil.MarkerEnv, "1")
	b := snapshot(t)
	os.Setenv(testutil.MarkerEnv, "1") // the snapshot appended our pid
	pid := runHelper(t, "orphan")
	o := adoptOrphan(t, pid)

	if r := testutil.Check(b, testutil.Deadline(failFast)); slices.Contains(pids(r.Orphans), pid) {
		t.Errorf("Check reported another test binary's process %d as our orphan; report:\n%s", pid, r)
	}

	o.kill(t)
	checkClean(t, b)
}

func TestCheckReportsFD(t *testing.T) {
	b := snapshot(t)
	path := filepath.Join(t.TempDir(), "leaked-fd")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())

	r := testutil.Check(b, testutil.Deadline(failFast))
	want := testutil.FD{Num: fd, Target: path}
	if !slices.Contains(r.FDs, want) {
		t.Errorf("Check reported fds %v, want %v; report:\n%s", r.FDs, want, r)
	}
	for _, opt := range []testutil.Option{testutil.SkipFDCheck(), testutil.IgnoreFD(filepath.Dir(path))} {
		if r := testutil.Check(b, testutil.Deadline(failFast), opt); len(r.FDs) != 0 {
			t.Errorf("Check with an option that ignores %s reported fds %v", path, r.FDs)
		}
	}

	f.Close()
	checkClean(t, b)
}

func TestCheckReportsPipe(t *testing.T) {
	// A pipe is the likeliest leak (a worker's stdin or stdout), so the
	// tolerance for the runtime's own descriptors must not cover it.
	b := snapshot(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	rep := testutil.Check(b, testutil.Deadline(failFast))
	var got []int
	for _, f := range rep.FDs {
		if strings.HasPrefix(f.Target, "pipe:") {
			got = append(got, f.Num)
		}
	}
	slices.Sort(got)
	if want := []int{int(r.Fd()), int(w.Fd())}; !slices.Equal(got, want) {
		t.Errorf("Check reported pipe fds %v, want %v; report:\n%s", got, want, rep)
	}

	r.Close()
	w.Close()
	checkClean(t, b)
}

// createShm creates an entry in /dev/shm and removes it at cleanup.
func createShm(t *testing.T, name string) string {
	t.Helper()
	path := "/dev/shm/" + name
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		t.Skipf("cannot create %s: %v", path, err)
	}
	f.Close()
	t.Cleanup(func() { os.Remove(path) })
	return path
}

func TestCheckReportsShm(t *testing.T) {
	b := snapshot(t)
	pid := strconv.Itoa(os.Getpid())
	lower := createShm(t, "multiproc-test-"+pid)
	mixed := createShm(t, "X-MultiProc-Test-"+pid) // the match ignores case
	other := createShm(t, "unrelated-test-"+pid)   // not the library's

	// Other packages' tests may create segments meanwhile, so the report is
	// checked for ours rather than compared whole.
	r := testutil.Check(b, testutil.Deadline(failFast))
	for _, want := range []string{lower, mixed} {
		if !slices.Contains(r.Shm, want) {
			t.Errorf("Check reported shm %v, want it to contain %s; report:\n%s", r.Shm, want, r)
		}
	}
	if slices.Contains(r.Shm, other) {
		t.Errorf("Check reported %s, whose name does not contain multiproc", other)
	}

	os.Remove(lower)
	os.Remove(mixed)
	os.Remove(other)
	checkClean(t, b)
}

func TestCheckIgnoresShmOfOtherPrograms(t *testing.T) {
	// Test binaries of several packages run at once and share /dev/shm: a
	// segment that another program holds open is not our leak.
	b := snapshot(t)
	path := createShm(t, "multiproc-foreign-"+strconv.Itoa(os.Getpid()))
	pid := runHelper(t, "foreign", "TESTUTIL_TEST_FILE="+path)
	o := adoptOrphan(t, pid)

	r := testutil.Check(b, testutil.Deadline(failFast))
	if slices.Contains(r.Shm, path) {
		t.Errorf("Check reported %s, which a foreign process holds; report:\n%s", path, r)
	}
	if slices.Contains(pids(r.Orphans), pid) {
		t.Errorf("Check reported foreign process %d as an orphan", pid)
	}

	// Once nothing holds it, it is a leak like any other.
	o.kill(t)
	r = testutil.Check(b, testutil.Deadline(failFast))
	if !slices.Contains(r.Shm, path) {
		t.Errorf("Check reported shm %v once its holder exited, want %s", r.Shm, path)
	}

	os.Remove(path)
	checkClean(t, b)
}
