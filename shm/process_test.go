package shm_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/shm"
)

// holdSegment creates a segment with a generated name and keeps it until
// the process is killed.
var holdSegment = multiproc.Register("shm_test.hold", func(ctx context.Context, _ struct{}) (struct{}, error) {
	if _, err := shm.Create(4096, shm.GeneratedName()); err != nil {
		return struct{}{}, err
	}
	<-ctx.Done()
	return struct{}{}, nil
})

// createNamed makes and closes one generated-name segment: the first named
// Create of its process, so it sweeps.
var createNamed = multiproc.Register("shm_test.create", func(_ context.Context, _ struct{}) (struct{}, error) {
	m, err := shm.Create(4096, shm.GeneratedName())
	if err != nil {
		return struct{}{}, err
	}
	return struct{}{}, m.Close()
})

// writeNamed opens the segment of the given name and writes its name into
// it: a process that was not given the segment, only told its name.
var writeNamed = multiproc.Register("shm_test.write", func(_ context.Context, name string) (struct{}, error) {
	m, err := shm.Open(name)
	if err != nil {
		return struct{}{}, err
	}
	copy(m.Buf(), name)
	return struct{}{}, m.Close()
})

const processTimeout = 60 * time.Second

// orphan starts a child that creates a generated-name segment, SIGKILLs it
// once the segment exists, reaps it, and returns the segment's name.
func orphan(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	p := multiproc.NewProcess(holdSegment, struct{}{})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	prefix := fmt.Sprintf("multiproc-%d-", p.Pid())
	var name string
	testutil.WaitFor(t, processTimeout, func() bool {
		name = findSegment(t, prefix)
		return name != ""
	}, "child %d made no segment %s*", p.Pid(), prefix)
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Join(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Join of the killed child = %v, want an exit error", err)
	}
	return name
}

func findSegment(t *testing.T, prefix string) string {
	entries, err := os.ReadDir(filepath.Dir(segmentPath("x")))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			return e.Name()
		}
	}
	return ""
}

// TestSweepRemovesSegmentOfKilledCreator: a SIGKILLed creator cannot unlink
// its generated-name segment; Sweep removes it, and leaves alone the
// segments of live processes and names chosen by users.
func TestSweepRemovesSegmentOfKilledCreator(t *testing.T) {
	// Made first, so that this process's automatic sweep has already run
	// and the explicit Sweep below is what removes the orphan.
	live, err := shm.Create(4096, shm.GeneratedName())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	user, err := shm.Create(4096, shm.Name(testName(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()

	name := orphan(t)
	removed, err := shm.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, name) {
		t.Fatalf("Sweep removed %q, want it to include %q", removed, name)
	}
	if _, err := os.Stat(segmentPath(name)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s still exists after Sweep: %v", name, err)
	}
	for _, m := range []*shm.SharedMemory{live, user} {
		if _, err := os.Stat(segmentPath(m.Name())); err != nil {
			t.Fatalf("Sweep removed %s, which is not an orphan: %v", m.Name(), err)
		}
	}
}

// TestFirstNamedCreateSweeps: the first named Create of a process sweeps,
// so orphans do not pile up even if no one calls Sweep.
func TestFirstNamedCreateSweeps(t *testing.T) {
	name := orphan(t)
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	p := multiproc.NewProcess(createNamed, struct{}{})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(segmentPath(name)); !errors.Is(err, fs.ErrNotExist) {
		os.Remove(segmentPath(name))
		t.Fatalf("%s survived another process's first named Create: %v", name, err)
	}
}

// TestOpenByNameInChild: a child that is told only the name maps the
// segment and writes to it; the parent sees the write.
func TestOpenByNameInChild(t *testing.T) {
	name := testName(t)
	m, err := shm.Create(4096, shm.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	p := multiproc.NewProcess(writeNamed, name)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if got := string(m.Buf()[:len(name)]); got != name {
		t.Fatalf("parent reads %q, want %q written by the child", got, name)
	}
}

// touchAfterClose closes an Array and then writes through its slice.
var touchAfterClose = multiproc.Register("shm_test.touch_after_close", func(_ context.Context, _ struct{}) (string, error) {
	a, err := shm.NewArray[int64](1)
	if err != nil {
		return "", err
	}
	s := a.Slice()
	if err := a.Close(); err != nil {
		return "", err
	}
	debug.SetTraceback("none") // the crash is the point; spare the log
	defer func() {
		if r := recover(); r != nil {
			panic("recovered from touching an unmapped Array: the documentation is wrong")
		}
	}()
	s[0] = 1
	return "survived", nil
})

// TestTouchAfterCloseIsFatal checks what the package documentation warns
// about: touching a slice after Close kills the process (a fault, exit code
// 2, that recover cannot catch), so users must not expect a panic.
func TestTouchAfterCloseIsFatal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	p := multiproc.NewProcess(touchAfterClose, struct{}{})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err := p.Join(ctx)
	var exit *multiproc.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("Join = %v, want an *ExitError", err)
	}
	if code, _ := p.ExitCode(); code != 2 {
		t.Fatalf("exit code %d (%v), want 2, Go's fatal fault", code, err)
	}
}

// TestSweepChecksStartTime guards against pid reuse: a generated name whose
// pid now belongs to another process (here: this one, with a start time
// that is not its own) is an orphan, and so is one whose pid is unused.
func TestSweepChecksStartTime(t *testing.T) {
	live, err := shm.Create(4096, shm.GeneratedName()) // runs this process's automatic sweep first
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	var fakes []string
	for _, name := range []string{
		fmt.Sprintf("multiproc-%d-1-0123456789abcdef", os.Getpid()), // this pid, another start
		"multiproc-2147483647-1-0123456789abcdef",                   // beyond any pid_max
	} {
		if err := os.WriteFile(segmentPath(name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(segmentPath(name))
		fakes = append(fakes, name)
	}
	removed, err := shm.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range fakes {
		if !slices.Contains(removed, name) {
			t.Errorf("Sweep removed %q, want it to include %q", removed, name)
		}
	}
	if slices.Contains(removed, live.Name()) {
		t.Errorf("Sweep removed the live segment %q", live.Name())
	}
}
