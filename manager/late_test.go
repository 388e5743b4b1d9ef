package manager

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestRemoteLateGrantReleased: a Lock that gave up after its cancel grace
// (the link stalled) but that the server granted meanwhile is given back
// when the late answer arrives, so the lock does not stay held by a
// connection whose caller thinks it failed. Before, the late answer was
// dropped and every later Lock of that lock waited forever.
func TestRemoteLateGrantReleased(t *testing.T) {
	srv, _ := serveTCP(t)
	dl := newFreezer(t, srv.Addr().String())
	ctx := testCtx(t)
	h := connect(t, srv.Addr().String())
	a := connect(t, dl.ln.Addr().String())
	lh, err := NewLock(ctx, h, Named("late"))
	if err != nil {
		t.Fatal(err)
	}
	la, err := NewLock(ctx, a, Named("late"))
	if err != nil {
		t.Fatal(err)
	}
	if err := lh.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	dl.hold()
	before := dl.up.Load()
	// Long enough for the acquire and lh's Unlock to reach the server on a
	// loaded machine: the grant must happen before a gives up.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- la.Lock(short) }()
	waitFor(t, 20*time.Second, "the acquire to reach the server", func() bool { return dl.up.Load() > before })
	if err := lh.Unlock(); err != nil { // the server grants a's acquire; its answer is held back
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock over the stalled link: %v, want the deadline", err)
	}
	// The precondition: the server granted a's acquire (so the lock is
	// held by a's connection), rather than cancelling it.
	if got, err := lh.TryLock(); err != nil || got {
		t.Fatalf("TryLock before the late answer = %v, %v: the server did not grant a's acquire before it gave up, so this run tests nothing", got, err)
	}
	dl.release()
	lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
	defer lcancel()
	if err := lh.Lock(lctx); err != nil {
		t.Fatalf("the late grant was never given back: %v", err)
	}
	if err := lh.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestRemoteConditionWaitRetakesLock: a Condition.Wait whose ctx ends while
// another client holds the lock for longer than the cancel grace returns
// holding the lock, as it promises (it used to give up after the grace and
// return without it: the caller's Unlock failed with ErrNotHeld, and the
// server later retook the lock for a connection whose caller had gone).
func TestRemoteConditionWaitRetakesLock(t *testing.T) {
	srv, _ := serveTCP(t)
	ctx := testCtx(t)
	h := connect(t, srv.Addr().String())
	a := connect(t, srv.Addr().String())
	lh, err := NewLock(ctx, h, Named("cl"))
	if err != nil {
		t.Fatal(err)
	}
	la, err := NewLock(ctx, a, Named("cl"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := NewCondition(ctx, a, la, Named("cc"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- ca.Wait(short) }()
	if err := lh.Lock(ctx); err != nil { // granted once a's Wait released it
		t.Fatal(err)
	}
	// Hold it well past a's deadline and the grace, unless a's Wait
	// returns first (the old behaviour: without the lock).
	var werr error
	returnedEarly := false
	select {
	case werr = <-errc:
		returnedEarly = true
	case <-time.After(300*time.Millisecond + cancelGrace + 2*time.Second):
	}
	if err := lh.Unlock(); err != nil {
		t.Fatal(err)
	}
	if returnedEarly {
		t.Fatalf("Wait returned (%v) while another client held the lock", werr)
	}
	if werr = <-errc; !errors.Is(werr, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v, want the deadline", werr)
	}
	if err := ca.Unlock(); err != nil {
		t.Fatalf("Unlock after Wait: %v (Wait must return holding the lock)", err)
	}
	lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
	defer lcancel()
	if err := lh.Lock(lctx); err != nil {
		t.Fatalf("the lock is not free after a's Unlock: %v", err)
	}
	lh.Unlock()
}

// TestRemoteLateQueueGetPutBack: a queue Get that gave up after its
// cancel grace (the link stalled) but that the server answered meanwhile,
// with an item, puts that item back at the front of the queue when the
// late answer arrives. Before, the item was lost. The unfinished count of
// a JoinableQueue is left as the Get left it: one TaskDone per Put still
// ends Join.
func TestRemoteLateQueueGetPutBack(t *testing.T) {
	srv, _ := serveTCP(t)
	dl := newFreezer(t, srv.Addr().String())
	ctx := testCtx(t)
	h := connect(t, srv.Addr().String())
	a := connect(t, dl.ln.Addr().String())
	qh, err := NewJoinableQueue[int](ctx, h, 0, Named("lateq"))
	if err != nil {
		t.Fatal(err)
	}
	qa, err := NewJoinableQueue[int](ctx, a, 0, Named("lateq"))
	if err != nil {
		t.Fatal(err)
	}
	dl.hold()
	before := dl.up.Load()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		v, err := qa.Get(short)
		if err == nil {
			err = fmt.Errorf("got %d", v)
		}
		errc <- err
	}()
	waitFor(t, 20*time.Second, "the Get to reach the server", func() bool { return dl.up.Load() > before })
	if err := qh.Put(ctx, 7); err != nil { // the server gives it to a's Get; the answer is held back
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get over the stalled link: %v, want the deadline", err)
	}
	// The precondition: the server handed the item to a's Get rather than
	// cancelling it.
	if n, err := qh.Len(ctx); err != nil || n != 0 {
		t.Fatalf("Len before the late answer = %d, %v: the server did not answer a's Get before it gave up, so this run tests nothing", n, err)
	}
	if err := qh.Put(ctx, 8); err != nil {
		t.Fatal(err)
	}
	dl.release()
	waitFor(t, 20*time.Second, "the late item to be put back", func() bool {
		n, err := qh.Len(ctx)
		return err == nil && n == 2
	})
	gctx, gcancel := context.WithTimeout(ctx, 20*time.Second)
	defer gcancel()
	for _, want := range []int{7, 8} { // 7 back at the front, where it was
		v, err := qh.Get(gctx)
		if err != nil || v != want {
			t.Fatalf("Get after the late answer = %d, %v; want %d (the late item put back first)", v, err, want)
		}
		if err := qh.TaskDone(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := qh.Join(gctx); err != nil {
		t.Fatalf("Join after a TaskDone per Put: %v", err)
	}
}

// TestRemoteLateQueueGetPutBackProxy is TestRemoteLateQueueGetPutBack for
// a queue of proxies: the item put back is the same object, usable, and
// the references balance: once the queue and every proxy are closed the
// server holds no object but the named queue, which lives until shutdown
// (the abandoned Get's lent reference went back with the item, not left
// on its connection).
func TestRemoteLateQueueGetPutBackProxy(t *testing.T) {
	srv, _ := serveTCP(t)
	dl := newFreezer(t, srv.Addr().String())
	ctx := testCtx(t)
	h := connect(t, srv.Addr().String())
	a := connect(t, dl.ln.Addr().String())
	qh, err := NewQueue[*Dict[string, int]](ctx, h, 0, Named("lateqp"))
	if err != nil {
		t.Fatal(err)
	}
	qa, err := NewQueue[*Dict[string, int]](ctx, a, 0, Named("lateqp"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDict[string, int](ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Set(ctx, "k", 5); err != nil {
		t.Fatal(err)
	}
	dl.hold()
	before := dl.up.Load()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := qa.Get(short)
		errc <- err
	}()
	waitFor(t, 20*time.Second, "the Get to reach the server", func() bool { return dl.up.Load() > before })
	if err := qh.Put(ctx, d); err != nil {
		t.Fatal(err)
	}
	d.Close() // the queue's (and then the late Get's) references keep it
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get over the stalled link: %v, want the deadline", err)
	}
	if n, err := qh.Len(ctx); err != nil || n != 0 {
		t.Fatalf("Len before the late answer = %d, %v: the server did not answer a's Get before it gave up, so this run tests nothing", n, err)
	}
	dl.release()
	waitFor(t, 20*time.Second, "the late item to be put back", func() bool {
		n, err := qh.Len(ctx)
		return err == nil && n == 1
	})
	got, err := qh.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := got.Get(ctx, "k"); err != nil || v != 5 {
		t.Fatalf("the put-back dict's k = %d, %v; want 5", v, err)
	}
	got.Close()
	qh.Close()
	qa.Close()
	waitFor(t, 20*time.Second, "the server to drop the dict", func() bool {
		srv.s.mu.Lock()
		defer srv.s.mu.Unlock()
		for _, e := range srv.s.objs {
			if !e.named {
				return false
			}
		}
		return true
	})
}

// TestQueueUngetRefusesUnlentReference: Queue.Unget is the client's undo
// of a late Get; on a queue of proxies it is refused for a reference this
// connection was not lent (a forged or buggy one), which would otherwise
// be stored without a reference of its own and could die in the queue.
func TestQueueUngetRefusesUnlentReference(t *testing.T) {
	srv, _ := serveTCP(t)
	ctx := testCtx(t)
	h := connect(t, srv.Addr().String())
	q, err := NewQueue[*Dict[string, int]](ctx, h, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDict[string, int](ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	// Another connection's dict: it exists, but this connection holds no
	// reference to it.
	other, err := NewDict[string, int](ctx, connect(t, srv.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	// Stored forms (server instance, id) of objects this connection holds
	// no reference to: that one and one that does not exist.
	for _, id := range []uint64{other.id, d.id + 1000} {
		forged := make([]byte, refLen)
		binary.LittleEndian.PutUint64(forged, srv.s.inst)
		binary.LittleEndian.PutUint64(forged[8:], id)
		if _, err := q.call(ctx, opQueueUnget, forged); !errors.Is(err, ErrNoSuchObject) {
			t.Fatalf("Unget of unlent object %d: %v, want ErrNoSuchObject", id, err)
		}
	}
	if n, err := q.Len(ctx); err != nil || n != 0 {
		t.Fatalf("Len after refused Ungets = %d, %v; want 0", n, err)
	}
	if err := q.Put(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := q.Get(ctx)
	if err != nil || got.id != d.id {
		t.Fatalf("Get = %v, %v; want d", got, err)
	}
	got.Close()
	d.Close()
}
