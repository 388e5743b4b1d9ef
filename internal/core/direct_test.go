package core

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/engine"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/internal/wire"
)

var (
	// holdFn blocks until its task's context ends, then returns its error.
	holdFn = mustAdd("core.test.hold", func(ctx context.Context, _ int) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	// killSelfFn SIGKILLs its own worker after ms milliseconds.
	killSelfFn = mustAdd("core.test.killself", func(_ context.Context, ms int) (int, error) {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	})
	// napFn sleeps ms milliseconds.
	napFn = mustAdd("core.test.nap", func(_ context.Context, ms int) (int, error) {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return ms, nil
	})
	doubleFn = mustAdd("core.test.double", func(_ context.Context, x int) (int, error) { return 2 * x, nil })
)

// submitDirect submits task (its Ctx set, or Background) with a Done that
// records the result, as the root's call does, and returns the channel the
// result arrives on.
func submitDirect(t *testing.T, p *Pool, task *Task) <-chan Result {
	t.Helper()
	ch := make(chan Result, 1)
	task.Done = func(r Result) {
		r.Data = append([]byte(nil), r.Data...)
		ch <- r
	}
	if task.Ctx == nil {
		task.Ctx = context.Background()
	}
	task.Items = 1
	if err := p.Submit(task); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return ch
}

// awaitAsync runs p.Await(ctx, task) on a goroutine and returns a channel
// closed when it returned.
func awaitAsync(p *Pool, ctx context.Context, task *Task) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Await(ctx, task)
	}()
	return done
}

// sleepingOn reports whether a direct reader waits for task in poll.
func sleepingOn(p *Pool, task *Task) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := owner(task)
	return w != nil && w.rd.owner == ownerDirect && w.rd.task == task && w.rd.sleeping
}

func skipWithoutDirect(t *testing.T) {
	if !directReads {
		t.Skip("no direct reads on this platform")
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(deadline):
		t.Fatalf("%s: still waiting after %v", what, deadline)
	}
}

func result(t *testing.T, ch <-chan Result) Result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(deadline):
		t.Fatalf("no result within %v", deadline)
		return Result{}
	}
}

// TestAwaitReadsReply checks the fast path itself: a caller blocked in
// Await on a task of an idle worker reads the reply on its own goroutine
// (the result is delivered before Await returns), and the read loop takes
// the stream back afterwards, so results nobody awaits still arrive.
func TestAwaitReadsReply(t *testing.T) {
	skipWithoutDirect(t)
	p := newTestPool(t, Config{Workers: 1})
	for i := range 3 {
		task := &Task{Fn: napFn, Payload: encode(t, 50)}
		ch := submitDirect(t, p, task)
		done := awaitAsync(p, context.Background(), task)
		testutil.WaitFor(t, deadline, func() bool { return sleepingOn(p, task) || task.Finished() },
			"the caller never blocked reading the stream")
		waitClosed(t, done, "Await")
		select {
		case r := <-ch:
			if r.Err != nil {
				t.Fatalf("nap: %v", r.Err)
			}
		default:
			t.Fatalf("round %d: Await returned before the result was delivered", i)
		}
	}
	for i := range 50 {
		task := &Task{Fn: doubleFn, Payload: encode(t, i)}
		ch := submitDirect(t, p, task)
		p.Await(context.Background(), task)
		if got := decode[int](t, result(t, ch)); got != 2*i {
			t.Fatalf("double(%d) = %d", i, got)
		}
	}
	// Not awaited: the read loop delivers it.
	task := &Task{Fn: doubleFn, Payload: encode(t, 21)}
	if got := decode[int](t, result(t, submitDirect(t, p, task))); got != 42 {
		t.Fatalf("double(21) = %d", got)
	}
}

