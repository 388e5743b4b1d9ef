package manager

import (
	"context"
	"errors"
	"fmt"
	"github.com/multiproc-go/multiproc/ipc"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

type point struct {
	X, Y int
	Tag  string
}

var appendBang = MustRegisterUpdate("test.appendBang", func(old string, present bool) (string, error) {
	if strings.Contains(old, "fail") {
		return "", errors.New("refusing to update")
	}
	return old + "!", nil
})

func modes(t *testing.T, f func(t *testing.T, m *Manager)) {
	for _, raw := range []bool{true, false} {
		t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) {
			name := t.Name()
			ms := newMemServer(t, name, raw)
			f(t, ms.client(t, name))
		})
	}
}

func TestDictOps(t *testing.T) {
	modes(t, func(t *testing.T, m *Manager) {
		ctx := testCtx(t)
		d, err := NewDict[string, int](ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		for i, k := range []string{"b", "a", "c"} {
			if err := d.Set(ctx, k, i); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := d.Get(ctx, "a"); err != nil || v != 1 {
			t.Fatalf("Get(a) = %v, %v", v, err)
		}
		if _, err := d.Get(ctx, "zz"); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("Get(zz): %v, want ErrKeyNotFound", err)
		}
		if v, err := d.GetOr(ctx, "zz", 42); err != nil || v != 42 {
			t.Fatalf("GetOr = %v, %v", v, err)
		}
		if ks, err := d.Keys(ctx); err != nil || !slices.Equal(ks, []string{"b", "a", "c"}) {
			t.Fatalf("Keys = %v, %v (insertion order)", ks, err)
		}
		if n, err := d.Len(ctx); err != nil || n != 3 {
			t.Fatalf("Len = %v, %v", n, err)
		}
		if ok, err := d.Has(ctx, "c"); err != nil || !ok {
			t.Fatalf("Has(c) = %v, %v", ok, err)
		}
		if v, err := d.Incr(ctx, "a", 10); err != nil || v != 11 {
			t.Fatalf("Incr = %v, %v", v, err)
		}
		if v, err := d.Incr(ctx, "new", 5); err != nil || v != 5 {
			t.Fatalf("Incr(new) = %v, %v", v, err)
		}
		if v, err := d.Pop(ctx, "new"); err != nil || v != 5 {
			t.Fatalf("Pop = %v, %v", v, err)
		}
		if v, err := d.SetDefault(ctx, "b", 99); err != nil || v != 0 {
			t.Fatalf("SetDefault(existing) = %v, %v", v, err)
		}
		if err := d.Delete(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if err := d.Delete(ctx, "b"); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("second Delete: %v", err)
		}
		if err := d.SetMany(ctx, map[string]int{"x": 1, "y": 2}); err != nil {
			t.Fatal(err)
		}
		mp, err := d.Map(ctx)
		if err != nil || len(mp) != 4 || mp["a"] != 11 || mp["y"] != 2 {
			t.Fatalf("Map = %v, %v", mp, err)
		}
		if vs, err := d.Values(ctx); err != nil || len(vs) != 4 {
			t.Fatalf("Values = %v, %v", vs, err)
		}
		if err := d.Clear(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := d.Len(ctx); n != 0 {
			t.Fatalf("Len after Clear = %d", n)
		}

		ds, err := NewDict[point, string](ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		p := point{1, 2, "p"}
		if err := ds.Set(ctx, p, "hi"); err != nil {
			t.Fatal(err)
		}
		if v, err := ds.Update(ctx, p, appendBang); err != nil || v != "hi!" {
			t.Fatalf("Update = %q, %v", v, err)
		}
		if v, err := ds.Update(ctx, point{}, appendBang); err != nil || v != "!" {
			t.Fatalf("Update(missing) = %q, %v", v, err)
		}
		ds.Set(ctx, p, "fail")
		if _, err := ds.Update(ctx, p, appendBang); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Fatalf("failing Update: %v", err)
		}
		if _, err := ds.Incr(ctx, p, "x"); !errors.Is(err, ErrTypeMismatch) {
			t.Fatalf("Incr of strings: %v", err)
		}
		if _, err := ds.Update(ctx, p, UpdateFunc[string]{name: "nope"}); !errors.Is(err, ErrNotRegistered) {
			t.Fatalf("unregistered update: %v", err)
		}
	})
}

func TestDictConcurrentIncr(t *testing.T) {
	modes(t, func(t *testing.T, m *Manager) {
		ctx := testCtx(t)
		d, err := NewDict[string, int64](ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 100 {
					if _, err := d.Incr(ctx, "n", 1); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if v, err := d.Get(ctx, "n"); err != nil || v != 800 {
			t.Fatalf("n = %d, %v; want 800", v, err)
		}
	})
}

func TestListOps(t *testing.T) {
	modes(t, func(t *testing.T, m *Manager) {
		ctx := testCtx(t)
		l, err := NewList(ctx, m, []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, "c", "d"); err != nil {
			t.Fatal(err)
		}
		if v, err := l.Get(ctx, -1); err != nil || v != "d" {
			t.Fatalf("Get(-1) = %q, %v", v, err)
		}
		if _, err := l.Get(ctx, 4); !errors.Is(err, ErrIndex) {
			t.Fatalf("Get(4): %v", err)
		}
		if err := l.Set(ctx, 0, "A"); err != nil {
			t.Fatal(err)
		}
		if err := l.Insert(ctx, 1, "x"); err != nil {
			t.Fatal(err)
		}
		all, err := l.All(ctx)
		if err != nil || !slices.Equal(all, []string{"A", "x", "b", "c", "d"}) {
			t.Fatalf("All = %v, %v", all, err)
		}
		if s, err := l.Slice(ctx, 1, -1); err != nil || !slices.Equal(s, []string{"x", "b", "c"}) {
			t.Fatalf("Slice = %v, %v", s, err)
		}
		if v, err := l.Pop(ctx, -1); err != nil || v != "d" {
			t.Fatalf("Pop = %q, %v", v, err)
		}
		if i, err := l.Index(ctx, "b"); err != nil || i != 2 {
			t.Fatalf("Index = %d, %v", i, err)
		}
		if err := l.Remove(ctx, "zz"); !errors.Is(err, ErrValueNotFound) {
			t.Fatalf("Remove(zz): %v", err)
		}
		if err := l.Remove(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		if n, err := l.Len(ctx); err != nil || n != 3 {
			t.Fatalf("Len = %d, %v", n, err)
		}
		if err := l.Clear(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Pop(ctx, -1); !errors.Is(err, ErrIndex) {
			t.Fatalf("Pop of empty: %v", err)
		}
	})
}

func TestValueAndArray(t *testing.T) {
	modes(t, func(t *testing.T, m *Manager) {
		ctx := testCtx(t)
		v, err := NewValue(ctx, m, 3.5)
		if err != nil {
			t.Fatal(err)
		}
		if x, err := v.Incr(ctx, 1.25); err != nil || x != 4.75 {
			t.Fatalf("Incr = %v, %v", x, err)
		}
		if old, err := v.Swap(ctx, 1); err != nil || old != 4.75 {
			t.Fatalf("Swap = %v, %v", old, err)
		}
		if ok, err := v.CompareAndSwap(ctx, 1, 2); err != nil || !ok {
			t.Fatalf("CAS = %v, %v", ok, err)
		}
		if ok, err := v.CompareAndSwap(ctx, 1, 3); err != nil || ok {
			t.Fatalf("CAS(stale) = %v, %v", ok, err)
		}
		if x, err := v.Get(ctx); err != nil || x != 2 {
			t.Fatalf("Get = %v, %v", x, err)
		}
		vi, err := NewValue[int32](ctx, m, -5)
		if err != nil {
			t.Fatal(err)
		}
		if x, err := vi.Incr(ctx, 7); err != nil || x != 2 {
			t.Fatalf("int32 Incr = %v, %v", x, err)
		}
		vs, err := NewValue(ctx, m, "s")
		if err != nil {
			t.Fatal(err)
		}
		if x, err := vs.Update(ctx, appendBang); err != nil || x != "s!" {
			t.Fatalf("Update = %q, %v", x, err)
		}

		a, err := NewArray(ctx, m, []int{1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Set(ctx, -1, 30); err != nil {
			t.Fatal(err)
		}
		if all, err := a.All(ctx); err != nil || !slices.Equal(all, []int{1, 2, 30}) {
			t.Fatalf("All = %v, %v", all, err)
		}
		if n, err := a.Len(ctx); err != nil || n != 3 {
			t.Fatalf("Len = %d, %v", n, err)
		}
		if _, err := a.Get(ctx, 3); !errors.Is(err, ErrIndex) {
			t.Fatalf("Get(3): %v", err)
		}
	})
}

func TestNamespace(t *testing.T) {
	modes(t, func(t *testing.T, m *Manager) {
		ctx := testCtx(t)
		ns, err := NewNamespace(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if err := SetAttr(ctx, ns, "x", 10); err != nil {
			t.Fatal(err)
		}
		if err := SetAttr(ctx, ns, "y", "hello"); err != nil {
			t.Fatal(err)
		}
		if x, err := GetAttr[int](ctx, ns, "x"); err != nil || x != 10 {
			t.Fatalf("x = %v, %v", x, err)
		}
		if _, err := GetAttr[string](ctx, ns, "x"); !errors.Is(err, ErrTypeMismatch) {
			t.Fatalf("x as string: %v", err)
		}
		if _, err := GetAttr[int](ctx, ns, "z"); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("z: %v", err)
		}
		if names, err := ns.Names(ctx); err != nil || !slices.Equal(names, []string{"x", "y"}) {
			t.Fatalf("Names = %v, %v", names, err)
		}
		if err := ns.Delete(ctx, "x"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestQueue(t *testing.T) {
	modes(t, func(t *testing.T, m *Manager) {
		ctx := testCtx(t)
		q, err := NewQueue[string](ctx, m, 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.TryGet(); !errors.Is(err, ErrEmpty) {
			t.Fatalf("TryGet on empty: %v", err)
		}
		got := make(chan string)
		go func() {
			v, err := q.Get(ctx)
			if err != nil {
				t.Error(err)
			}
			got <- v
		}()
		if err := q.Put(ctx, "one"); err != nil {
			t.Fatal(err)
		}
		if v := <-got; v != "one" {
			t.Fatalf("Get = %q", v)
		}
		q.Put(ctx, "a")
		q.Put(ctx, "b")
		if err := q.TryPut("c"); !errors.Is(err, ErrFull) {
			t.Fatalf("TryPut on full: %v", err)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		err = q.Put(short, "c")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Put on full with deadline: %v", err)
		}
		if n, err := q.Len(ctx); err != nil || n != 2 {
			t.Fatalf("Len = %d, %v", n, err)
		}
		for _, want := range []string{"a", "b"} {
			if v, err := q.Get(ctx); err != nil || v != want {
				t.Fatalf("Get = %q, %v; want %q", v, err, want)
			}
		}

		jq, err := NewJoinableQueue[int](ctx, m, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			jq.Put(ctx, i)
		}
		joined := make(chan error, 1)
		go func() { joined <- jq.Join(ctx) }()
		for range 3 {
			if _, err := jq.Get(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-joined:
				t.Fatalf("Join returned early: %v", err)
			default:
			}
			if err := jq.TaskDone(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-joined; err != nil {
			t.Fatal(err)
		}
		// Both: the same code works against ipc.JoinableQueue.
		if err := jq.TaskDone(ctx); !errors.Is(err, ErrOverReleased) || !errors.Is(err, ipc.ErrTaskDone) {
			t.Fatalf("extra TaskDone: %v", err)
		}
	})
}

func TestLockOwnerDead(t *testing.T) {
	ms := newMemServer(t, t.Name(), true)
	ctx := testCtx(t)
	a, b := ms.client(t, t.Name()), ms.client(t, t.Name())
	la, err := NewLock(ctx, a, Named("L"))
	if err != nil {
		t.Fatal(err)
	}
	lb, err := NewLock(ctx, b, Named("L"))
	if err != nil {
		t.Fatal(err)
	}
	var _ Locker = la
	if err := la.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := lb.TryLock(); err != nil || ok {
		t.Fatalf("TryLock of a held lock = %v, %v", ok, err)
	}
	if err := lb.Unlock(); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("Unlock by another: %v", err)
	}
	acquired := make(chan error, 1)
	go func() { acquired <- lb.Lock(ctx) }()
	a.Close() // the holder's process "dies"
	if err := <-acquired; !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Lock after the holder died: %v, want ErrOwnerDead", err)
	}
	if err := lb.Unlock(); err != nil { // without MarkConsistent
		t.Fatal(err)
	}
	if err := lb.Lock(ctx); !errors.Is(err, ErrNotRecoverable) {
		t.Fatalf("Lock after unlock without MarkConsistent: %v", err)
	}

	// MarkConsistent repairs.
	c := ms.client(t, t.Name())
	lc, _ := NewLock(ctx, c)
	ld := &Lock{}
	_ = ld
	if err := lc.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	d := ms.client(t, t.Name())
	// Hand the same lock to d through a hand-off, as a process would get it.
	tokRes, err := c.c.call(ctx, opHandoff, 0, [][]byte{putU64(lc.id)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.c.call(ctx, opClaim, 0, [][]byte{putU64(lc.id), tokRes[0]}); err != nil {
		t.Fatal(err)
	}
	dl := &Lock{lockCore{ref{c: d.c, id: lc.id, kind: kindLock}}}
	c.Close()
	if err := dl.Lock(ctx); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("want ErrOwnerDead, got %v", err)
	}
	if err := dl.MarkConsistent(); err != nil {
		t.Fatal(err)
	}
	dl.Unlock()
	if err := dl.Lock(ctx); err != nil {
		t.Fatalf("Lock after repair: %v", err)
	}
	dl.Unlock()
}

func TestRLockAndCondition(t *testing.T) {
	ms := newMemServer(t, t.Name(), true)
	ctx := testCtx(t)
	a, b := ms.client(t, t.Name()), ms.client(t, t.Name())
	rl, err := NewRLock(ctx, a, Named("R"))
	if err != nil {
		t.Fatal(err)
	}
	rl.Lock(ctx)
	if err := rl.Lock(ctx); err != nil {
		t.Fatalf("re-entry: %v", err)
	}
	rlb, _ := NewRLock(ctx, b, Named("R"))
	if ok, _ := rlb.TryLock(); ok {
		t.Fatal("another process took a held RLock")
	}
	rl.Unlock()
	if ok, _ := rlb.TryLock(); ok {
		t.Fatal("RLock released after one of two Unlocks")
	}
	rl.Unlock()
	if ok, err := rlb.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock after release = %v, %v", ok, err)
	}
	rlb.Unlock()

	if c0, err := NewCondition(ctx, a, nil); err != nil {
		t.Fatal(err)
	} else if _, ok := c0.Locker().(*RLock); !ok {
		t.Fatalf("a Condition's default lock is a %T, want an RLock", c0.Locker())
	}
	la, _ := NewLock(ctx, a, Named("CL"))
	cond, err := NewCondition(ctx, a, la, Named("C"))
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := NewLock(ctx, b, Named("CL"))
	condB, err := NewCondition(ctx, b, lb, Named("C"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cond.Wait(ctx); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("Wait without the lock: %v", err)
	}
	ready := false
	var mu sync.Mutex
	done := make(chan error, 1)
	cond.Lock(ctx)
	go func() {
		// The notifier is another process (connection b): it must wait
		// for the lock that Wait releases.
		condB.Lock(ctx)
		mu.Lock()
		ready = true
		mu.Unlock()
		done <- condB.NotifyAll(ctx)
		condB.Unlock()
	}()
	err = cond.WaitFor(ctx, func() bool { mu.Lock(); defer mu.Unlock(); return ready })
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cond.Unlock()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	cond.Lock(ctx)
	err = cond.Wait(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with deadline: %v", err)
	}
	if err := cond.Unlock(); err != nil {
		t.Fatalf("the lock was not re-taken after a timed-out Wait: %v", err)
	}
}

func TestSemaphores(t *testing.T) {
	ms := newMemServer(t, t.Name(), true)
	ctx := testCtx(t)
	a, b := ms.client(t, t.Name()), ms.client(t, t.Name())
	s, err := NewSemaphore(ctx, a, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.TryAcquire(); ok {
		t.Fatal("acquired an exhausted semaphore")
	}
	s.Release()
	s.Release()
	if v, err := s.Value(ctx); err != nil || v != 2 {
		t.Fatalf("Value = %d, %v", v, err)
	}

	bs, err := NewBoundedSemaphore(ctx, a, 1, Named("B"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Release(); !errors.Is(err, ErrOverReleased) {
		t.Fatalf("Release of no unit: %v", err)
	}
	bs.Acquire(ctx)
	bsb, _ := NewBoundedSemaphore(ctx, b, 1, Named("B"))
	got := make(chan error, 1)
	go func() { got <- bsb.Acquire(ctx) }()
	a.Close()
	if err := <-got; !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Acquire of a dead holder's unit: %v", err)
	}
	if err := bsb.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestEventAndBarrier(t *testing.T) {
	ms := newMemServer(t, t.Name(), true)
	ctx := testCtx(t)
	m := ms.client(t, t.Name())
	e, err := NewEvent(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- e.Wait(ctx) }()
	if set, _ := e.IsSet(ctx); set {
		t.Fatal("new event is set")
	}
	e.Set(ctx)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	e.Clear(ctx)
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	if err := e.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a clear event: %v", err)
	}
	cancel()

	b, err := NewBarrier(ctx, m, 3)
	if err != nil {
		t.Fatal(err)
	}
	idx := make(chan int, 3)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i, err := b.Wait(ctx)
			if err != nil {
				t.Error(err)
			}
			idx <- i
		}()
	}
	wg.Wait()
	close(idx)
	var is []int
	for i := range idx {
		is = append(is, i)
	}
	slices.Sort(is)
	if !slices.Equal(is, []int{0, 1, 2}) {
		t.Fatalf("arrival indexes %v", is)
	}
	go func() { _, err := b.Wait(ctx); waited <- err }()
	for {
		_, n, _, _ := b.State(ctx)
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.Abort(ctx)
	if err := <-waited; !errors.Is(err, ErrBrokenBarrier) {
		t.Fatalf("Wait on an aborted barrier: %v", err)
	}
	b.Reset(ctx)
	if _, _, broken, _ := b.State(ctx); broken {
		t.Fatal("broken after Reset")
	}
}

type counter struct{ n int }

type addArgs struct {
	By   int
	Note string
}

var errTooBig = errors.New("counter: too big")

var counterType = MustRegisterType("test.Counter", func(ctx context.Context) (*counter, error) { return &counter{}, nil },
	Method("Add", func(ctx context.Context, c *counter, by int) (int, error) {
		c.n += by
		if c.n > 100 {
			return c.n, errTooBig
		}
		return c.n, nil
	}),
	Method("AddNote", func(ctx context.Context, c *counter, a addArgs) (string, error) {
		c.n += a.By
		return fmt.Sprintf("%s:%d", a.Note, c.n), nil
	}),
	Method("Get", func(ctx context.Context, c *counter, _ struct{}) (int, error) { return c.n, nil }),
)

func init() { errsRegister(errTooBig) }

func TestCustomType(t *testing.T) {
	modes(t, func(t *testing.T, m *Manager) {
		ctx := testCtx(t)
		o, err := Create(ctx, m, counterType.Name())
		if err != nil {
			t.Fatal(err)
		}
		if n, err := Call[int](ctx, o, "Add", 5); err != nil || n != 5 {
			t.Fatalf("Add = %d, %v", n, err)
		}
		if s, err := Call[string](ctx, o, "AddNote", 2, "x"); err != nil || s != "x:7" {
			t.Fatalf("AddNote = %q, %v", s, err)
		}
		if n, err := Call[int](ctx, o, "Get"); err != nil || n != 7 {
			t.Fatalf("Get = %d, %v", n, err)
		}
		if _, err := Call[int](ctx, o, "Add", "five"); !errors.Is(err, ErrArgType) {
			t.Fatalf("Add(string): %v", err)
		}
		if _, err := Call[string](ctx, o, "Get"); !errors.Is(err, ErrResultType) {
			t.Fatalf("Get as string: %v", err)
		}
		if _, err := Call[int](ctx, o, "Nope"); !errors.Is(err, ErrNoSuchMethod) {
			t.Fatalf("Nope: %v", err)
		}
		if _, err := Call[int](ctx, o, "Add", 1000); !errors.Is(err, errTooBig) {
			t.Fatalf("Add(1000): %v, want errTooBig across the boundary", err)
		}
		ms, err := Methods(ctx, o)
		if err != nil || len(ms) != 3 || ms[0] != (MethodInfo{"Add", "int", "int"}) {
			t.Fatalf("Methods = %v, %v", ms, err)
		}
		if _, err := Create(ctx, m, "no.such.type"); !errors.Is(err, ErrNotRegistered) {
			t.Fatalf("Create of an unregistered type: %v", err)
		}
	})
}

func TestLifetime(t *testing.T) {
	ms := newMemServer(t, t.Name(), true)
	ctx := testCtx(t)
	m := ms.client(t, t.Name())
	d, err := NewDict[int, int](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	id := d.id
	d.Close()
	if err := d.Set(ctx, 1, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set on a closed proxy: %v", err)
	}
	// The object is gone on the server: a forged reference finds nothing.
	forged := &Dict[int, int]{ref: ref{c: m.c, id: id, kind: kindDict}}
	forged.init()
	if err := forged.Set(ctx, 1, 1); !errors.Is(err, ErrNoSuchObject) {
		t.Fatalf("Set on a released object: %v", err)
	}
	// A reference of another server instance never reaches an object here.
	d2, _ := NewDict[int, int](ctx, m)
	stale := &Dict[int, int]{ref: ref{c: m.c, id: d2.id, kind: kindDict}}
	stale.init()
	m.c.inst ^= 0xff
	err = stale.Set(ctx, 1, 1)
	m.c.inst ^= 0xff
	if !errors.Is(err, ErrNoSuchObject) {
		t.Fatalf("stale instance: %v", err)
	}
	// Named objects survive their last proxy; mismatched types are refused.
	n1, _ := NewDict[string, int](ctx, m, Named("shared"))
	n1.Set(ctx, "k", 7)
	n1.Close()
	n2, err := NewDict[string, int](ctx, m, Named("shared"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := n2.Get(ctx, "k"); err != nil || v != 7 {
		t.Fatalf("named dict after its last proxy closed: %v, %v", v, err)
	}
	if _, err := NewDict[string, string](ctx, m, Named("shared")); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("named dict of another type: %v", err)
	}
	if _, err := NewList[int](ctx, m, nil, Named("shared")); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("named object of another kind: %v", err)
	}
	// A connection's end releases its references.
	m2 := ms.client(t, t.Name())
	d3, _ := NewDict[int, int](ctx, m2)
	ms.s.mu.Lock()
	_, live := ms.s.objs[d3.id]
	ms.s.mu.Unlock()
	if !live {
		t.Fatal("object missing")
	}
	m2.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms.s.mu.Lock()
		_, live = ms.s.objs[d3.id]
		ms.s.mu.Unlock()
		if !live {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection's object was not released")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConnLost(t *testing.T) {
	ms := newMemServer(t, t.Name(), true)
	ctx := testCtx(t)
	m := ms.client(t, t.Name())
	q, _ := NewQueue[int](ctx, m, 0)
	got := make(chan error, 1)
	go func() { _, err := q.Get(ctx); got <- err }()
	waitFor(t, 10*time.Second, "the Get to be in flight", func() bool {
		m.c.mu.Lock()
		defer m.c.mu.Unlock()
		return len(m.c.calls) == 1
	})
	start := time.Now()
	ms.s.close()
	select {
	case err := <-got:
		if !errors.Is(err, ErrConnLost) {
			t.Fatalf("blocked Get when the server died: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked call did not notice the server's end")
	}
	t.Logf("noticed in %v", time.Since(start))
	if err := q.Put(ctx, 1); !errors.Is(err, ErrConnLost) {
		t.Fatalf("call after the server died: %v", err)
	}
}
