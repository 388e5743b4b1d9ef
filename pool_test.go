package multiproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// deadline is generous: a loaded 2-core machine under -race is slow.
const deadline = 60 * time.Second

var (
	square = multiproc.Register("test.square", multiproc.Plain(func(x int) int { return x * x }))
	fail   = multiproc.Register("test.fail", func(_ context.Context, x int) (int, error) {
		if x%7 == 3 {
			return 0, fmt.Errorf("item %d: %w", x, errTest)
		}
		return x, nil
	})
	errTest = multiproc.RegisterError(errors.New("test sentinel"))
	pid     = multiproc.Register("test.pid", multiproc.Plain(func(int) int { return os.Getpid() }))
	// die ends its worker process the way asked, mid-task.
	die = multiproc.Register("test.die", func(_ context.Context, how string) (int, error) {
		switch how {
		case "exit":
			os.Exit(7)
		case "kill":
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		case "segv":
			syscall.Kill(os.Getpid(), syscall.SIGSEGV)
		case "goroutine-panic":
			go panic("crash in a goroutine the task started")
		}
		time.Sleep(time.Hour) // workload: wait for the signal to land
		return 0, nil
	})
	// block runs until its context is cancelled, or forever if stubborn.
	block = multiproc.Register("test.block", func(ctx context.Context, a blockArg) (int, error) {
		if a.Marker != "" {
			os.WriteFile(a.Marker, []byte("started"), 0o600)
		}
		if a.Stubborn {
			time.Sleep(time.Hour)
		}
		<-ctx.Done()
		return 0, ctx.Err()
	})
	// touch records that it ran, for tests that check what did not run.
	touch = multiproc.Register("test.touch", func(_ context.Context, path string) (string, error) {
		return path, os.WriteFile(path, nil, 0o600)
	})
	// dieOnce kills its worker the first time (marker absent) and succeeds
	// when retried.
	dieOnce = multiproc.Register("test.dieOnce", func(_ context.Context, marker string) (string, error) {
		if _, err := os.Stat(marker); err != nil {
			os.WriteFile(marker, nil, 0o600)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Hour)
		}
		return "second attempt", nil
	})
	initValue string
	setInit   = multiproc.Register("test.setInit", func(_ context.Context, v string) (struct{}, error) {
		if v == "fail" {
			return struct{}{}, errors.New("initializer refuses")
		}
		if _, err := os.Stat(v); err == nil { // marker present: fail from now on
			return struct{}{}, errors.New("initializer fails for replacements")
		}
		initValue = "init:" + filepath.Base(v)
		return struct{}{}, nil
	})
	getInit = multiproc.Register("test.getInit", multiproc.Plain(func(int) string { return initValue }))
	hog     []byte
	grow    = multiproc.Register("test.grow", func(_ context.Context, mb int) (int, error) {
		hog = make([]byte, mb<<20)
		for i := range hog {
			hog[i] = 1
		}
		return os.Getpid(), nil
	})
	// badResult's result type passes Register (an interface cannot be
	// checked there) but its value cannot be encoded in the worker.
	badResult = multiproc.Register("test.badResult", func(context.Context, int) (any, error) {
		return make(chan int), nil
	})
)

type blockArg struct {
	Marker   string
	Stubborn bool
}

func newPool(t *testing.T, n int, opts ...multiproc.PoolOption) *multiproc.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	p, err := multiproc.NewPool(ctx, n, opts...)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() { p.Terminate() })
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

func TestMapOrderAndChunks(t *testing.T) {
	p := newPool(t, 2)
	ctx := ctxT(t)
	items := make([]int, 1000)
	for i := range items {
		items[i] = i
	}
	for _, cs := range []int{0, 1, 7, 1000, 5000} {
		got, err := multiproc.Map(ctx, p, square, items, multiproc.Chunksize(cs))
		if err != nil {
			t.Fatalf("chunksize %d: %v", cs, err)
		}
		for i, v := range got {
			if v != i*i {
				t.Fatalf("chunksize %d: item %d = %d, want %d", cs, i, v, i*i)
			}
		}
	}
	got, err := multiproc.Map(ctx, p, square, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty map: %v, %v", got, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := multiproc.Map(ctx, p, square, items); !errors.Is(err, multiproc.ErrPoolClosed) {
		t.Fatalf("map after close: got %v, want ErrPoolClosed", err)
	}
}

