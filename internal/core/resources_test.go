package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// pipeRes is a resource with an ID, backed by a pipe's write end, like a
// shared segment: a worker keeps the imported object for later tasks.
type pipeRes struct {
	id uint64
	f  *os.File
}

func (r *pipeRes) NeedsDescriptors() bool { return r.f != nil }

func (r *pipeRes) ExportResource(x *wire.Exported) error {
	x.ID, x.Files = r.id, []*os.File{r.f}
	return nil
}

func (r *pipeRes) ImportResource(_ []byte, files []*os.File) error {
	if len(files) != 1 {
		return fmt.Errorf("%d files", len(files))
	}
	r.f = files[0]
	importsN.Add(1)
	return nil
}

func (r *pipeRes) Close() error { return r.f.Close() }

// importsN counts imports in a worker: a kept resource is imported once.
var importsN = new(counter)

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) Add(d int) { c.mu.Lock(); c.n += d; c.mu.Unlock() }
func (c *counter) Get() int  { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

// resArg is what the resource tests pass: files (imported afresh each
// time, the task's own), and a kept resource.
type resArg struct {
	B     byte
	Files []*os.File
	Kept  *pipeRes
}

type resReport struct {
	Files, Open, Imports int
}

var (
	resFn = mustAdd("core.test.res", func(ctx context.Context, a resArg) (resReport, error) {
		for _, f := range a.Files {
			if _, err := f.Write([]byte{a.B}); err != nil {
				return resReport{}, err
			}
			f.Close() // the task's own
		}
		if a.Kept != nil {
			if _, err := a.Kept.f.Write([]byte{a.B}); err != nil {
				return resReport{}, err
			}
		}
		return resReport{Files: len(a.Files), Open: openFDs(), Imports: importsN.Get()}, nil
	})
	// nofileFn fills the worker's descriptor table (n > 0: the soft limit
	// just above the highest descriptor, every free number below taken),
	// or undoes that (n == 0).
	nofileFn = mustAdd("core.test.nofile", func(_ context.Context, n int) (int, error) {
		var l syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
		if n == 0 {
			closeFiles(fillers)
			fillers = nil
			l.Cur = l.Max
			return 0, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
		}
		l.Cur = uint64(maxFD() + 1)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
		for {
			f, err := os.Open(os.DevNull)
			if err != nil {
				if !errors.Is(err, syscall.EMFILE) {
					return 0, err
				}
				return len(fillers), nil
			}
			fillers = append(fillers, f)
		}
	})
	fillers []*os.File
	// openFn returns a pipe's read end it created, with "hello" in it.
	openFn = mustAdd("core.test.open", func(_ context.Context, s string) (*os.File, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		defer w.Close()
		w.WriteString(s)
		return r, nil
	})
)

// maxFD is the highest open descriptor number, -1 without /proc.
func maxFD() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	m := -1
	for _, e := range ents {
		var n int
		if _, err := fmt.Sscan(e.Name(), &n); err == nil && n > m {
			m = n
		}
	}
	return m
}

func encodeRes[T any](t *testing.T, v T) ([]byte, []wire.Sent) {
	t.Helper()
	var out wire.Outgoing
	b, err := wire.AppendOut(wire.For[T](), nil, v, &out)
	if err != nil {
		t.Fatal(err)
	}
	return b, out.Res
}

func resTask(t *testing.T, a resArg) *Task {
	b, res := encodeRes(t, a)
	return &Task{Fn: resFn, Payload: b, Res: res}
}

func newPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// TestTaskResources: files reach the worker (SCM_RIGHTS in the sendmsg of
// the frame), as many as were given, more than one sendmsg carries too;
// they are the caller's files (the worker writes through them), and the
// caller may close its own once Submit returned.
func TestTaskResources(t *testing.T) {
	p := newTestPool(t, Config{})
	pr, pw := newPipe(t)
	for _, n := range []int{1, 3, wire.MaxFilesPerMsg + 1} {
		files := make([]*os.File, n)
		for i := range files {
			files[i] = pw
		}
		rep := decode[resReport](t, run(t, p, resTask(t, resArg{B: byte(n), Files: files})))
		if rep.Files != n {
			t.Fatalf("worker received %d files, want %d", rep.Files, n)
		}
		got := make([]byte, n)
		if _, err := readFull(pr, got); err != nil {
			t.Fatal(err)
		}
		for i, b := range got {
			if b != byte(n) {
				t.Fatalf("byte %d through the passed pipe: %d, want %d", i, b, n)
			}
		}
	}
	mine, err := dupFile(pw)
	if err != nil {
		t.Fatal(err)
	}
	task := resTask(t, resArg{B: 'c', Files: []*os.File{mine}})
	ch := make(chan Result, 1)
	task.Ctx, task.Items = context.Background(), 1
	task.Done = func(r Result) { r.Data = append([]byte(nil), r.Data...); ch <- r }
	if err := p.Submit(task); err != nil {
		t.Fatal(err)
	}
	mine.Close()
	if rep := decode[resReport](t, <-ch); rep.Files != 1 {
		t.Fatalf("after the caller closed its file: worker received %d, want 1", rep.Files)
	}
	var b [1]byte
	if _, err := readFull(pr, b[:]); err != nil || b[0] != 'c' {
		t.Fatalf("read %q, %v", b, err)
	}
}

// TestKeptResourceFlat is the resources issue's test: 100k tasks each
// passed the same kept resource; the worker imports it once, and neither
// the worker's descriptor table nor the parent's grows.
func TestKeptResourceFlat(t *testing.T) {
	if openFDs() < 0 {
		t.Skip("no /proc/self/fd")
	}
	p := newTestPool(t, Config{})
	pr, pw := newPipe(t)
	kept := &pipeRes{id: wire.NewID(), f: pw}
	go func() { // drain the pipe so the worker never blocks writing
		buf := make([]byte, 64<<10)
		for {
			if _, err := pr.Read(buf); err != nil {
				return
			}
		}
	}()
	parentBefore := openFDs()
	before := decode[resReport](t, run(t, p, resTask(t, resArg{B: 'a', Kept: kept})))
	n := 100_000
	if testing.Short() || testutil.Race {
		n = 20_000
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad error
	const batch = 1000
	for i := 0; i < n; i += batch {
		tasks := make([]*Task, batch)
		wg.Add(batch)
		for j := range tasks {
			tasks[j] = resTask(t, resArg{B: 'b', Kept: kept})
			tasks[j].Ctx, tasks[j].Items = context.Background(), 1
			tasks[j].Done = func(r Result) {
				if r.Err != nil {
					mu.Lock()
					bad = r.Err
					mu.Unlock()
				}
				wg.Done()
			}
		}
		if err := p.Submit(tasks...); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if bad != nil {
		t.Fatal(bad)
	}
	after := decode[resReport](t, run(t, p, resTask(t, resArg{B: 'c', Kept: kept})))
	if after.Open != before.Open || after.Imports != 1 {
		t.Fatalf("worker: %d descriptors open before %d tasks, %d after; %d imports; want no growth and one import", before.Open, n, after.Open, after.Imports)
	}
	testutil.WaitFor(t, deadline, func() bool { return openFDs() <= parentBefore }, "the pool's descriptors back to where they were")
}

// TestKeptResourceReleased: when the parent releases a resource, the
// worker drops its copy (the descriptor closes there), and a later task
// that passes it again gets it afresh.
func TestKeptResourceReleased(t *testing.T) {
	p := newTestPool(t, Config{})
	pr, pw := newPipe(t)
	kept := &pipeRes{id: wire.NewID(), f: pw}
	go func() {
		buf := make([]byte, 1024)
		for {
			if _, err := pr.Read(buf); err != nil {
				return
			}
		}
	}()
	first := decode[resReport](t, run(t, p, resTask(t, resArg{B: 'a', Kept: kept})))
	wire.Release(kept.id)
	// The evict frame goes out at once; a task without resources, run after
	// it, sees the worker without the descriptor.
	empty := decode[resReport](t, run(t, p, resTask(t, resArg{B: 'b'})))
	if empty.Open != first.Open-1 {
		t.Fatalf("worker has %d descriptors after the release, %d before; want one fewer", empty.Open, first.Open)
	}
	again := decode[resReport](t, run(t, p, resTask(t, resArg{B: 'c', Kept: kept})))
	if again.Imports != first.Imports+1 || again.Open != first.Open {
		t.Fatalf("passed again: %d imports (was %d), %d open (was %d)", again.Imports, first.Imports, again.Open, first.Open)
	}
}

// TestKeptResourceEviction: a worker holds at most cacheLimit resources;
// the least recently used go.
func TestKeptResourceEviction(t *testing.T) {
	p := newTestPool(t, Config{})
	pr, pw := newPipe(t)
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := pr.Read(buf); err != nil {
				return
			}
		}
	}()
	var peak int
	for i := range cacheLimit + 50 {
		rep := decode[resReport](t, run(t, p, resTask(t, resArg{B: byte(i), Kept: &pipeRes{id: wire.NewID(), f: pw}})))
		peak = max(peak, rep.Open)
	}
	base := decode[resReport](t, run(t, p, resTask(t, resArg{B: 'x'})))
	if held := base.Open - (peak - cacheLimit); held > cacheLimit+1 {
		t.Fatalf("worker holds about %d descriptors for resources, want at most %d", held, cacheLimit)
	}
	p.mu.Lock()
	n := len(p.workers[0].cache)
	p.mu.Unlock()
	if n > cacheLimit {
		t.Fatalf("mirror holds %d resources, want at most %d", n, cacheLimit)
	}
}

