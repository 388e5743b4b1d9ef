package manager

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
)

type childArgs struct {
	D *Dict[string, int]
	L *List[int]
	V *Value[float64]
}

var childChange = multiproc.Register("manager_test.childChange", multiproc.NoResult(func(ctx context.Context, a childArgs) error {
	defer a.D.Close()
	defer a.L.Close()
	defer a.V.Close()
	if err := a.D.Set(ctx, "child", os.Getpid()); err != nil {
		return err
	}
	if err := a.L.Append(ctx, 42); err != nil {
		return err
	}
	return a.V.Set(ctx, 3.14)
}))

func startManager(t *testing.T, opts ...Option) *Manager {
	t.Helper()
	m, err := Start(testCtx(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return m
}

func TestLocalManagerChildChanges(t *testing.T) {
	ctx := testCtx(t)
	m := startManager(t)
	d, err := NewDict[string, int](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := NewList(ctx, m, []int{1})
	v, _ := NewValue(ctx, m, 0.0)
	p := multiproc.NewProcess(childChange, childArgs{D: d, L: l, V: v})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The sender may close its proxies at once: the hand-off keeps the
	// objects alive for the child.
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.ExitCode(); code != 0 {
		_, err := multiproc.Result[struct{}](p)
		t.Fatalf("child exit %d: %v", code, err)
	}
	if got, err := d.Get(ctx, "child"); err != nil || got != p.Pid() {
		t.Fatalf("d[child] = %v, %v; want the child's pid %d", got, err, p.Pid())
	}
	if all, err := l.All(ctx); err != nil || len(all) != 2 || all[1] != 42 {
		t.Fatalf("list = %v, %v", all, err)
	}
	if x, err := v.Get(ctx); err != nil || x != 3.14 {
		t.Fatalf("value = %v, %v", x, err)
	}
}

var holdLock = multiproc.Register("manager_test.holdLock", multiproc.NoResult(func(ctx context.Context, a struct {
	L   *Lock
	Got *Event
}) error {
	if err := a.L.Lock(ctx); err != nil {
		return err
	}
	if err := a.Got.Set(ctx); err != nil {
		return err
	}
	<-ctx.Done() // hold it until killed
	return nil
}))

func TestKilledClientLockOwnerDead(t *testing.T) {
	ctx := testCtx(t)
	m := startManager(t)
	l, _ := NewLock(ctx, m)
	ev, _ := NewEvent(ctx, m)
	p := multiproc.NewProcess(holdLock, struct {
		L   *Lock
		Got *Event
	}{l, ev})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ev.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := l.TryLock(); ok {
		t.Fatal("took a lock the child holds")
	}
	p.Kill()
	p.Join(ctx)
	if err := l.Lock(ctx); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Lock after the holder was killed: %v, want ErrOwnerDead", err)
	}
	l.MarkConsistent()
	l.Unlock()
}

func TestLocalManagerDeath(t *testing.T) {
	ctx := testCtx(t)
	m, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(ctx)
	q, _ := NewQueue[int](ctx, m, 0)
	blocked := make(chan error, 1)
	go func() { _, err := q.Get(ctx); blocked <- err }()
	waitFor(t, 10*time.Second, "the Get to be in flight", func() bool {
		m.c.mu.Lock()
		defer m.c.mu.Unlock()
		return len(m.c.calls) == 1
	})
	start := time.Now()
	syscall.Kill(m.Pid(), syscall.SIGKILL)
	select {
	case err := <-blocked:
		if !errors.Is(err, ErrConnLost) {
			t.Fatalf("blocked Get: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("a blocked call was not ended within 1s of the manager's death")
	}
	if err := q.Put(ctx, 1); !errors.Is(err, ErrConnLost) {
		t.Fatalf("Put after the manager died: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("noticed after %v", d)
	}
}

var incrMany = multiproc.Register("manager_test.incrMany", multiproc.NoResult(func(ctx context.Context, a struct {
	D *Dict[string, int64]
	N int
}) error {
	for range a.N {
		if _, err := a.D.Incr(ctx, "n", 1); err != nil {
			return err
		}
	}
	return a.D.Close()
}))

// TestManyClientProcesses runs 100 client processes at once, each
// incrementing one key: every increment counts.
func TestManyClientProcesses(t *testing.T) {
	ctx := testCtx(t)
	m := startManager(t)
	d, _ := NewDict[string, int64](ctx, m)
	const procs, each = 100, 20
	ps := make([]*multiproc.Process, procs)
	var wg sync.WaitGroup
	for i := range ps {
		ps[i] = multiproc.NewProcess(incrMany, struct {
			D *Dict[string, int64]
			N int
		}{d, each})
		wg.Add(1)
		go func(p *multiproc.Process) {
			defer wg.Done()
			if err := p.Start(ctx); err != nil {
				t.Error(err)
				return
			}
			p.Join(ctx)
			if code, _ := p.ExitCode(); code != 0 {
				_, err := multiproc.Result[struct{}](p)
				t.Errorf("client exit %d: %v", code, err)
			}
		}(ps[i])
	}
	wg.Wait()
	if n, err := d.Get(ctx, "n"); err != nil || n != procs*each {
		t.Fatalf("n = %d, %v; want %d", n, err, procs*each)
	}
}
