package manager

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// handoffs returns how many hand-offs s holds.
func handoffs(s *server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.handoffs)
}

func waitHandoffs(t *testing.T, s *server, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for handoffs(s) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d hand-offs held, want %d", handoffs(s), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func shortClaimWindow(t *testing.T, d time.Duration) {
	old := claimWindow
	claimWindow = d
	t.Cleanup(func() { claimWindow = old })
}

// TestHandoffSettled: the transport's word ends a hand-off. An encoding
// that is never sent (Finish(false), as a refused task's) gives its
// reference back at once, and the object of a proxy closed meanwhile
// dies; a delivered one waits claimWindow for its receiver's claim.
// (Before the hook both waited five minutes, or the sender's end.)
func TestHandoffSettled(t *testing.T) {
	shortClaimWindow(t, 50*time.Millisecond)
	ms := newMemServer(t, t.Name(), true)
	ctx := testCtx(t)
	m := ms.client(t, t.Name())
	type task struct{ L *List[int] }
	l, _ := NewList(ctx, m, []int{1})
	id := l.id

	var out wire.Outgoing
	if _, err := wire.AppendOut(wire.For[task](), nil, task{l}, &out); err != nil {
		t.Fatal(err)
	}
	if n := ms.refs(id); n != 2 {
		t.Fatalf("%d references while in transit, want 2 (the proxy's, the hand-off's)", n)
	}
	l.Close()
	waitRefs(t, ms, id, 1) // the hand-off keeps it
	out.Finish(false)      // never sent
	waitRefs(t, ms, id, -1)
	waitHandoffs(t, ms.s, 0)

	// Delivered: the reference waits for the receiver's claim, at most
	// claimWindow.
	l, _ = NewList(ctx, m, []int{2})
	id = l.id
	var out2 wire.Outgoing
	if _, err := wire.AppendOut(wire.For[task](), nil, task{l}, &out2); err != nil {
		t.Fatal(err)
	}
	out2.Finish(true)
	waitRefs(t, ms, id, 1)
	waitHandoffs(t, ms.s, 0)
	l.Close()
	waitRefs(t, ms, id, -1)

	// A claim within the window takes the hand-off's reference over.
	shortClaimWindow(t, time.Hour)
	l, _ = NewList(ctx, m, []int{3})
	id = l.id
	var out3 wire.Outgoing
	b, err := wire.AppendOut(wire.For[task](), nil, task{l}, &out3)
	if err != nil {
		t.Fatal(err)
	}
	// The receiver's copies of the descriptors (a transport's sendmsg).
	var mine []*os.File
	for _, f := range wire.AllFiles(out3.Res) {
		fd, err := wire.DupFD(f)
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, os.NewFile(uintptr(fd), f.Name()))
	}
	in := &wire.Files{Entries: [][]*os.File{mine}}
	out3.Finish(true)
	l.Close()
	got, err := wire.DecodeIn(wire.For[task](), b, in)
	if err != nil {
		t.Fatal(err)
	}
	waitHandoffs(t, ms.s, 0)
	if all, err := got.L.All(ctx); err != nil || len(all) != 1 || all[0] != 3 {
		t.Fatalf("received list = %v, %v", all, err)
	}
	got.L.Close()
	waitRefs(t, ms, id, -1)
}

var poolLen = multiproc.Register("manager_test.poolLen", func(ctx context.Context, a struct{ L *List[int] }) (int, error) {
	defer a.L.Close()
	return a.L.Len(ctx)
})

// TestHandoffPoolOutcome: proxies given to pool tasks hold their
// hand-offs until the tasks' outcome, no longer (plus the claim window,
// short here), including for tasks whose worker reused an earlier import
// and never claimed; a task refused by a closed pool gives its reference
// back at once.
func TestHandoffPoolOutcome(t *testing.T) {
	shortClaimWindow(t, 20*time.Millisecond)
	srv, _ := serveTCP(t)
	m := connect(t, srv.Addr().String())
	ctx := testCtx(t)
	l, _ := NewList(ctx, m, []int{1, 2})
	p, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	type arg = struct{ L *List[int] }
	var rs []*multiproc.AsyncResult[int]
	for range 20 {
		rs = append(rs, multiproc.ApplyAsync(ctx, p, poolLen, arg{l}))
	}
	for _, r := range rs {
		if n, err := r.Get(ctx); err != nil || n != 2 {
			t.Fatalf("Len in a task = %d, %v", n, err)
		}
	}
	waitHandoffs(t, srv.s, 0)
	p.Close()

	// Refused: the hand-off ends at once, whatever the window.
	shortClaimWindow(t, time.Hour)
	_, err = multiproc.ApplyAsync(ctx, p, poolLen, arg{l}).Get(ctx)
	if err == nil {
		t.Fatal("a closed pool ran a task")
	}
	waitHandoffs(t, srv.s, 0)
	id := l.id
	l.Close()
	srv.s.mu.Lock()
	_, live := srv.s.objs[id]
	srv.s.mu.Unlock()
	if live {
		// Its last reference was the proxy's: nothing else may hold it.
		deadline := time.Now().Add(10 * time.Second)
		for live && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			srv.s.mu.Lock()
			_, live = srv.s.objs[id]
			srv.s.mu.Unlock()
		}
		if live {
			t.Fatal("the list outlived its last proxy")
		}
	}
}
