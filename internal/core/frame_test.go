package core

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/engine"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/registry"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// This test binary is its own pool worker, as the root's is through
// multiproc.Main: a re-executed copy serves its role here (package
// initialisation is over, so its registry is complete) and never returns.
func init() {
	if boot.IsChild() {
		boot.Serve()
	}
	boot.SetMainCalled()
}

// deadline is generous: a loaded 2-core machine under -race is slow.
const deadline = 60 * time.Second

func mustAdd[In, Out any](name string, fn func(context.Context, In) (Out, error)) *registry.Entry {
	e, err := registry.Add(name, fn)
	if err != nil {
		panic(err)
	}
	return e
}

var pidFn = mustAdd("core.test.pid", func(context.Context, int) (int, error) { return os.Getpid(), nil })

// openFDs counts this process's descriptors, -1 where /proc is missing.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func newTestPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	p, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { p.Terminate() })
	return p
}

// run submits a task and waits for its result, whose Data it copies.
func run(t *testing.T, p *Pool, task *Task) Result {
	t.Helper()
	ch := make(chan Result, 1)
	task.Done = func(r Result) {
		r.Data = append([]byte(nil), r.Data...)
		ch <- r
	}
	if task.Ctx == nil {
		task.Ctx = context.Background()
	}
	if task.Items == 0 {
		task.Items = 1
	}
	if err := p.Submit(task); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(deadline):
		t.Fatalf("task %q: no result within %v", task.Fn.Name, deadline)
		return Result{}
	}
}