// TestResourcesLostToEMFILE: a worker whose descriptor table is full
// cannot receive a task's descriptors (MSG_CTRUNC): that task fails with
// ErrFDLimit, no descriptor goes to another task, a kept resource whose
// descriptors were lost is sent again, and the worker serves on.
func TestResourcesLostToEMFILE(t *testing.T) {
	if maxFD() < 0 {
		t.Skip("no /proc/self/fd")
	}
	p := newTestPool(t, Config{})
	pr, pw := newPipe(t)
	go func() {
		buf := make([]byte, 1024)
		for {
			if _, err := pr.Read(buf); err != nil {
				return
			}
		}
	}()
	pid := workerPid(t, p)
	kept := &pipeRes{id: wire.NewID(), f: pw}
	decode[int](t, run(t, p, &Task{Fn: nofileFn, Payload: encode(t, 1)}))
	for i, a := range []resArg{{B: 'a', Files: []*os.File{pw}}, {B: 'b', Kept: kept}, {B: 'c', Kept: kept}} {
		r := run(t, p, resTask(t, a))
		if !errors.Is(r.Err, errs.ErrFDLimit) {
			t.Fatalf("task %d with the worker's table full: %v, want an error matching ErrFDLimit", i, r.Err)
		}
	}
	decode[int](t, run(t, p, &Task{Fn: nofileFn, Payload: encode(t, 0)}))
	rep := decode[resReport](t, run(t, p, resTask(t, resArg{B: 'd', Files: []*os.File{pw}, Kept: kept})))
	if rep.Files != 1 {
		t.Fatalf("after: %d files", rep.Files)
	}
	if got := workerPid(t, p); got != pid {
		t.Fatalf("worker %d replaced by %d", pid, got)
	}
}