// TestAwaitCancel: cancelling a task's context while its caller is blocked
// reading the worker's stream answers the caller at once with the
// context's error, and the pool goes on serving (the worker stops the task
// and its late reply is read by the read loop).
func TestAwaitCancel(t *testing.T) {
	skipWithoutDirect(t)
	p := newTestPool(t, Config{Workers: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	task := &Task{Fn: holdFn, Payload: encode(t, 0), Ctx: ctx}
	ch := submitDirect(t, p, task)
	done := awaitAsync(p, ctx, task)
	testutil.WaitFor(t, deadline, func() bool { return sleepingOn(p, task) }, "the caller never blocked reading the stream")
	cancel()
	waitClosed(t, done, "Await after cancel")
	r := result(t, ch)
	if !errors.Is(r.Err, context.Canceled) || r.Outcome != engine.Cancelled {
		t.Fatalf("cancelled task: got %v (%v), want context.Canceled (cancelled)", r.Err, r.Outcome)
	}
	if got := decode[int](t, run(t, p, &Task{Fn: doubleFn, Payload: encode(t, 4)})); got != 8 {
		t.Fatalf("after the cancel: double(4) = %d", got)
	}
}

// TestAwaitOwnContext: when the context given to Await (Get's) ends, Await
// returns and the task goes on; its result is delivered by the read loop.
func TestAwaitOwnContext(t *testing.T) {
	skipWithoutDirect(t)
	p := newTestPool(t, Config{Workers: 1})
	taskCtx, stopTask := context.WithCancel(context.Background())
	defer stopTask()
	task := &Task{Fn: holdFn, Payload: encode(t, 0), Ctx: taskCtx}
	ch := submitDirect(t, p, task)
	getCtx, stopGet := context.WithCancel(context.Background())
	done := awaitAsync(p, getCtx, task)
	testutil.WaitFor(t, deadline, func() bool { return sleepingOn(p, task) }, "the caller never blocked reading the stream")
	stopGet()
	waitClosed(t, done, "Await after its context ended")
	if task.Finished() {
		t.Fatal("the task was settled when only the waiter's context ended")
	}
	stopTask()
	if r := result(t, ch); !errors.Is(r.Err, context.Canceled) {
		t.Fatalf("task: got %v, want context.Canceled", r.Err)
	}
}

// TestAwaitTimeout: a task's time limit ends a caller blocked reading the
// stream with ErrTimeout at the deadline, even though the task goes on
// running (it ignores its context): the timeout wakes the caller, not a
// reply.
func TestAwaitTimeout(t *testing.T) {
	skipWithoutDirect(t)
	p := newTestPool(t, Config{Workers: 1, Grace: time.Minute})
	task := &Task{Fn: napFn, Payload: encode(t, 3000), Timeout: 300 * time.Millisecond}
	ch := submitDirect(t, p, task)
	done := awaitAsync(p, context.Background(), task)
	waitClosed(t, done, "Await of a task past its time limit")
	p.mu.Lock()
	w := p.workers[0]
	running := w.words.Load(wordStarted) > w.words.Load(wordCompleted)
	sleeps := w.rd.sleeps
	p.mu.Unlock()
	if sleeps == 0 {
		t.Fatal("the caller never blocked reading the stream")
	}
	r := result(t, ch)
	if !errors.Is(r.Err, errs.ErrTimeout) || r.Outcome != engine.TimedOut {
		t.Fatalf("timed-out task: got %v (%v), want ErrTimeout (timed out)", r.Err, r.Outcome)
	}
	if !running {
		t.Fatal("Await returned only once the worker had finished the task, not at its time limit")
	}
	// The worker keeps running it (Grace is long) and answers late; the
	// next task waits behind it and succeeds.
	if got := decode[int](t, run(t, p, &Task{Fn: doubleFn, Payload: encode(t, 5)})); got != 10 {
		t.Fatalf("after the timeout: double(5) = %d", got)
	}
}

// TestAwaitWorkerDeath: the worker dying under a caller blocked reading its
// stream fails exactly that task with ErrWorkerDied (the caller sees the end
// of the stream itself), and the pool replaces the worker.
func TestAwaitWorkerDeath(t *testing.T) {
	skipWithoutDirect(t)
	p := newTestPool(t, Config{Workers: 1})
	old := workerPid(t, p)
	p.mu.Lock()
	w := p.workers[0]
	p.mu.Unlock()
	task := &Task{Fn: killSelfFn, Payload: encode(t, 200)}
	ch := submitDirect(t, p, task)
	done := awaitAsync(p, context.Background(), task)
	waitClosed(t, done, "Await while the worker dies")
	p.mu.Lock()
	sleeps := w.rd.sleeps
	p.mu.Unlock()
	if sleeps == 0 {
		t.Fatal("the caller never blocked reading the stream")
	}
	r := result(t, ch)
	var ee *errs.ExitError
	if !errors.Is(r.Err, errs.ErrWorkerDied) || !errors.As(r.Err, &ee) || ee.Pid != old || ee.Signal != syscall.SIGKILL {
		t.Fatalf("task whose worker was killed: got %v, want ErrWorkerDied of pid %d by SIGKILL", r.Err, old)
	}
	if r.Outcome != engine.Died {
		t.Fatalf("outcome %v, want died", r.Outcome)
	}
	if pid := workerPid(t, p); pid == old {
		t.Fatalf("worker %d still answers after it was killed", pid)
	}
}

// TestAwaitConcurrent has many callers await tasks on two workers at once,
// with other tasks nobody awaits in between: every result arrives, whoever
// reads the stream (run under -race).
func TestAwaitConcurrent(t *testing.T) {
	p := newTestPool(t, Config{Workers: 2})
	get := func(ch <-chan Result) (int, error) {
		select {
		case r := <-ch:
			if r.Err != nil {
				return 0, r.Err
			}
			return wire.For[int]().Decode(r.Data)
		case <-time.After(deadline):
			return 0, errors.New("no result")
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				x := g*1000 + i
				payload, _ := wire.For[int]().Append(nil, x)
				task := &Task{Fn: doubleFn, Payload: payload}
				ch := make(chan Result, 1)
				task.Done = func(r Result) {
					r.Data = append([]byte(nil), r.Data...)
					ch <- r
				}
				task.Ctx, task.Items = context.Background(), 1
				task.Awaited = i%3 != 0 && g%2 == 0 // as Apply does: Await follows
				if err := p.Submit(task); err != nil {
					t.Errorf("Submit: %v", err)
					return
				}
				if i%3 != 0 { // the others nobody awaits
					p.Await(context.Background(), task)
				}
				if got, err := get(ch); err != nil || got != 2*x {
					t.Errorf("double(%d) = %d, %v", x, got, err)
				}
			}
		})
	}
	wg.Wait()
}

