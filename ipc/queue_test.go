package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/internal/wire"
	"github.com/multiproc-go/multiproc/ipc"
)

// qTimeout is a generous deadline for a loaded 2-core machine.
const qTimeout = 2 * time.Minute

func qctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), qTimeout)
	t.Cleanup(cancel)
	return ctx
}

// qmust returns v, panicking (which fails the test) on err: for set-up
// calls that do not fail on a working system.
func qmust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// item is the benchmark's record: CPython's (i, 'hello', 3.14).
type qitem struct {
	I int
	S string
	F float64
}

func newQ[T any](t testing.TB, opts ...ipc.QueueOption) *ipc.Queue[T] {
	t.Helper()
	q := qmust(ipc.NewQueue[T](opts...))
	t.Cleanup(func() { q.Release() })
	return q
}

func startProc(t testing.TB, p *multiproc.Process) *multiproc.Process {
	t.Helper()
	if err := p.Start(qctx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill(); p.Join(context.Background()); p.Close() })
	return p
}

func joinOK(t testing.TB, p *multiproc.Process) {
	t.Helper()
	if err := p.Join(qctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := multiproc.Result[struct{}](p); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// TestQueueBasics: FIFO order, Len, TryGet on empty, MaxItems and TryPut,
// Close (Put fails; Get drains, then fails), Release.
func TestQueueBasics(t *testing.T) {
	ctx := qctx(t)
	q := newQ[qitem](t, ipc.MaxItems(3))
	if _, err := q.TryGet(); !errors.Is(err, ipc.ErrEmpty) {
		t.Fatalf("TryGet on empty: %v, want ErrEmpty", err)
	}
	for i := range 3 {
		if err := q.TryPut(qitem{i, "hello", 3.14}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.TryPut(qitem{3, "x", 0}); !errors.Is(err, ipc.ErrFull) {
		t.Fatalf("TryPut on full: %v, want ErrFull", err)
	}
	if n := q.Len(); n != 3 {
		t.Fatalf("Len %d, want 3", n)
	}
	for i := range 3 {
		v, err := q.Get(ctx)
		if err != nil || v != (qitem{i, "hello", 3.14}) {
			t.Fatalf("Get %d: %v, %v", i, v, err)
		}
	}
	q.Put(ctx, qitem{7, "seven", 7})
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if !q.Closed() {
		t.Fatal("Closed false after Close")
	}
	if err := q.Put(ctx, qitem{}); !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
	if v, err := q.Get(ctx); err != nil || v.I != 7 {
		t.Fatalf("Get after Close: %v, %v (want the remaining item)", v, err)
	}
	if _, err := q.Get(ctx); !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("Get on closed, drained queue: %v, want ErrClosed", err)
	}
	if _, err := q.TryGet(); !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("TryGet on closed, drained queue: %v, want ErrClosed", err)
	}
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.TryGet(); !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("TryGet after Release: %v, want ErrClosed", err)
	}
	if q.NeedsDescriptors() {
		t.Fatal("a released queue still needs descriptors")
	}
}

// TestQueueByteCapacity: an item over the capacity fails with ErrTooLarge;
// a full byte area gives ErrFull; a blocked Put proceeds once a Get makes
// room.
func TestQueueByteCapacity(t *testing.T) {
	ctx := qctx(t)
	q := newQ[[]byte](t, ipc.ByteCapacity(8192))
	if err := q.Put(ctx, make([]byte, 8192)); !errors.Is(err, ipc.ErrTooLarge) {
		t.Fatalf("Put of 8192 bytes into 8192: %v, want ErrTooLarge", err)
	}
	if err := q.TryPut(make([]byte, 8192-16)); err != nil {
		t.Fatalf("Put of capacity-16 bytes: %v", err)
	}
	if err := q.TryPut([]byte{1}); !errors.Is(err, ipc.ErrFull) {
		t.Fatalf("TryPut into a full byte area: %v, want ErrFull", err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Put(ctx, []byte("after")) }()
	if b, err := q.Get(ctx); err != nil || len(b) != 8192-16 {
		t.Fatalf("Get: %d bytes, %v", len(b), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b, err := q.Get(ctx); err != nil || string(b) != "after" {
		t.Fatalf("Get: %q, %v", b, err)
	}
}

// TestQueueUnencodable: a value the codec cannot encode fails in Put
// itself, and nothing is added.
func TestQueueUnencodable(t *testing.T) {
	qf := newQ[func()](t)
	if err := qf.TryPut(func() {}); err == nil {
		t.Fatal("Put of a func succeeded")
	}
	if qf.Len() != 0 {
		t.Fatal("a failed Put added an item")
	}
	qfile := newQ[*os.File](t)
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := qfile.TryPut(f); !errors.Is(err, wire.ErrNoTransport) {
		t.Fatalf("Put of an *os.File: %v, want an error matching ErrNoTransport", err)
	}
}

// TestQueueOptions: invalid options are refused; SimpleQueue has no
// MaxItems.
func TestQueueOptions(t *testing.T) {
	for _, o := range []ipc.QueueOption{ipc.MaxItems(0), ipc.ByteCapacity(10), ipc.ByteCapacity(int(min(int64(2)<<30, math.MaxInt)))} {
		if q, err := ipc.NewQueue[int](o); err == nil {
			q.Release()
			t.Error("bad option accepted")
		}
	}
	if q, err := ipc.NewSimpleQueue[int](ipc.MaxItems(3)); err == nil {
		q.Release()
		t.Error("SimpleQueue accepted MaxItems")
	}
	var zero ipc.Queue[int]
	if err := zero.TryPut(1); !errors.Is(err, ipc.ErrClosed) {
		t.Errorf("zero queue TryPut: %v", err)
	}
}

// TestQueueWrapAround: items of many sizes through a small ring, from
// several goroutines: each arrives once, whole.
func TestQueueWrapAround(t *testing.T) {
	ctx := qctx(t)
	q := newQ[[]byte](t, ipc.ByteCapacity(4096))
	const producers, per = 4, 2000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range per {
				b := make([]byte, 3+(i*7)%300)
				b[0], b[1], b[2] = byte(p), byte(i), byte(i>>8)
				if err := q.Put(ctx, b); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var mu sync.Mutex
	seen := make([][per]int, producers)
	var cw sync.WaitGroup
	for range 3 {
		cw.Go(func() {
			for {
				b, err := q.Get(ctx)
				if errors.Is(err, ipc.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				p, i := int(b[0]), int(b[1])|int(b[2])<<8
				if want := 3 + (i*7)%300; len(b) != want {
					t.Errorf("producer %d item %d: %d bytes, want %d", p, i, len(b), want)
				}
				seen[p][i]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	q.Close()
	cw.Wait()
	for p := range seen {
		for i, n := range seen[p] {
			if n != 1 {
				t.Errorf("producer %d item %d arrived %d times", p, i, n)
			}
		}
	}
}

// TestQueueCancel: a blocked Get and a blocked Put return ctx's error and
// leave the queue usable.
func TestQueueCancel(t *testing.T) {
	q := newQ[int](t, ipc.MaxItems(1))
	ctx, cancel := context.WithTimeout(qctx(t), 50*time.Millisecond)
	defer cancel()
	if _, err := q.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get: %v, want DeadlineExceeded", err)
	}
	q.TryPut(1)
	ctx2, cancel2 := context.WithTimeout(qctx(t), 50*time.Millisecond)
	defer cancel2()
	if err := q.Put(ctx2, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put: %v, want DeadlineExceeded", err)
	}
	if v, err := q.TryGet(); err != nil || v != 1 {
		t.Fatalf("TryGet: %v, %v", v, err)
	}
}

// TestQueueReleaseWakes: the creator's Release wakes its own blocked Get,
// which returns ErrClosed, before it unmaps.
func TestQueueReleaseWakes(t *testing.T) {
	q := qmust(ipc.NewQueue[int]())
	done := make(chan error, 1)
	go func() { _, err := q.Get(qctx(t)); done <- err }()
	testutil.WaitFor(t, qTimeout, func() bool { return ipc.QueueSleepers(q) == 1 }, "Get does not sleep")
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("blocked Get after Release: %v, want ErrClosed", err)
	}
}

// TestQueueWaitersShareAThread: 200 goroutines blocked in Get hold a few
// OS threads, not 200 (one sleeps in the kernel per process and word).
func TestQueueWaitersShareAThread(t *testing.T) {
	q := newQ[int](t)
	ctx, cancel := context.WithCancel(qctx(t))
	before := threads(t)
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() { q.Get(ctx) })
	}
	time.Sleep(200 * time.Millisecond) // let them block: only the thread count is measured
	during := threads(t)
	cancel()
	wg.Wait()
	if during-before > 20 {
		t.Fatalf("200 blocked Gets added %d threads (%d → %d)", during-before, before, during)
	}
}

func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("needs /proc")
	}
	var n int
	for _, l := range splitLines(string(b)) {
		if _, err := fmt.Sscanf(l, "Threads: %d", &n); err == nil {
			return n
		}
	}
	t.Skip("no thread count")
	return 0
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// Cross-process helpers.

// itemIDShift places a producer's id above its items' sequence numbers in
// qitem.I: 56 bits of sequence on 64-bit platforms, 24 on 32-bit ones.
const itemIDShift = strconv.IntSize - 8

type prodJob struct {
	Q    *ipc.Queue[qitem]
	ID   int
	N    int // 0: forever
	From int
}

var qProducer = multiproc.Register("ipc_test.producer", multiproc.NoResult(func(ctx context.Context, j prodJob) error {
	for i := j.From; j.N == 0 || i < j.From+j.N; i++ {
		if err := j.Q.Put(ctx, qitem{I: j.ID<<itemIDShift | i, S: "hello", F: 3.14}); err != nil {
			return err
		}
	}
	return nil
}))

type consJob struct {
	Q   *ipc.Queue[qitem]
	Out *ipc.Queue[[]int]
}

// qConsumer gets until ErrClosed and sends what it got on Out.
var qConsumer = multiproc.Register("ipc_test.consumer", multiproc.NoResult(func(ctx context.Context, j consJob) error {
	var got []int
	for {
		v, err := j.Q.Get(ctx)
		if errors.Is(err, ipc.ErrClosed) {
			return j.Out.Put(ctx, got)
		}
		if err != nil {
			return err
		}
		got = append(got, v.I)
	}
}))

// TestQueueProcesses: 3 producer processes and 3 consumer processes; every
// item arrives exactly once; Close ends the consumers.
func TestQueueProcesses(t *testing.T) {
	ctx := qctx(t)
	q := newQ[qitem](t, ipc.ByteCapacity(16<<10))
	out := newQ[[]int](t)
	const per = 3000
	var prods []*multiproc.Process
	for id := range 3 {
		prods = append(prods, startProc(t, multiproc.NewProcess(qProducer, prodJob{Q: q, ID: id, N: per})))
	}
	var cons []*multiproc.Process
	for range 3 {
		cons = append(cons, startProc(t, multiproc.NewProcess(qConsumer, consJob{Q: q, Out: out})))
	}
	for _, p := range prods {
		joinOK(t, p)
	}
	q.Close()
	var all []int
	for range cons {
		got, err := out.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got...)
	}
	for _, p := range cons {
		joinOK(t, p)
	}
	sort.Ints(all)
	if len(all) != 3*per {
		t.Fatalf("%d items arrived, want %d", len(all), 3*per)
	}
	i := 0
	for id := range 3 {
		for k := range per {
			if all[i] != id<<itemIDShift|k {
				t.Fatalf("item %d: %x, want %x", i, all[i], id<<itemIDShift|k)
			}
			i++
		}
	}
}

type poolJob struct {
	Q *ipc.JoinableQueue[int]
	I int
}

// qPoolPut puts and then releases its copy: a released received queue
// stays usable, so the worker's kept copy serves the next task.
var qPoolPut = multiproc.Register("ipc_test.pool_put", multiproc.NoResult(func(ctx context.Context, j poolJob) error {
	defer j.Q.Release()
	return j.Q.Put(ctx, j.I)
}))

var qPoolGet = multiproc.Register("ipc_test.pool_get", multiproc.Plain(func(q *ipc.JoinableQueue[int]) int {
	v, err := q.Get(context.Background())
	if err != nil {
		panic(err)
	}
	q.TaskDone()
	return v
}))

// TestQueuePoolTasks: pool tasks put into and get from a JoinableQueue the
// parent made; Join returns once they are all done.
func TestQueuePoolTasks(t *testing.T) {
	ctx := qctx(t)
	q := qmust(ipc.NewJoinableQueue[int]())
	defer q.Release()
	p, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var ars []*multiproc.AsyncResult[struct{}]
	for i := range 20 {
		ars = append(ars, multiproc.ApplyAsync(ctx, p, qPoolPut, poolJob{Q: q, I: i}))
	}
	for _, a := range ars {
		if _, err := a.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sum := 0
	var gets []*multiproc.AsyncResult[int]
	for range 20 {
		gets = append(gets, multiproc.ApplyAsync(ctx, p, qPoolGet, q))
	}
	for _, a := range gets {
		v, err := a.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sum += v
	}
	if sum != 190 {
		t.Fatalf("sum %d, want 190", sum)
	}
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestJoinableQueue: Join waits for TaskDone; too many TaskDones fail.
func TestJoinableQueue(t *testing.T) {
	ctx := qctx(t)
	q := qmust(ipc.NewJoinableQueue[string]())
	defer q.Release()
	if err := q.Join(ctx); err != nil {
		t.Fatalf("Join on an empty queue: %v", err)
	}
	for _, s := range []string{"a", "b", "c"} {
		q.Put(ctx, s)
	}
	joined := make(chan error, 1)
	go func() { joined <- q.Join(ctx) }()
	for range 3 {
		if _, err := q.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-joined:
		t.Fatalf("Join returned %v before TaskDone", err)
	case <-time.After(50 * time.Millisecond):
	}
	for range 3 {
		if err := q.TaskDone(); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	if err := q.TaskDone(); !errors.Is(err, ipc.ErrTaskDone) {
		t.Fatalf("extra TaskDone: %v, want ErrTaskDone", err)
	}
}

var qGetNoDone = multiproc.Register("ipc_test.get_no_done", multiproc.NoResult(func(ctx context.Context, q *ipc.JoinableQueue[int]) error {
	_, err := q.Get(ctx)
	return err // exits without TaskDone: the item is never finished
}))

// TestJoinDeadConsumer: a consumer that dies between Get and TaskDone makes
// Join return ErrPeerDied once the other items are done; its count is then
// released and the next Join returns nil.
func TestJoinDeadConsumer(t *testing.T) {
	ctx := qctx(t)
	q := qmust(ipc.NewJoinableQueue[int]())
	defer q.Release()
	q.Put(ctx, 1)
	joinOK(t, startProc(t, multiproc.NewProcess(qGetNoDone, q)))
	q.Put(ctx, 2)
	joined := make(chan error, 1)
	go func() { joined <- q.Join(ctx) }()
	if v, err := q.Get(ctx); err != nil || v != 2 {
		t.Fatalf("Get: %v, %v", v, err)
	}
	select {
	case err := <-joined:
		t.Fatalf("Join returned %v while item 2 was not done", err)
	case <-time.After(400 * time.Millisecond):
	}
	q.TaskDone()
	if err := <-joined; !errors.Is(err, ipc.ErrPeerDied) {
		t.Fatalf("Join: %v, want ErrPeerDied", err)
	}
	if err := q.Join(ctx); err != nil {
		t.Fatalf("second Join: %v, want nil", err)
	}
}

var qSimpleChild = multiproc.Register("ipc_test.simple_child", multiproc.NoResult(func(ctx context.Context, q *ipc.SimpleQueue[string]) error {
	return q.Put(ctx, "Hello from worker")
}))

// TestSimpleQueueProcess: the seeds' child-puts, parent-gets, with a
// SimpleQueue; a queue of another kind or type is refused on import.
func TestSimpleQueueProcess(t *testing.T) {
	ctx := qctx(t)
	q := qmust(ipc.NewSimpleQueue[string]())
	defer q.Release()
	p := startProc(t, multiproc.NewProcess(qSimpleChild, q))
	if s, err := q.Get(ctx); err != nil || s != "Hello from worker" {
		t.Fatalf("Get: %q, %v", s, err)
	}
	joinOK(t, p)
}
