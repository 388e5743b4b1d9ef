package multiproc_test

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
)

// countArg says what countSiblings does before counting.
type countArg struct {
	GrowMB int  // allocate and touch this much first (MaxMemory recycling)
	Exit   bool // exit the worker instead of counting (replacement)
}

// countSiblings returns the largest number of live processes (zombies
// included: a process counts until it is reaped) whose parent is this
// worker's parent, seen over a few milliseconds: the pool's worker
// processes, as long as the test process has no other children.
var countSiblings = multiproc.Register("test.countSiblings", func(_ context.Context, a countArg) (int, error) {
	if a.GrowMB > 0 {
		hog = make([]byte, a.GrowMB<<20)
		for i := 0; i < len(hog); i += 4096 { // a byte per page makes it resident
			hog[i] = 1
		}
	}
	if a.Exit {
		os.Exit(1)
	}
	most := 0
	for start, n := time.Now(), 0; n < 3 || time.Since(start) < 5*time.Millisecond; n++ {
		c, err := childrenOf(os.Getppid())
		if err != nil {
			return 0, err
		}
		most = max(most, c)
	}
	return most, nil
})

// childrenOf counts the processes in /proc whose parent is ppid.
func childrenOf(ppid int) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) > 1 && string(f[1]) == strconv.Itoa(ppid) {
			n++
		}
	}
	return n, nil
}

// TestRecycleNeverExceedsSize guards that a pool never has more worker
// processes than its size, from fork to reap, while it recycles workers
// (task count, age, memory) or replaces dead ones: users size pools by
// memory. Before, a replacement started as soon as a worker was retired,
// while the old one still ran its last task.
func TestRecycleNeverExceedsSize(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tasks int
		opts  []multiproc.PoolOption
		arg   func(i int) countArg
	}{
		{"MaxTasksPerChild(1)", 30, []multiproc.PoolOption{multiproc.MaxTasksPerChild(1)}, func(int) countArg { return countArg{} }},
		{"MaxAge", 30, []multiproc.PoolOption{multiproc.MaxAge(time.Millisecond)}, func(int) countArg { return countArg{} }},
		{"MaxMemory", 10, []multiproc.PoolOption{multiproc.MaxMemory(24 << 20)}, func(int) countArg { return countArg{GrowMB: 32} }},
		{"replacement", 30, nil, func(i int) countArg { return countArg{Exit: i%3 == 2} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n, err := childrenOf(os.Getpid()); err != nil || n != 0 {
				t.Fatalf("test process has %d children before the pool (%v), want 0", n, err)
			}
			const size = 2
			p := newPool(t, size, tc.opts...)
			ctx := ctxT(t)
			rs := make([]*multiproc.AsyncResult[int], tc.tasks)
			for i := range rs {
				rs[i] = multiproc.ApplyAsync(ctx, p, countSiblings, tc.arg(i))
			}
			for i, r := range rs {
				n, err := r.Get(ctx)
				if tc.arg(i).Exit {
					continue // it died, as it should
				}
				if err != nil {
					t.Fatalf("task %d: %v", i, err)
				}
				if n > size {
					t.Fatalf("task %d saw %d worker processes of a pool of %d", i, n, size)
				}
			}
			if s := p.Stats(); tc.opts != nil && s.Recycled == 0 {
				t.Fatalf("no worker recycled: %+v", s)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