// awaited submits task as a synchronous Apply does (Awaited, then Await on
// the same goroutine) and returns its result.
func awaited(t *testing.T, p *Pool, ctx context.Context, task *Task) Result {
	t.Helper()
	task.Awaited = true
	ch := submitDirect(t, p, task)
	p.Await(ctx, task)
	return result(t, ch)
}

// parkedPool returns a Pool(1) (cfg's other fields kept) whose worker's
// stream is parked: Awaited tasks ran on it until one's caller read its
// reply (the read loop may beat a caller to it).
func parkedPool(t *testing.T, cfg Config) (*Pool, *worker) {
	t.Helper()
	cfg.Workers = 1
	p := newTestPool(t, cfg)
	p.mu.Lock()
	w := p.workers[0]
	p.mu.Unlock()
	for i := 0; !isParked(p, w); i++ {
		if i == 100 {
			t.Fatal("the stream was not parked after 100 Awaited tasks")
		}
		if got := decode[int](t, awaited(t, p, context.Background(), &Task{Fn: doubleFn, Payload: encode(t, i)})); got != 2*i {
			t.Fatalf("double(%d) = %d", i, got)
		}
	}
	return p, w
}

func isParked(p *Pool, w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return w.rd.parked
}

// TestParkedStream: consecutive Awaited tasks keep the stream parked (the
// read loop is not involved); a task nobody awaits unparks it and is
// delivered by the read loop; the next Awaited task parks it again.
func TestParkedStream(t *testing.T) {
	skipWithoutDirect(t)
	p, w := parkedPool(t, Config{})
	for i := range 50 {
		if got := decode[int](t, awaited(t, p, context.Background(), &Task{Fn: doubleFn, Payload: encode(t, i)})); got != 2*i {
			t.Fatalf("double(%d) = %d", i, got)
		}
		if !isParked(p, w) {
			t.Fatalf("task %d unparked the stream", i)
		}
	}
	if got := decode[int](t, result(t, submitDirect(t, p, &Task{Fn: doubleFn, Payload: encode(t, 21)}))); got != 42 {
		t.Fatalf("double(21) = %d", got)
	}
	if isParked(p, w) {
		t.Fatal("a task nobody awaits left the stream parked")
	}
	for i := 0; !isParked(p, w); i++ {
		if i == 100 {
			t.Fatal("100 Awaited tasks did not park the stream again")
		}
		awaited(t, p, context.Background(), &Task{Fn: doubleFn, Payload: encode(t, 2)})
	}
}