func TestMapError(t *testing.T) {
	p := newPool(t, 2)
	ctx := ctxT(t)
	_, err := multiproc.Map(ctx, p, fail, []int{0, 1, 2, 3, 4}, multiproc.Chunksize(2))
	var re *multiproc.RemoteError
	if !errors.As(err, &re) || !errors.Is(err, errTest) {
		t.Fatalf("got %v, want a RemoteError matching errTest", err)
	}
	if re.Func != "test.fail" || re.Message != "item 3: test sentinel" {
		t.Fatalf("remote error %+v", re)
	}
	// The pool is still healthy.
	if v, err := multiproc.Apply(ctx, p, square, 12); err != nil || v != 144 {
		t.Fatalf("apply after error: %v %v", v, err)
	}
}

func TestImap(t *testing.T) {
	p := newPool(t, 2)
	ctx := ctxT(t)
	for _, ordered := range []bool{true, false} {
		seq := slices.Values([]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
		it := multiproc.Imap(ctx, p, square, seq, multiproc.Chunksize(3))
		if !ordered {
			it = multiproc.ImapUnordered(ctx, p, square, seq)
		}
		var got []int
		for v, err := range it {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		if !ordered {
			sort.Ints(got)
		}
		if want := []int{1, 4, 9, 16, 25, 36, 49, 64, 81, 100}; !slices.Equal(got, want) {
			t.Fatalf("ordered=%v: got %v, want %v", ordered, got, want)
		}
	}
	// Items before a failure are yielded, then the error, then nothing.
	var got []int
	var gotErr error
	for v, err := range multiproc.Imap(ctx, p, fail, slices.Values([]int{0, 1, 2, 3, 4})) {
		if err != nil {
			gotErr = err
			continue
		}
		got = append(got, v)
	}
	if !slices.Equal(got, []int{0, 1, 2}) || !errors.Is(gotErr, errTest) {
		t.Fatalf("got %v then %v", got, gotErr)
	}
}

// TestImapEndless is the regression test for CPython's executor.map, which
// consumes its whole input first: ours reads it lazily.
func TestImapEndless(t *testing.T) {
	p := newPool(t, 2)
	ctx := ctxT(t)
	var produced int
	endless := func(yield func(int) bool) {
		for i := 0; ; i++ {
			produced++
			if !yield(i) {
				return
			}
		}
	}
	n := 0
	for v, err := range multiproc.Imap(ctx, p, square, endless, multiproc.Prefetch(8)) {
		if err != nil {
			t.Fatal(err)
		}
		if v != n*n {
			t.Fatalf("item %d = %d", n, v)
		}
		if n++; n == 100 {
			break
		}
	}
	if produced > 100+8+1 {
		t.Fatalf("read %d items of an endless input for 100 results with prefetch 8", produced)
	}
}

func TestStarmap(t *testing.T) {
	add := multiproc.Func[multiproc.Args2[int, int], int](addF)
	p := newPool(t, 2)
	got, err := multiproc.Starmap(ctxT(t), p, add, []multiproc.Args2[int, int]{{V1: 1, V2: 2}, multiproc.Pack2(3, 4)})
	if err != nil || !slices.Equal(got, []int{3, 7}) {
		t.Fatalf("got %v, %v", got, err)
	}
}

var addF = multiproc.Register2("test.add", func(_ context.Context, a, b int) (int, error) { return a + b, nil })

func TestApplyAsyncCallbacks(t *testing.T) {
	p := newPool(t, 2)
	ctx := ctxT(t)
	var got []int // callbacks run one at a time: no lock needed
	var errs []error
	var rs []*multiproc.AsyncResult[int]
	for i := range 20 {
		rs = append(rs, multiproc.ApplyAsync(ctx, p, fail, i).
			OnResult(func(v int) { got = append(got, v) }).
			OnError(func(err error) { errs = append(errs, err) }))
	}
	for _, r := range rs {
		r.Wait(ctx)
	}
	ok, err := rs[3].Successful()
	if ok || err != nil {
		t.Fatalf("Successful of a failed call: %v, %v", ok, err)
	}
	if err := p.Close(); err != nil { // waits for callbacks
		t.Fatal(err)
	}
	if len(got) != 17 || len(errs) != 3 {
		t.Fatalf("%d results and %d errors, want 17 and 3", len(got), len(errs))
	}
	// MapAsync
	q := newPool(t, 1)
	r := multiproc.MapAsync(ctx, q, square, []int{1, 2, 3})
	v, err := r.Get(ctx)
	if err != nil || !slices.Equal(v, []int{1, 4, 9}) || !r.Ready() {
		t.Fatalf("MapAsync: %v %v", v, err)
	}
}

func TestUnencodable(t *testing.T) {
	p := newPool(t, 1)
	ctx := ctxT(t)
	type bad struct{ C chan int }
	f := multiproc.Func[bad, int]{} // zero Func: not registered
	if _, err := multiproc.Apply(ctx, p, f, bad{}); !errors.Is(err, multiproc.ErrNotRegistered) {
		t.Fatalf("zero Func: %v", err)
	}
	if _, err := multiproc.Apply(ctx, p, badResult, 1); err == nil || !strings.Contains(err.Error(), "chan int") {
		t.Fatalf("unencodable result: got %v, want an error naming chan int", err)
	}
	if _, err := multiproc.Apply(ctx, p, square, 2); err != nil {
		t.Fatalf("pool broken after an unencodable result: %v", err)
	}
}

func TestWorkerDeath(t *testing.T) {
	for _, tc := range []struct {
		how  string
		code int
	}{{"exit", 7}, {"kill", -9}, {"segv", 2}, {"goroutine-panic", 2}} {
		t.Run(tc.how, func(t *testing.T) {
			p := newPool(t, 2)
			ctx := ctxT(t)
			before := p.Stats().PerWorker
			var rs []*multiproc.AsyncResult[int]
			for i := range 20 {
				rs = append(rs, multiproc.ApplyAsync(ctx, p, square, i))
			}
			_, err := multiproc.Apply(ctx, p, die, tc.how)
			var ee *multiproc.ExitError
			if !errors.Is(err, multiproc.ErrWorkerDied) || !errors.As(err, &ee) || ee.Code != tc.code {
				t.Fatalf("got %v, want ErrWorkerDied with exit code %d", err, tc.code)
			}
			for i, r := range rs {
				if v, err := r.Get(ctx); err != nil || v != i*i {
					t.Fatalf("sibling %d: %v %v", i, v, err)
				}
			}
			// A replacement serves new work.
			if v, err := multiproc.Apply(ctx, p, square, 5); err != nil || v != 25 {
				t.Fatalf("after death: %v %v", v, err)
			}
			testutil.WaitFor(t, deadline, func() bool { return p.Stats().Workers == 2 }, "pool back to 2 workers")
			if s := p.Stats(); s.Died != 1 || s.Restarts < 1 {
				t.Fatalf("stats after one death: %+v (before %+v)", s, before)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	p := newPool(t, 1, multiproc.Grace(100*time.Millisecond))
	ctx := ctxT(t)
	pid0 := p.Stats().PerWorker[0].Pid
	_, err := multiproc.Apply(ctx, p, block, blockArg{Stubborn: true}, multiproc.Timeout(50*time.Millisecond))
	if !errors.Is(err, multiproc.ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	if v, err := multiproc.Apply(ctx, p, square, 3); err != nil || v != 9 {
		t.Fatalf("after timeout: %v %v", v, err)
	}
	if pid1 := p.Stats().PerWorker[0].Pid; pid1 == pid0 {
		t.Fatalf("timed-out worker %d was not replaced", pid0)
	}
	// Pool-wide default.
	q := newPool(t, 1, multiproc.TaskTimeout(50*time.Millisecond))
	if _, err := multiproc.Apply(ctx, q, block, blockArg{}); !errors.Is(err, multiproc.ErrTimeout) {
		t.Fatalf("pool default: got %v, want ErrTimeout", err)
	}
	if s := q.Stats(); s.TimedOut != 1 {
		t.Fatalf("TimedOut = %d, want 1", s.TimedOut)
	}
}

func TestCancelRunning(t *testing.T) {
	for _, stubborn := range []bool{false, true} {
		t.Run(fmt.Sprintf("stubborn=%v", stubborn), func(t *testing.T) {
			p := newPool(t, 1, multiproc.Grace(100*time.Millisecond))
			marker := filepath.Join(t.TempDir(), "started")
			pid0 := p.Stats().PerWorker[0].Pid
			cctx, cancel := context.WithCancel(context.Background())
			r := multiproc.ApplyAsync(cctx, p, block, blockArg{Marker: marker, Stubborn: stubborn})
			testutil.WaitFor(t, deadline, func() bool { _, err := os.Stat(marker); return err == nil }, "task started")
			cancel()
			if _, err := r.Get(ctxT(t)); !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
			ctx := ctxT(t)
			if v, err := multiproc.Apply(ctx, p, square, 4); err != nil || v != 16 {
				t.Fatalf("after cancel: %v %v", v, err)
			}
			pid1 := p.Stats().PerWorker[0].Pid
			if stubborn == (pid1 == pid0) {
				t.Fatalf("stubborn=%v: worker pid %d -> %d; want it replaced only when stubborn", stubborn, pid0, pid1)
			}
		})
	}
}

func TestCancelQueued(t *testing.T) {
	p := newPool(t, 1)
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	ctx := ctxT(t)
	blocker, stop := context.WithCancel(ctx)
	running := multiproc.ApplyAsync(blocker, p, block, blockArg{Marker: marker})
	testutil.WaitFor(t, deadline, func() bool { _, err := os.Stat(marker); return err == nil }, "blocker started")
	qctx, qcancel := context.WithCancel(ctx)
	var queued []*multiproc.AsyncResult[string]
	for i := range 5 {
		queued = append(queued, multiproc.ApplyAsync(qctx, p, touch, filepath.Join(dir, fmt.Sprint(i))))
	}
	qcancel()
	for _, r := range queued {
		if _, err := r.Get(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("queued task: got %v, want context.Canceled", err)
		}
	}
	stop()
	running.Wait(ctx)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprint(i))); err == nil {
			t.Fatalf("cancelled queued task %d ran", i)
		}
	}
}

func TestRetries(t *testing.T) {
	p := newPool(t, 1, multiproc.Retries(1, multiproc.ErrWorkerDied))
	v, err := multiproc.Apply(ctxT(t), p, dieOnce, filepath.Join(t.TempDir(), "m"))
	if err != nil || v != "second attempt" {
		t.Fatalf("got %q, %v", v, err)
	}
	if s := p.Stats(); s.Retried != 1 {
		t.Fatalf("Retried = %d, want 1", s.Retried)
	}
}

func TestMaxTasksPerChild(t *testing.T) {
	p := newPool(t, 2, multiproc.MaxTasksPerChild(3))
	ctx := ctxT(t)
	var rs []*multiproc.AsyncResult[int]
	for i := range 30 {
		rs = append(rs, multiproc.ApplyAsync(ctx, p, pid, i))
	}
	count := map[int]int{}
	for _, r := range rs {
		v, err := r.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		count[v]++
	}
	for pid, n := range count {
		if n > 3 {
			t.Fatalf("worker %d ran %d tasks, limit 3", pid, n)
		}
	}
	if len(count) < 10 {
		t.Fatalf("30 tasks ran on %d workers, want at least 10", len(count))
	}
}

func TestMaxMemory(t *testing.T) {
	p := newPool(t, 1, multiproc.MaxMemory(64<<20))
	ctx := ctxT(t)
	pid0, err := multiproc.Apply(ctx, p, grow, 128)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, deadline, func() bool {
		s := p.Stats()
		return s.Recycled >= 1 && len(s.PerWorker) == 1 && s.PerWorker[0].Pid != pid0
	}, "worker over its memory limit recycled")
	if v, err := multiproc.Apply(ctx, p, square, 6); err != nil || v != 36 {
		t.Fatalf("after recycling: %v %v", v, err)
	}
}

func TestInitializer(t *testing.T) {
	dir := t.TempDir()
	p := newPool(t, 2, multiproc.Initializer(setInit, filepath.Join(dir, "x")))
	v, err := multiproc.Apply(ctxT(t), p, getInit, 0)
	if err != nil || v != "init:x" {
		t.Fatalf("got %q, %v", v, err)
	}
	_, err = multiproc.NewPool(ctxT(t), 2, multiproc.Initializer(setInit, "fail"))
	var re *multiproc.RemoteError
	if !errors.As(err, &re) || re.Message != "initializer refuses" {
		t.Fatalf("failing initializer: got %v", err)
	}
}

// TestCrashLoop: when replacements cannot start (their initializer fails),
// queued work fails with ErrPoolBroken and the cause, instead of waiting
// forever or respawning in a tight loop as CPython does.
func TestCrashLoop(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "broken")
	p := newPool(t, 1, multiproc.Initializer(setInit, marker))
	ctx := ctxT(t)
	os.WriteFile(marker, nil, 0o600) // replacements now fail to initialise
	var rs []*multiproc.AsyncResult[int]
	for i := range 5 {
		rs = append(rs, multiproc.ApplyAsync(ctx, p, square, i))
	}
	if _, err := multiproc.Apply(ctx, p, die, "kill"); !errors.Is(err, multiproc.ErrWorkerDied) {
		t.Fatalf("killer: %v", err)
	}
	var queued []*multiproc.AsyncResult[int]
	for i := range 5 {
		queued = append(queued, multiproc.ApplyAsync(ctx, p, square, i))
	}
	for _, r := range rs {
		r.Wait(ctx)
	}
	for _, r := range queued {
		if _, err := r.Get(ctx); !errors.Is(err, multiproc.ErrPoolBroken) || !strings.Contains(err.Error(), "initializer fails for replacements") {
			t.Fatalf("queued after breakage: got %v, want ErrPoolBroken with the cause", err)
		}
	}
	if _, err := multiproc.Apply(ctx, p, square, 1); !errors.Is(err, multiproc.ErrPoolBroken) {
		t.Fatalf("submit to a broken pool: %v", err)
	}
}

// TestChaos kills random workers while 10k tasks run: every task is
// answered, with its result or ErrWorkerDied, none lost, no hang.
func TestChaos(t *testing.T) {
	p := newPool(t, 2)
	ctx := ctxT(t)
	const n = 10000
	rs := make([]*multiproc.AsyncResult[int], n)
	for i := range n {
		rs[i] = multiproc.ApplyAsync(ctx, p, square, i)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		kills := 0
		for kills < 20 {
			select {
			case <-stop:
				return
			default:
			}
			ws := p.Stats().PerWorker
			if len(ws) == 0 {
				continue
			}
			if syscall.Kill(ws[kills%len(ws)].Pid, syscall.SIGKILL) == nil {
				kills++
			}
			// Let the pool make progress between kills.
			rs[min(n-1, kills*n/25)].Wait(ctx)
		}
	}()
	ok, died := 0, 0
	for i, r := range rs {
		v, err := r.Get(ctx)
		switch {
		case err == nil && v == i*i:
			ok++
		case errors.Is(err, multiproc.ErrWorkerDied):
			died++
		default:
			close(stop)
			wg.Wait()
			t.Fatalf("task %d: %v, %v", i, v, err)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d ok, %d lost to killed workers", ok, died)
	if ok+died != n || ok < n/2 {
		t.Fatalf("%d ok + %d died of %d", ok, died, n)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTerminateAndJoin(t *testing.T) {
	p := newPool(t, 2)
	ctx := ctxT(t)
	if err := p.Join(ctx); err == nil {
		t.Fatal("Join on a running pool succeeded; want an error")
	}
	r := multiproc.ApplyAsync(ctx, p, block, blockArg{Stubborn: true})
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx); !errors.Is(err, multiproc.ErrPoolClosed) {
		t.Fatalf("task at terminate: %v", err)
	}
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestProgressTo(t *testing.T) {
	var buf syncBuffer
	p := newPool(t, 2, multiproc.ProgressTo(&buf))
	items := make([]int, 500)
	if _, err := multiproc.Map(ctxT(t), p, square, items, multiproc.Chunksize(10)); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "test.square") || !strings.Contains(out, "500/500") {
		t.Fatalf("progress output %q lacks the name or the final count", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

func TestMaxAge(t *testing.T) {
	p := newPool(t, 1, multiproc.MaxAge(time.Millisecond))
	ctx := ctxT(t)
	first, err := multiproc.Apply(ctx, p, pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Every task after the first millisecond finds its worker too old: it
	// is retired once idle and a new one takes the next task.
	testutil.WaitFor(t, deadline, func() bool {
		v, err := multiproc.Apply(ctx, p, pid, 0)
		return err == nil && v != first
	}, "a task served by a worker younger than the first")
	if s := p.Stats(); s.Recycled < 1 {
		t.Fatalf("Recycled = %d, want at least 1", s.Recycled)
	}
}