// TestResourceResult: a task returns a file it opened; the parent gets
// its own copy with the result.
func TestResourceResult(t *testing.T) {
	p := newTestPool(t, Config{})
	ch := make(chan *os.File, 1)
	task := &Task{Fn: openFn, Payload: encode(t, "hello"), Ctx: context.Background(), Items: 1, Done: func(r Result) {
		if r.Err != nil || r.Res == nil {
			t.Errorf("result: %v, resources %v", r.Err, r.Res)
			ch <- nil
			return
		}
		f, err := wire.DecodeIn(wire.For[*os.File](), r.Data, r.Res)
		r.Res.Close()
		if err != nil {
			t.Error(err)
		}
		ch <- f
	}}
	if err := p.Submit(task); err != nil {
		t.Fatal(err)
	}
	f := <-ch
	if f == nil {
		t.FailNow()
	}
	defer f.Close()
	b := make([]byte, 5)
	if _, err := readFull(f, b); err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v", b, err)
	}
}

// TestInitializerResources: an initializer's resources are kept by each
// worker for its whole life, and tasks passing the same resource use the
// worker's copy.
func TestInitializerResources(t *testing.T) {
	pr, pw := newPipe(t)
	go func() {
		buf := make([]byte, 1024)
		for {
			if _, err := pr.Read(buf); err != nil {
				return
			}
		}
	}()
	kept := &pipeRes{id: wire.NewID(), f: pw}
	arg, res := encodeRes(t, resArg{B: 'i', Kept: kept})
	p := newTestPool(t, Config{Workers: 2, Init: resFn, InitArg: arg, InitRes: res})
	for range 10 {
		rep := decode[resReport](t, run(t, p, resTask(t, resArg{B: 't', Kept: kept})))
		if rep.Imports != 1 {
			t.Fatalf("%d imports in a worker, want 1 (its initializer's)", rep.Imports)
		}
	}
	wire.Release(kept.id) // pinned: nothing happens
	if rep := decode[resReport](t, run(t, p, resTask(t, resArg{B: 't', Kept: kept}))); rep.Imports != 1 {
		t.Fatalf("%d imports after a release, want 1", rep.Imports)
	}
}

// hookRes is a per-task resource (ID 0, as a file) whose export carries a
// Done hook that records each call.
type hookRes struct {
	f     *os.File
	calls chan bool
}

func (r *hookRes) NeedsDescriptors() bool { return r.f != nil }

func (r *hookRes) ExportResource(x *wire.Exported) error {
	x.Files = []*os.File{r.f}
	calls := r.calls
	x.Done = func(delivered bool) { calls <- delivered }
	return nil
}

func (r *hookRes) ImportResource(_ []byte, files []*os.File) error {
	r.f = files[0]
	return nil
}

var hookFn = mustAdd("core.test.hook", func(_ context.Context, r *hookRes) (int, error) {
	r.f.Close()
	return 1, nil
})

// TestResourceDoneHook: a task's resource hook is called once, at the
// task's outcome, with delivered true once its frame went to a worker;
// a task the pool refuses (closed) hears false.
func TestResourceDoneHook(t *testing.T) {
	p := newTestPool(t, Config{})
	_, pw := newPipe(t)
	h := &hookRes{f: pw, calls: make(chan bool, 4)}
	b, res := encodeRes(t, h)
	task := &Task{Fn: hookFn, Payload: b, Res: res}
	run(t, p, task)
	if got := <-h.calls; !got {
		t.Fatal("hook of a delivered task: false")
	}
	b, res = encodeRes(t, h)
	p.Close(context.Background())
	refused := &Task{Fn: hookFn, Payload: b, Res: res, Ctx: context.Background(), Items: 1, Done: func(Result) {}}
	if err := p.Submit(refused); err == nil {
		t.Fatal("Submit to a closed pool succeeded")
	}
	if got := <-h.calls; got {
		t.Fatal("hook of a refused task: true")
	}
	if len(h.calls) != 0 {
		t.Fatalf("%d extra hook calls", len(h.calls))
	}
}
