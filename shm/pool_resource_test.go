package shm_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/shm"
)

var (
	// bumpValue adds one to the Value its task is passed.
	bumpValue = multiproc.Register("shm_test.bump", multiproc.Plain(func(v *shm.Value[int64]) int64 {
		return shm.Add(v, 1)
	}))
	// negateAt negates element I of the Array its task is passed.
	negateAt = multiproc.Register("shm_test.negate_at", multiproc.Plain(func(a struct {
		A *shm.Array[int32]
		I int
	}) int32 {
		s := a.A.Slice()
		s[a.I] = -s[a.I]
		return s[a.I]
	}))
)

// openFDs counts the descriptors of process pid.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func workerFDs(t *testing.T, p *multiproc.Pool) map[int]int {
	t.Helper()
	fds := map[int]int{}
	for _, w := range p.Stats().PerWorker {
		fds[w.Pid] = openFDs(t, w.Pid)
	}
	return fds
}

// TestPoolTasksShareValueAndArray: pool tasks passed the same Value and
// Array change the parent's memory; each worker maps each object once (its
// descriptor count does not grow with the tasks), and drops its copies
// once the parent closes the objects.
func TestPoolTasksShareValueAndArray(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc")
	}
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	p, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Warm both workers up on a first round, so their descriptor counts
	// include one kept copy of each object.
	v := must(shm.NewValue[int64](0))
	defer v.Close()
	a := must(shm.ArrayOf(make([]int32, 2000)))
	defer a.Close()
	for i := range a.Slice() {
		a.Slice()[i] = int32(i)
	}
	round := func(from, to int) {
		t.Helper()
		var vs []*multiproc.AsyncResult[int64]
		var as []*multiproc.AsyncResult[int32]
		for i := from; i < to; i++ {
			vs = append(vs, multiproc.ApplyAsync(ctx, p, bumpValue, v))
			as = append(as, multiproc.ApplyAsync(ctx, p, negateAt, struct {
				A *shm.Array[int32]
				I int
			}{a, i}))
		}
		for i := range vs {
			if _, err := vs[i].Get(ctx); err != nil {
				t.Fatal(err)
			}
			if got, err := as[i].Get(ctx); err != nil || got != -int32(from+i) {
				t.Fatalf("task %d: %d, %v; want %d", from+i, got, err, -(from + i))
			}
		}
	}
	round(0, 200)
	before := workerFDs(t, p)
	round(200, 2000)
	if got := v.Load(); got != 2000 {
		t.Errorf("Value is %d after 2000 tasks that each added 1", got)
	}
	for i, x := range a.Slice() {
		if x != -int32(i) {
			t.Fatalf("Array[%d] = %d, want %d", i, x, -i)
		}
	}
	after := workerFDs(t, p)
	for pid, n := range after {
		if b, ok := before[pid]; ok && n > b {
			t.Errorf("worker %d: %d descriptors after 1800 more tasks, %d before: a kept object was mapped again", pid, n, b)
		}
	}

	// Closing in the parent releases the objects: the workers close theirs.
	v.Close()
	a.Close()
	for pid, n := range after {
		testutil.WaitFor(t, processTimeout, func() bool { return openFDs(t, pid) <= n-2 },
			"worker %d still holds its copies after the parent closed the Value and the Array (%d descriptors, was %d)", pid, openFDs(t, pid), n)
	}
}
