package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
)

func setFutexWait(t *testing.T, d time.Duration) {
	old := fastFutexWait.Swap(int64(d))
	t.Cleanup(func() { fastFutexWait.Store(old) })
}

func fastOf(t *testing.T, m *Manager) *fastClient {
	t.Helper()
	if m.c.fast == nil {
		t.Fatal("the local connection has no call slot")
	}
	return m.c.fast
}

// TestFastPathUsed guards that a local manager's calls go through the
// call slot (answered in memory), not the socket.
func TestFastPathUsed(t *testing.T) {
	ctx := testCtx(t)
	m := startManager(t)
	f := fastOf(t, m)
	d, err := NewDict[string, int](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	p0, m0 := f.posts.Load(), f.inMem.Load()
	for i := range 100 {
		if err := d.Set(ctx, "k", i); err != nil {
			t.Fatal(err)
		}
		if v, err := d.Get(ctx, "k"); err != nil || v != i {
			t.Fatalf("Get = %d, %v; want %d", v, err, i)
		}
	}
	if _, err := d.Get(ctx, "missing"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrKeyNotFound (an error answered in memory)", err)
	}
	if got := f.posts.Load() - p0; got != 201 {
		t.Fatalf("%d calls posted to the slot, want 201", got)
	}
	if got := f.inMem.Load() - m0; got == 0 {
		t.Fatal("no call was answered in memory")
	}
}

// TestFastLargeValueFallback: a request or a response larger than the
// slot's areas takes the socket, and the slot serves the next call.
func TestFastLargeValueFallback(t *testing.T) {
	ctx := testCtx(t)
	m := startManager(t)
	f := fastOf(t, m)
	d, err := NewDict[string, []byte](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*fastArea/16)
	p0 := f.posts.Load()
	if err := d.Set(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	if got := f.posts.Load() - p0; got != 0 {
		t.Fatalf("a %d-byte request was posted to the slot", len(big))
	}
	m0 := f.inMem.Load()
	got, err := d.Get(ctx, "big") // a small request, a large response
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Get(big) = %d bytes, %v; want %d bytes", len(got), err, len(big))
	}
	if f.posts.Load()-p0 != 1 || f.inMem.Load() != m0 {
		t.Fatalf("posts +%d, in memory +%d; want the Get posted and answered on the socket", f.posts.Load()-p0, f.inMem.Load()-m0)
	}
	if err := d.Set(ctx, "small", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Get(ctx, "small"); err != nil || string(v) != "x" {
		t.Fatalf("Get(small) = %q, %v", v, err)
	}
	if f.inMem.Load() == m0 {
		t.Fatal("the slot was not used again after a response on the socket")
	}
}

// TestFastCtxCancelWhileBlocked: a call blocked in the slot's futex sleep
// ends at its ctx's deadline, and the slot works afterwards.
func TestFastCtxCancelWhileBlocked(t *testing.T) {
	setFutexWait(t, time.Minute) // the call sleeps in the kernel for its whole wait
	ctx := testCtx(t)
	m := startManager(t)
	f := fastOf(t, m)
	q, err := NewQueue[int](ctx, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	p0 := f.posts.Load()
	_, err = q.Get(cctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get on an empty queue: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Get returned %v after its deadline's start", d)
	}
	if f.posts.Load() == p0 {
		t.Fatal("the Get did not go through the slot")
	}
	if err := q.Put(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if v, err := q.Get(ctx); err != nil || v != 7 {
		t.Fatalf("Get = %d, %v; want 7 (the cancelled Get took nothing)", v, err)
	}
}

// TestFastManagerDeathWhileClientSleeps: the manager dies while a call
// sleeps on the slot's futex: the call ends with ErrConnLost after at
// most its bounded sleep, then the socket's end.
func TestFastManagerDeathWhileClientSleeps(t *testing.T) {
	setFutexWait(t, 300*time.Millisecond)
	ctx := testCtx(t)
	m, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(ctx)
	f := fastOf(t, m)
	q, _ := NewQueue[int](ctx, m, 0)
	blocked := make(chan error, 1)
	go func() { _, err := q.Get(ctx); blocked <- err }()
	waitFor(t, 10*time.Second, "the Get to sleep on the futex", func() bool { return atomic.LoadUint32(f.s.cliW) == 1 })
	start := time.Now()
	syscall.Kill(m.Pid(), syscall.SIGKILL)
	select {
	case err := <-blocked:
		if !errors.Is(err, ErrConnLost) {
			t.Fatalf("blocked Get: %v, want ErrConnLost", err)
		}
	case <-time.After(time.Second):
		t.Fatal("a call sleeping on the slot was not ended within 1s of the manager's death")
	}
	t.Logf("ended %v after the kill", time.Since(start))
}

// TestFastClientDeathWhileServerSleeps: a client process is killed while
// the server's slot loop for it sleeps on the futex: the connection ends
// at once (the socket), the loop is woken, and the lock the client held
// comes back with ErrOwnerDead.
func TestFastClientDeathWhileServerSleeps(t *testing.T) {
	setFutexWait(t, time.Minute) // the server's loops would sleep a minute unless woken
	ctx := testCtx(t)
	srv, err := Serve(ctx, "unix", filepath.Join(t.TempDir(), "m"), testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m, err := Connect(ctx, "unix", srv.Addr().String(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fastOf(t, m)
	l, _ := NewLock(ctx, m)
	ev, _ := NewEvent(ctx, m)
	p := multiproc.NewProcess(holdLock, struct {
		L   *Lock
		Got *Event
	}{l, ev})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := ev.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	sleeping := func() (n int) {
		srv.s.mu.Lock()
		defer srv.s.mu.Unlock()
		for c := range srv.s.conns {
			c.mu.Lock()
			if c.fast != nil && c.fast.f == nil && atomic.LoadUint32(c.fast.s.srvW) == 1 {
				n++
			}
			c.mu.Unlock()
		}
		return n
	}
	waitFor(t, 10*time.Second, "both slot loops to sleep on the futex", func() bool { return sleeping() == 2 })
	p.Kill()
	p.Join(ctx)
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.Lock(lctx); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Lock after the holder was killed: %v, want ErrOwnerDead", err)
	}
	l.MarkConsistent()
	l.Unlock()
	waitFor(t, 5*time.Second, "the killed client's connection to go", func() bool {
		srv.s.mu.Lock()
		defer srv.s.mu.Unlock()
		return len(srv.s.conns) == 1
	})
}

// TestFastIdleParks: idle connections' slot loops park on the socket
// after their bounded sleep, holding no thread, and wake for the next
// call.
func TestFastIdleParks(t *testing.T) {
	setFutexWait(t, 20*time.Millisecond)
	ctx := testCtx(t)
	srv, err := Serve(ctx, "unix", filepath.Join(t.TempDir(), "m"), testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var ms []*Manager
	for range 8 {
		m, err := Connect(ctx, "unix", srv.Addr().String(), testKey)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		fastOf(t, m)
		ms = append(ms, m)
	}
	parked := func() bool {
		srv.s.mu.Lock()
		defer srv.s.mu.Unlock()
		for c := range srv.s.conns {
			c.mu.Lock()
			ok := c.fast != nil && atomic.LoadUint32(c.fast.s.park) == 1
			c.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	}
	waitFor(t, 10*time.Second, "every slot loop to park", parked)
	if n := futexSleepers.Load(); n != 0 {
		t.Fatalf("%d slot loops sleep in the kernel, want 0", n)
	}
	for _, m := range ms {
		d, err := NewDict[string, int](ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Set(ctx, "a", 1); err != nil {
			t.Fatal(err)
		}
		if v, err := d.Get(ctx, "a"); err != nil || v != 1 {
			t.Fatalf("Get after parking = %d, %v", v, err)
		}
	}
}

// TestFastConcurrentCallsParking guards the slot's hand-over between
// goroutines of one client: a call answered in memory frees the slot,
// another goroutine posts at once, and the first must not then touch the
// second's pending call (it once deleted it by reading the slot's call id
// after freeing the slot, so the second, parked on the socket, never saw
// its answer and hung until its deadline). With no futex sleep, calls
// park on the socket often, which is where a lost entry shows.
func TestFastConcurrentCallsParking(t *testing.T) {
	setFutexWait(t, 0)
	ctx := testCtx(t)
	m := startManager(t)
	f := fastOf(t, m)
	d, err := NewDict[string, int](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, calls = 8, 300
	errc := make(chan error, goroutines)
	for g := range goroutines {
		go func() {
			key := fmt.Sprint("k", g)
			for i := range calls {
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				err := d.Set(cctx, key, i)
				var v int
				if err == nil {
					v, err = d.Get(cctx, key)
				}
				cancel()
				if err == nil && v != i {
					err = fmt.Errorf("d[%s] = %d, want %d", key, v, i)
				}
				if err != nil {
					errc <- fmt.Errorf("goroutine %d, call %d: %w", g, i, err)
					return
				}
			}
			errc <- nil
		}()
	}
	for range goroutines {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if f.inMem.Load() == 0 {
		t.Fatal("no call was answered in memory: the test did not exercise the slot")
	}
	t.Logf("slot posts %d, answered in memory %d", f.posts.Load(), f.inMem.Load())
}