func encode[T any](t *testing.T, v T) []byte {
	b, err := wire.For[T]().Append(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode[T any](t *testing.T, r Result) T {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("task failed: %v", r.Err)
	}
	v, err := wire.For[T]().Decode(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func workerPid(t *testing.T, p *Pool) int {
	t.Helper()
	return decode[int](t, run(t, p, &Task{Fn: pidFn, Payload: encode(t, 0)}))
}

// TestOversizedFirstTask guards the stub sent for a task too large to
// send: when it is the first use of its function on a worker, the stub
// must still carry the function's name, or the worker reads a corrupt frame.
// The error is a *TooLargeError matching ErrTooLarge.
func TestOversizedFirstTask(t *testing.T) {
	e := &registry.Entry{Name: "core.big"}
	var wg sync.WaitGroup
	wg.Add(1)
	task := &Task{Fn: e, Payload: make([]byte, 100), Ctx: context.Background(), Done: func(r Result) {
		var tl *errs.TooLargeError
		if !errors.Is(r.Err, errs.ErrTooLarge) || !errors.As(r.Err, &tl) || tl.What != "argument" || tl.Size != 100 || tl.Limit != 64 {
			t.Errorf("oversized task: got %v, want a *TooLargeError for the 100-byte argument, limit 64", r.Err)
		}
		if r.Outcome != engine.Failed {
			t.Errorf("outcome %v, want failed", r.Outcome)
		}
		wg.Done()
	}}
	w := &worker{p: &Pool{cfg: Config{MaxMessageSize: 64}}, fnRefs: map[*registry.Entry]uint64{}}
	w.appendTask(task, 0, nil, nil)
	wg.Wait()

	kind, payload, n, err := wire.ParseFrame(w.wbuf, 0)
	if err != nil || n != len(w.wbuf) || kind != kindTask {
		t.Fatalf("frame: kind %#x, %d of %d bytes, %v", kind, n, len(w.wbuf), err)
	}
	fns := map[uint64]*registry.Entry{}
	ct, err := parseTask(fns, payload, nil, false)
	if err != nil {
		t.Fatalf("the worker would reject the stub: %v", err)
	}
	if ct.flags&flagCancelled == 0 || ct.fn.Name != "core.big" || len(ct.payload) != 0 {
		t.Fatalf("stub: flags %#x, fn %q, %d payload bytes", ct.flags, ct.fn.Name, len(ct.payload))
	}
}

// TestTaskBudget: a task with a time limit, or a context with a deadline,
// carries the smaller of the two as a relative budget.
func TestTaskBudget(t *testing.T) {
	e := &registry.Entry{Name: "core.budget"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, c := range []struct {
		name     string
		ctx      context.Context
		timeout  time.Duration
		min, max time.Duration
	}{
		{"none", context.Background(), 0, 0, 0},
		{"timeout", context.Background(), 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond},
		{"deadline", ctx, 0, 59 * time.Minute, time.Hour},
		{"both", ctx, time.Second, time.Second, time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &worker{p: &Pool{}, fnRefs: map[*registry.Entry]uint64{}}
			w.appendTask(&Task{Fn: e, Ctx: c.ctx, Timeout: c.timeout, Payload: []byte{1}}, 0, nil, nil)
			_, payload, _, err := wire.ParseFrame(w.wbuf, 0)
			if err != nil {
				t.Fatal(err)
			}
			ct, err := parseTask(map[uint64]*registry.Entry{}, payload, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			if ct.budget < c.min || ct.budget > c.max || string(ct.payload) != "\x01" {
				t.Fatalf("budget %v, payload %q; want a budget in [%v, %v]", ct.budget, ct.payload, c.min, c.max)
			}
		})
	}
}

// TestNotRegistered guards the stub a worker builds for a function its
// binary does not register (here: one the parent never registered either):
// it used to return a nil buffer, and slicing it panicked inside the
// worker, which died with exit code 2. The caller must get
// ErrNotRegistered through the RemoteError, and the worker must live.
func TestNotRegistered(t *testing.T) {
	p := newTestPool(t, Config{})
	pid0 := workerPid(t, p)
	ghost := &registry.Entry{Name: "core.test.notRegisteredAnywhere"}
	for _, chunk := range []bool{false, true} {
		payload := encode(t, 7)
		if chunk {
			b, err := wire.For[int]().AppendSlice(nil, []int{1, 2, 3})
			if err != nil {
				t.Fatal(err)
			}
			payload = b
		}
		r := run(t, p, &Task{Fn: ghost, Chunk: chunk, Payload: payload, Items: 3})
		var re *errs.RemoteError
		if !errors.Is(r.Err, errs.ErrNotRegistered) || !errors.As(r.Err, &re) {
			t.Fatalf("chunk=%v: got %v, want a RemoteError matching ErrNotRegistered", chunk, r.Err)
		}
		if r.Outcome != engine.Failed {
			t.Fatalf("chunk=%v: outcome %v, want failed", chunk, r.Outcome)
		}
		if pid := workerPid(t, p); pid != pid0 {
			t.Fatalf("chunk=%v: worker %d replaced by %d", chunk, pid0, pid)
		}
	}
	if s := p.Stats(); s.Died != 0 || s.Restarts != 0 {
		t.Fatalf("Died %d, Restarts %d; want 0", s.Died, s.Restarts)
	}
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := f.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := wire.DupFD(f)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// TestTaskContext: the worker's task context ends with the error it was
// given, once, and contexts derived from it follow it.
func TestTaskContext(t *testing.T) {
	for _, want := range []error{context.Canceled, context.DeadlineExceeded} {
		c := &taskCtx{deadline: time.Now().Add(time.Hour)}
		if d, ok := c.Deadline(); !ok || d.IsZero() {
			t.Fatal("no deadline")
		}
		child, cancel := context.WithCancel(c)
		defer cancel()
		sub, cancelSub := context.WithTimeout(c, 2*time.Hour)
		defer cancelSub()
		if d, _ := sub.Deadline(); !d.Equal(c.deadline) {
			t.Fatalf("derived deadline %v, want the task's %v", d, c.deadline)
		}
		ran := make(chan struct{})
		context.AfterFunc(c, func() { close(ran) })
		stopped := context.AfterFunc(c, func() { t.Error("stopped AfterFunc ran") })
		if !stopped() {
			t.Fatal("AfterFunc could not be stopped")
		}
		c.cancel(want)
		c.cancel(errors.New("second"))
		<-c.Done()
		<-child.Done()
		<-sub.Done()
		<-ran
		if c.Err() != want || child.Err() != want || sub.Err() != want {
			t.Fatalf("errors %v, %v, %v; want %v", c.Err(), child.Err(), sub.Err(), want)
		}
	}
	if wire.IncomingFrom(&taskCtx{}) != nil || wire.OutgoingFrom(&taskCtx{}) != nil {
		t.Fatal("resources in a context without any")
	}
}
