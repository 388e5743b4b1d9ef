package cluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/cluster"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// TestErrorsCross guards that user errors, sentinels, panics and worker
// deaths reach the caller as they do locally, and that a retry reruns a
// task whose worker died.
func TestErrorsCross(t *testing.T) {
	tc := newCluster(t, 1, 2)
	p := tc.pool(t, 2, cluster.NoWorkersWait(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	_, err := multiproc.Apply(ctx, p, fail, 3)
	var re *multiproc.RemoteError
	if !errors.Is(err, errBad) || !errors.As(err, &re) {
		t.Errorf("user error = %v; want a RemoteError matching the sentinel", err)
	}
	_, err = multiproc.Apply(ctx, p, boom, "kaput")
	if !errors.As(err, &re) || !re.Panic || !strings.Contains(err.Error(), "kaput") {
		t.Errorf("panic = %v; want a RemoteError with Panic set", err)
	}
	_, err = multiproc.Apply(ctx, p, die, 5)
	var ee *multiproc.ExitError
	if !errors.Is(err, multiproc.ErrWorkerDied) || !errors.As(err, &ee) || ee.Code != 5 {
		t.Errorf("worker exit = %v; want an ExitError with code 5 matching ErrWorkerDied", err)
	}
	// The host replaced its worker and keeps serving.
	if v, err := multiproc.Apply(ctx, p, square, 9); err != nil || v != 81 {
		t.Errorf("after a death: %d, %v; want 81", v, err)
	}
	// A Map chunk that fails part way fails the Map with the item's error.
	items := []int{0, 1, 2, 3, 4}
	if _, err := multiproc.Map(ctx, p, fail, items, multiproc.Chunksize(5)); !errors.Is(err, errBad) {
		t.Errorf("Map with a failing item = %v; want the sentinel", err)
	}
	s := p.Stats()
	if s.Died != 1 || s.Failed != 3 {
		t.Errorf("Stats Died %d Failed %d; want 1 and 3", s.Died, s.Failed)
	}
}

func TestRetries(t *testing.T) {
	tc := newCluster(t, 1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	p, err := multiproc.NewPool(ctx, 1, multiproc.Retries(1), cluster.Backend(cluster.Use(tc.srv)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	marker := filepath.Join(t.TempDir(), "died")
	v, err := multiproc.Apply(ctx, p, dieOnce, marker)
	if err != nil || v != "second attempt" {
		t.Fatalf("Apply with Retries(1) = %q, %v; want the second attempt's result", v, err)
	}
	if s := p.Stats(); s.Retried != 1 || s.Done != 1 {
		t.Errorf("Stats Retried %d Done %d; want 1 and 1", s.Retried, s.Done)
	}
}

// TestCancelAndTimeout guards that a cancelled context reaches the running
// task on its host, and that a time limit travels as a budget.
func TestCancelAndTimeout(t *testing.T) {
	tc := newCluster(t, 1, 1)
	p := tc.pool(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	marker := filepath.Join(t.TempDir(), "started")
	tctx, tcancel := context.WithCancel(ctx)
	r := multiproc.ApplyAsync(tctx, p, block, marker)
	testutil.WaitFor(t, deadline, func() bool { _, err := os.Stat(marker); return err == nil }, "the task to start")
	tcancel()
	if _, err := r.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled task = %v; want context.Canceled", err)
	}
	// The worker was told: it is free for the next task at once.
	if v, err := multiproc.Apply(ctx, p, square, 3); err != nil || v != 9 {
		t.Errorf("after a cancel: %d, %v", v, err)
	}
	_, err := multiproc.Apply(ctx, p, block, "", multiproc.Timeout(200*time.Millisecond))
	if !errors.Is(err, multiproc.ErrTimeout) {
		t.Errorf("timed-out task = %v; want ErrTimeout", err)
	}
	// The caller's deadline travels too: the task's context ends on its
	// host, and the message is not handed to another host.
	dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer dcancel()
	if _, err := multiproc.Apply(dctx, p, block, ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("task past the caller's deadline = %v; want context.DeadlineExceeded", err)
	}
	if v, err := multiproc.Apply(ctx, p, square, 4); err != nil || v != 16 {
		t.Errorf("after a deadline: %d, %v", v, err)
	}
}

// TestNoWorkers guards that tasks fail after NoWorkersWait with no host,
// and with ErrBuildMismatch when the only hosts run another build.
func TestNoWorkers(t *testing.T) {
	t.Parallel() // mostly waiting (AckWait, host expiry): overlap with the rest
	tc := newCluster(t, 0, 1)
	p := tc.pool(t, 1, cluster.NoWorkersWait(300*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err := multiproc.Apply(ctx, p, square, 2)
	if !errors.Is(err, cluster.ErrNoWorkers) {
		t.Fatalf("no host: %v; want ErrNoWorkers", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("failed after %v, before NoWorkersWait", d)
	}
	stop := fakeHost(t, tc, "0123456789abcdef")
	defer stop()
	_, err = multiproc.Apply(ctx, p, square, 2)
	if !errors.Is(err, multiproc.ErrBuildMismatch) || errors.Is(err, cluster.ErrNoWorkers) {
		t.Fatalf("hosts of another build only: %v; want ErrBuildMismatch", err)
	}
}

// TestNotTransferable guards that an argument holding a descriptor is
// refused at submit, before anything is published.
func TestNotTransferable(t *testing.T) {
	tc := newCluster(t, 0, 1)
	p := tc.pool(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	_, err := multiproc.Apply(ctx, p, holderName, holder{Name: "x"})
	if !errors.Is(err, multiproc.ErrNotTransferable) || !strings.Contains(err.Error(), "argument.Res (cluster_test.fakeResource)") {
		t.Errorf("argument holding a resource = %v; want ErrNotTransferable naming the type and its path", err)
	}
	_, err = multiproc.Apply(ctx, p, fileName, os.Stdin)
	if !errors.Is(err, multiproc.ErrNotTransferable) || !strings.Contains(err.Error(), "*os.File") {
		t.Errorf("*os.File argument = %v; want ErrNotTransferable naming the type", err)
	}
	if s := p.Stats(); s.Queued != 0 || s.Failed != 0 {
		t.Errorf("Stats %+v; want nothing submitted", s)
	}
}

// fakeResource is a type the codec treats as descriptor-backed (what shm
// arrays, locks, pipes and files are).
type fakeResource struct{ FD int }

func (fakeResource) NeedsDescriptors() bool { return true }

var _ wire.Resource = fakeResource{}

type holder struct {
	Name string
	Res  fakeResource
}

var fileName = multiproc.Register("cluster.fileName", multiproc.Plain(func(f *os.File) string { return f.Name() }))

var holderName = multiproc.Register("cluster.holder", multiproc.Plain(func(h holder) string { return h.Name }))

// TestLargePayloads guards that arguments and results above the server's
// max payload (1 MiB) travel through the object store, and leave nothing.
func TestLargePayloads(t *testing.T) {
	tc := newCluster(t, 1, 1)
	p := tc.pool(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	big := make([]byte, 3<<20)
	if n, err := multiproc.Apply(ctx, p, echo, big); err != nil || n != len(big) {
		t.Errorf("3 MiB argument: %d, %v", n, err)
	}
	b, err := multiproc.Apply(ctx, p, size, 5<<20)
	if err != nil || len(b) != 5<<20 {
		t.Errorf("5 MiB result: %d bytes, %v", len(b), err)
	}
	// MaxMessageSize is checked by the host before it sends.
	sp, err := multiproc.NewPool(ctx, 1, multiproc.MaxMessageSize(1<<20), cluster.Backend(cluster.Use(tc.srv)))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if _, err := multiproc.Apply(ctx, sp, size, 2<<20); !errors.Is(err, multiproc.ErrTooLarge) {
		t.Errorf("result over MaxMessageSize = %v; want ErrTooLarge", err)
	}
}

// TestExecutorAPI runs the executor's calls unchanged on a cluster.
func TestExecutorAPI(t *testing.T) {
	tc := newCluster(t, 2, 1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	x, err := multiproc.NewExecutor(ctx, 2, cluster.Backend(cluster.Use(tc.srv)))
	if err != nil {
		t.Fatal(err)
	}
	var fs []*multiproc.Future[int]
	for i := range 20 {
		fs = append(fs, multiproc.Submit(ctx, x, square, i))
	}
	if id := fs[0].ID(); !strings.HasSuffix(id, ".1") {
		t.Errorf("first Future.ID() = %q, want the pool's id and task number 1", id)
	}
	done, notDone, err := multiproc.Wait(ctx, fs, multiproc.AllCompleted)
	if err != nil || len(done) != 20 || len(notDone) != 0 {
		t.Fatalf("Wait: %d done, %d not, %v", len(done), len(notDone), err)
	}
	var got []int
	for f, err := range multiproc.AsCompleted(ctx, fs...) {
		if err != nil {
			t.Fatal(err)
		}
		v, _ := f.Result(ctx)
		got = append(got, v)
	}
	slices.Sort(got)
	if len(got) != 20 || got[19] != 361 {
		t.Errorf("AsCompleted results %v", got)
	}
	var im []int
	for v, err := range multiproc.Imap(ctx, x, square, slices.Values([]int{1, 2, 3, 4})) {
		if err != nil {
			t.Fatal(err)
		}
		im = append(im, v)
	}
	if !slices.Equal(im, []int{1, 4, 9, 16}) {
		t.Errorf("Imap = %v", im)
	}
	if err := x.Shutdown(true, false); err != nil {
		t.Error(err)
	}
}
