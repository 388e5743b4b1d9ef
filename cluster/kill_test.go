package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/cluster"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// TestHostKilled guards the delivery rule for lost hosts: with three hosts
// running tasks, one is SIGKILLed mid-run; JetStream redelivers what it
// held once AckWait passes, no task is lost, and every future settles
// exactly once (later duplicates are dropped and counted).
func TestHostKilled(t *testing.T) {
	t.Parallel() // mostly waiting (AckWait, host expiry): overlap with the rest
	tc := newCluster(t, 3, 1)
	p := tc.pool(t, 3, cluster.AckWait(2*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	const n = 150
	var settles [n]atomic.Int32
	var finished atomic.Int32
	rs := make([]*multiproc.AsyncResult[int], n)
	for i := range n {
		rs[i] = multiproc.ApplyAsync(ctx, p, spin, 10).
			OnResult(func(int) { settles[i].Add(1); finished.Add(1) }).
			OnError(func(error) { settles[i].Add(1); finished.Add(1) })
	}
	testutil.WaitFor(t, deadline, func() bool { return finished.Load() >= n/5 }, "a fifth of the tasks to finish")
	victim := tc.hosts[0]
	victim.Kill()
	pids := map[int]bool{}
	for _, h := range tc.hosts[1:] {
		pids[h.Pid()] = true
	}
	late := 0
	for i, r := range rs {
		v, err := r.Get(ctx)
		if err != nil {
			t.Fatalf("task %d: %v; want no task lost", i, err)
		}
		if v != victim.Pid() && !pids[v] {
			t.Fatalf("task %d ran under pid %d, not one of the hosts", i, v)
		}
		if v != victim.Pid() {
			late++
		}
	}
	// Callbacks run after Get can return: wait for all of them.
	testutil.WaitFor(t, deadline, func() bool { return finished.Load() == n }, "every callback")
	for i := range settles {
		if c := settles[i].Load(); c != 1 {
			t.Errorf("task %d settled %d times, want 1", i, c)
		}
	}
	s := p.Stats()
	if s.Done != n || s.Died != 0 || s.Failed != 0 {
		t.Errorf("Stats Done %d Died %d Failed %d; want %d, 0, 0", s.Done, s.Died, s.Failed, n)
	}
	t.Logf("%d of %d tasks ran on the surviving hosts (before and after the kill); %d duplicates dropped", late, n, s.Duplicates)
	tc.hosts = tc.hosts[1:] // the victim is gone; the cleanup stops the rest
}

// TestMaxDeliver guards that a task whose hosts are lost MaxDeliver times
// fails with ErrWorkerDied saying so, and that its message is removed.
func TestMaxDeliver(t *testing.T) {
	t.Parallel() // mostly waiting (AckWait, host expiry): overlap with the rest
	tc := newCluster(t, 1, 1)
	p := tc.pool(t, 1, cluster.AckWait(500*time.Millisecond), cluster.MaxDeliver(2), cluster.NoWorkersWait(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	marker := filepath.Join(t.TempDir(), "started")
	r := multiproc.ApplyAsync(ctx, p, block, marker)
	for range 2 {
		testutil.WaitFor(t, deadline, func() bool { _, err := os.Stat(marker); return err == nil }, "the task to start")
		os.Remove(marker)
		tc.hosts[0].Kill()
		tc.hosts = tc.hosts[:0]
		tc.addHost(1)
	}
	_, err := r.Get(ctx)
	if !errors.Is(err, multiproc.ErrWorkerDied) || !strings.Contains(err.Error(), "lost 2 times") {
		t.Fatalf("task after 2 host losses: %v; want ErrWorkerDied saying the host was lost 2 times", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the task ran a third time")
	}
}

// nap appends its host's pid to marker (a line per run), sleeps ms
// milliseconds (the workload) and returns its host's pid.
var nap = multiproc.Register("cluster.nap", func(_ context.Context, a napArg) (int, error) {
	f, err := os.OpenFile(a.Marker, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	fmt.Fprintln(f, os.Getppid())
	f.Close()
	time.Sleep(time.Duration(a.Ms) * time.Millisecond)
	return os.Getppid(), nil
})

type napArg struct {
	Marker string
	Ms     int
}

// TestDuplicateDropped guards "first result wins": a host frozen (SIGSTOP)
// while its worker runs a task stops reporting progress, so the task is
// redelivered to the other host, which answers first; when the frozen host
// resumes, its late answer is dropped and counted in Stats.Duplicates.
func TestDuplicateDropped(t *testing.T) {
	t.Parallel() // mostly waiting (AckWait, host expiry): overlap with the rest
	tc := newCluster(t, 2, 1)
	p := tc.pool(t, 2, cluster.AckWait(500*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	marker := filepath.Join(t.TempDir(), "host")
	r := multiproc.ApplyAsync(ctx, p, nap, napArg{Marker: marker, Ms: 1500})
	var first int
	testutil.WaitFor(t, deadline, func() bool {
		b, err := os.ReadFile(marker)
		first, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && first != 0
	}, "the task to start")
	if err := syscall.Kill(first, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	v, err := r.Get(ctx)
	syscall.Kill(first, syscall.SIGCONT)
	if err != nil {
		t.Fatal(err)
	}
	if v == first {
		t.Fatalf("answered by the frozen host %d", first)
	}
	testutil.WaitFor(t, deadline, func() bool { return p.Stats().Duplicates == 1 }, "the frozen host's late answer")
	if s := p.Stats(); s.Done != 1 {
		t.Errorf("Stats Done %d; want 1 (settled once)", s.Done)
	}
}

// TestLongTaskNotRedelivered guards the progress reports: a task that runs
// two and a half times its AckWait on a live host is not given to the idle other
// host (which would start it at once, a line in the marker, well before
// the first run ends).
func TestLongTaskNotRedelivered(t *testing.T) {
	tc := newCluster(t, 2, 1)
	p := tc.pool(t, 2, cluster.AckWait(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	marker := filepath.Join(t.TempDir(), "runs")
	if _, err := multiproc.Apply(ctx, p, nap, napArg{Marker: marker, Ms: 2500}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(marker)
	if runs := strings.Count(string(b), "\n"); runs != 1 {
		t.Errorf("the task ran %d times, want 1 (redelivered while its host reported progress)", runs)
	}
	if s := p.Stats(); s.Duplicates != 0 || s.Done != 1 {
		t.Errorf("Stats Duplicates %d Done %d; want 0 and 1", s.Duplicates, s.Done)
	}
}
