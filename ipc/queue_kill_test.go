package ipc_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/memfd"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/ipc"
)

// killRounds is how many processes a kill test SIGKILLs: 6 in CI;
// $IPC_QUEUE_KILLS for longer runs.
func killRounds() int {
	if n, err := strconv.Atoi(os.Getenv("IPC_QUEUE_KILLS")); err == nil && n > 0 {
		return n
	}
	return 6
}

// TestQueueKillProducer SIGKILLs producer processes at random moments
// (inside Put's lock, while copying, while blocked on a full ring): the
// parent's consumer keeps getting items; each producer's items arrive once
// each, as a gap-free prefix of what it put (at most the one item it was
// moving is lost); the queue ends usable and empty.
func TestQueueKillProducer(t *testing.T) {
	ctx := qctx(t)
	q := newQ[qitem](t, ipc.ByteCapacity(16<<10))
	kills := killRounds()
	var mu sync.Mutex
	got := make([][]int, kills+1)
	var received atomic.Int64
	consumed := make(chan error, 1)
	go func() {
		for {
			v, err := q.Get(ctx)
			if err != nil {
				if errors.Is(err, ipc.ErrClosed) {
					err = nil
				}
				consumed <- err
				return
			}
			mu.Lock()
			id := v.I >> itemIDShift
			if id < 0 || id > kills || v.S != "hello" || v.F != 3.14 {
				t.Errorf("corrupt item %+v", v)
			} else {
				got[id] = append(got[id], v.I&(1<<itemIDShift-1))
			}
			mu.Unlock()
			received.Add(1)
		}
	}()
	for k := range kills {
		p := startProc(t, multiproc.NewProcess(qProducer, prodJob{Q: q, ID: k}))
		before := received.Load()
		testutil.WaitFor(t, qTimeout, func() bool { return received.Load() > before+10 }, "producer %d puts nothing", k)
		time.Sleep(time.Duration(rand.IntN(20_000)) * time.Microsecond)
		p.Kill()
		p.Join(ctx)
	}
	// The queue still works, for a producer in this process and in another.
	joinOK(t, startProc(t, multiproc.NewProcess(qProducer, prodJob{Q: q, ID: kills, N: 100})))
	q.Close()
	if err := <-consumed; err != nil {
		t.Fatal(err)
	}
	for id, is := range got {
		for j, i := range is {
			if i != j {
				t.Fatalf("producer %d: item %d arrived at place %d (lost or duplicated within its sequence)", id, i, j)
			}
		}
		t.Logf("producer %d: %d items", id, len(is))
	}
	if len(got[kills]) != 100 {
		t.Fatalf("the last producer's %d items arrived, want 100", len(got[kills]))
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("Len %d after draining", n)
	}
}

type countJob struct {
	Q      *ipc.JoinableQueue[qitem]
	Counts *os.File
	N      int
}