// TestParkedCancel: cancelling an Awaited task on a parked stream while
// its caller is blocked reading answers the caller at once, and the
// worker's late reply is still read (the pool goes on and closes).
func TestParkedCancel(t *testing.T) {
	skipWithoutDirect(t)
	p, _ := parkedPool(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	task := &Task{Fn: holdFn, Payload: encode(t, 0), Ctx: ctx, Awaited: true}
	ch := submitDirect(t, p, task)
	done := awaitAsync(p, ctx, task)
	testutil.WaitFor(t, deadline, func() bool { return sleepingOn(p, task) }, "the caller never blocked reading the stream")
	cancel()
	waitClosed(t, done, "Await after cancel")
	if r := result(t, ch); !errors.Is(r.Err, context.Canceled) || r.Outcome != engine.Cancelled {
		t.Fatalf("cancelled task: got %v (%v), want context.Canceled (cancelled)", r.Err, r.Outcome)
	}
	if got := decode[int](t, awaited(t, p, context.Background(), &Task{Fn: doubleFn, Payload: encode(t, 4)})); got != 8 {
		t.Fatalf("after the cancel: double(4) = %d", got)
	}
}

// TestParkedGiveUp: an Awaited task whose Await returns at once (its
// context is over already) on a parked stream is not left unread: the
// stream is unparked and the read loop delivers its result.
func TestParkedGiveUp(t *testing.T) {
	skipWithoutDirect(t)
	p, w := parkedPool(t, Config{})
	task := &Task{Fn: napFn, Payload: encode(t, 50), Awaited: true}
	ch := submitDirect(t, p, task)
	over, stop := context.WithCancel(context.Background())
	stop()
	p.Await(over, task)
	if r := result(t, ch); r.Err != nil || decode[int](t, r) != 50 {
		t.Fatalf("nap(50): %v", r.Err)
	}
	if isParked(p, w) {
		t.Fatal("still parked after a task nobody read")
	}
}

// TestParkedTimeout: a time limit ends a caller blocked on a parked
// stream with ErrTimeout at the deadline; the task's late reply is read
// and the next task succeeds.
func TestParkedTimeout(t *testing.T) {
	skipWithoutDirect(t)
	p, _ := parkedPool(t, Config{Grace: time.Minute})
	task := &Task{Fn: napFn, Payload: encode(t, 2000), Timeout: 300 * time.Millisecond, Awaited: true}
	ch := submitDirect(t, p, task)
	done := awaitAsync(p, context.Background(), task)
	waitClosed(t, done, "Await of a task past its time limit")
	if r := result(t, ch); !errors.Is(r.Err, errs.ErrTimeout) || r.Outcome != engine.TimedOut {
		t.Fatalf("timed-out task: got %v (%v), want ErrTimeout (timed out)", r.Err, r.Outcome)
	}
	if got := decode[int](t, awaited(t, p, context.Background(), &Task{Fn: doubleFn, Payload: encode(t, 5)})); got != 10 {
		t.Fatalf("after the timeout: double(5) = %d", got)
	}
}

// TestParkedWorkerDeath: the worker of a parked stream dying under an
// Awaited task's caller fails exactly that task with ErrWorkerDied (its
// pid, SIGKILL), and the pool replaces the worker.
func TestParkedWorkerDeath(t *testing.T) {
	skipWithoutDirect(t)
	p, w := parkedPool(t, Config{})
	old := w.pid // (workerPid would unpark it)
	r := awaited(t, p, context.Background(), &Task{Fn: killSelfFn, Payload: encode(t, 100)})
	var ee *errs.ExitError
	if !errors.Is(r.Err, errs.ErrWorkerDied) || !errors.As(r.Err, &ee) || ee.Pid != old || ee.Signal != syscall.SIGKILL || r.Outcome != engine.Died {
		t.Fatalf("task whose worker was killed: got %v (%v), want ErrWorkerDied of pid %d by SIGKILL", r.Err, r.Outcome, old)
	}
	if pid := workerPid(t, p); pid == old {
		t.Fatalf("worker %d still answers after it was killed", pid)
	}
}

// TestParkedIdleDeath: an idle worker whose stream is parked (nobody reads
// its socket) is still seen to die, through its pidfd, and replaced.
func TestParkedIdleDeath(t *testing.T) {
	skipWithoutDirect(t)
	p, w := parkedPool(t, Config{})
	old := w.pid
	syscall.Kill(old, syscall.SIGKILL)
	testutil.WaitFor(t, deadline, func() bool { return p.Stats().Restarts > 0 }, "the parked worker's death was never seen")
	if pid := workerPid(t, p); pid == old {
		t.Fatalf("worker %d still answers after it was killed", pid)
	}
}