// qCounter gets items, counts each in shared memory, and marks it done.
var qCounter = multiproc.Register("ipc_test.counter", multiproc.NoResult(func(ctx context.Context, j countJob) error {
	mem, err := memfd.Map(j.Counts, 0, 4*j.N)
	j.Counts.Close()
	if err != nil {
		return err
	}
	defer memfd.Unmap(mem)
	counts := unsafe.Slice((*uint32)(unsafe.Pointer(&mem[0])), j.N)
	for {
		v, err := j.Q.Get(ctx)
		if errors.Is(err, ipc.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		atomic.AddUint32(&counts[v.I], 1)
		if err := j.Q.TaskDone(); err != nil {
			return err
		}
	}
}))

// TestQueueKillConsumer SIGKILLs consumer processes at random moments
// while the parent puts into a small JoinableQueue (so that the producer
// needs the room a killed consumer's record holds): no item arrives twice,
// at most one per kill is lost, the producer is never stuck, and Join
// returns nil or ErrPeerDied (a consumer died between Get and TaskDone),
// after which it returns nil.
func TestQueueKillConsumer(t *testing.T) {
	ctx := qctx(t)
	q := qmust(ipc.NewJoinableQueue[qitem](ipc.ByteCapacity(8 << 10)))
	defer q.Release()
	kills := killRounds()
	const n = 1 << 21 // counters: more than the producer can put in a run
	f := qmust(memfd.New("ipc-test-counts", int64(4*n)))
	defer f.Close()
	mem := qmust(memfd.Map(f, 0, 4*n))
	defer memfd.Unmap(mem)
	counts := unsafe.Slice((*uint32)(unsafe.Pointer(&mem[0])), n)
	var put atomic.Int64
	total := func() (s int) {
		for i := range put.Load() {
			s += int(atomic.LoadUint32(&counts[i]))
		}
		return s
	}
	var stop atomic.Bool
	produced := make(chan error, 1)
	go func() {
		for i := 0; i < n && !stop.Load(); i++ {
			if err := q.Put(ctx, qitem{I: i, S: "hello", F: 3.14}); err != nil {
				produced <- err
				return
			}
			put.Add(1)
		}
		produced <- nil
	}()
	for k := range kills {
		p := startProc(t, multiproc.NewProcess(qCounter, countJob{Q: q, Counts: f, N: n}))
		before := total()
		testutil.WaitFor(t, qTimeout, func() bool { return total() > before+10 }, "consumer %d gets nothing", k)
		time.Sleep(time.Duration(rand.IntN(20_000)) * time.Microsecond)
		p.Kill()
		p.Join(ctx)
	}
	stop.Store(true)
	last := startProc(t, multiproc.NewProcess(qCounter, countJob{Q: q, Counts: f, N: n}))
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	err := q.Join(ctx)
	if err != nil && !errors.Is(err, ipc.ErrPeerDied) {
		t.Fatalf("Join: %v", err)
	}
	t.Logf("first Join: %v", err)
	if err := q.Join(ctx); err != nil {
		t.Fatalf("second Join: %v, want nil", err)
	}
	q.Close()
	joinOK(t, last)
	lost := 0
	for i := range counts[:put.Load()] {
		switch c := atomic.LoadUint32(&counts[i]); {
		case c == 0:
			lost++
		case c > 1:
			t.Fatalf("item %d arrived %d times", i, c)
		}
	}
	t.Logf("%d items, %d kills, %d lost", put.Load(), kills, lost)
	if lost > kills {
		t.Fatalf("%d items lost to %d kills (at most one each)", lost, kills)
	}
}

var qDieInLock = multiproc.Register("ipc_test.die_in_lock", multiproc.NoResult(func(ctx context.Context, j struct {
	Q     *ipc.Queue[qitem]
	Stage int
}) error {
	return ipc.DieHoldingQueueLock(j.Q, j.Stage)
}))

// TestQueueLockHolderDies: a process that dies holding the queue's lock,
// at each point of a critical section, leaves a queue the next process
// repairs: nothing taken is lost, a claim cut short is undone, and a
// reservation never written is skipped.
func TestQueueLockHolderDies(t *testing.T) {
	for stage := range 3 {
		t.Run(strconv.Itoa(stage), func(t *testing.T) {
			ctx := qctx(t)
			q := newQ[qitem](t)
			q.Put(ctx, qitem{I: 1, S: "one"})
			joinOK(t, startProc(t, multiproc.NewProcess(qDieInLock, struct {
				Q     *ipc.Queue[qitem]
				Stage int
			}{q, stage})))
			if err := q.Put(ctx, qitem{I: 2, S: "two"}); err != nil {
				t.Fatal(err)
			}
			for _, want := range []int{1, 2} {
				v, err := q.Get(ctx)
				if err != nil || v.I != want {
					t.Fatalf("Get: %+v, %v; want item %d", v, err, want)
				}
			}
			if n := q.Len(); n != 0 {
				t.Fatalf("Len %d, want 0", n)
			}
		})
	}
}
