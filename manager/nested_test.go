package manager

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
)

// refs returns the server's reference count of object id, or -1 once the
// object is gone.
func (ms *memServer) refs(id uint64) int {
	ms.s.mu.Lock()
	defer ms.s.mu.Unlock()
	if e := ms.s.objs[id]; e != nil {
		return e.refs
	}
	return -1
}

// waitRefs waits until object id's count is want (-1: gone).
func waitRefs(t *testing.T, ms *memServer, id uint64, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ms.refs(id) != want {
		if time.Now().After(deadline) {
			t.Fatalf("object %d: %d references, want %d", id, ms.refs(id), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestNestedDictOfList is Python's l = manager.list(); d = manager.dict();
// d['x'] = l; d['x'].append(1) → l is [1], in both encodings.
func TestNestedDictOfList(t *testing.T) {
	modes(t, func(t *testing.T, m *Manager) {
		ctx := testCtx(t)
		l, err := NewList[int](ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		d, err := NewDict[string, *List[int]](ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Set(ctx, "x", l); err != nil {
			t.Fatal(err)
		}
		x, err := d.Get(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		if x == l || x.id != l.id {
			t.Fatalf("Get returned %p (object %d), want a new proxy of object %d", x, x.id, l.id)
		}
		if err := x.Append(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if all, err := l.All(ctx); err != nil || !slices.Equal(all, []int{1}) {
			t.Fatalf("l = %v, %v; want [1] (changed through d[x])", all, err)
		}
		// Every read that returns values returns proxies of the same object.
		vs, err := d.Values(ctx)
		if err != nil || len(vs) != 1 || vs[0].id != l.id {
			t.Fatalf("Values = %v, %v", vs, err)
		}
		vs[0].Close()
		its, err := d.Items(ctx)
		if err != nil || len(its) != 1 || its[0].Key != "x" || its[0].Value.id != l.id {
			t.Fatalf("Items = %v, %v", its, err)
		}
		its[0].Value.Close()
		// A nil proxy is None.
		if err := d.Set(ctx, "none", nil); err != nil {
			t.Fatal(err)
		}
		if v, err := d.Get(ctx, "none"); err != nil || v != nil {
			t.Fatalf("Get(none) = %v, %v; want nil", v, err)
		}
		if v, err := d.GetOr(ctx, "missing", l); err != nil || v == nil || v.id != l.id {
			t.Fatalf("GetOr(missing, l) = %v, %v", v, err)
		} else {
			v.Close()
		}
		l2, _ := NewList(ctx, m, []int{7})
		if v, err := d.SetDefault(ctx, "y", l2); err != nil || v.id != l2.id {
			t.Fatalf("SetDefault = %v, %v", v, err)
		} else {
			v.Close()
		}
		l2.Close() // d["y"] keeps it
		p, err := d.Pop(ctx, "y")
		if err != nil {
			t.Fatal(err)
		}
		if all, err := p.All(ctx); err != nil || !slices.Equal(all, []int{7}) {
			t.Fatalf("popped list = %v, %v", all, err)
		}
		p.Close()
		if err := d.SetMany(ctx, map[string]*List[int]{"a": l, "b": l}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNestedKinds: a List of Dict proxies, a Value, a Queue, an Array and
// a Namespace attribute holding proxies, and custom objects in a Dict.
func TestNestedKinds(t *testing.T) {
	modes(t, func(t *testing.T, m *Manager) {
		ctx := testCtx(t)
		d1, _ := NewDict[string, int](ctx, m)
		d2, _ := NewDict[string, int](ctx, m)
		defer d1.Close()
		defer d2.Close()
		l, err := NewList(ctx, m, []*Dict[string, int]{d1})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.Append(ctx, d2); err != nil {
			t.Fatal(err)
		}
		all, err := l.All(ctx)
		if err != nil || len(all) != 2 {
			t.Fatalf("All = %v, %v", all, err)
		}
		for i, x := range all {
			if err := x.Set(ctx, "i", i); err != nil {
				t.Fatal(err)
			}
			x.Close()
		}
		if v, err := d2.Get(ctx, "i"); err != nil || v != 1 {
			t.Fatalf("d2[i] = %v, %v (set through l[1])", v, err)
		}
		if i, err := l.Index(ctx, d2); err != nil || i != 1 {
			t.Fatalf("Index(d2) = %v, %v", i, err)
		}
		if err := l.Remove(ctx, d1); err != nil {
			t.Fatal(err)
		}

		v, err := NewValue(ctx, m, d1)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		old, err := v.Swap(ctx, d2)
		if err != nil || old.id != d1.id {
			t.Fatalf("Swap = %v, %v", old, err)
		}
		old.Close()
		if ok, err := v.CompareAndSwap(ctx, d2, nil); err != nil || !ok {
			t.Fatalf("CompareAndSwap(d2, nil) = %v, %v", ok, err)
		}
		if x, err := v.Get(ctx); err != nil || x != nil {
			t.Fatalf("Value after CAS = %v, %v", x, err)
		}

		q, err := NewQueue[*Dict[string, int]](ctx, m, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		q.Put(ctx, d1)
		got, err := q.Get(ctx)
		if err != nil || got.id != d1.id {
			t.Fatalf("queue Get = %v, %v", got, err)
		}
		if x, err := got.Get(ctx, "i"); err != nil || x != 0 {
			t.Fatalf("d1[i] through the queue's proxy = %v, %v", x, err)
		}
		got.Close()

		lk, _ := NewLock(ctx, m)
		defer lk.Close()
		a, err := NewArray(ctx, m, []*Lock{lk, nil})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		al, err := a.Get(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := al.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, _ := lk.TryLock(); ok { // the same lock, held by this connection: not reentrant
			t.Fatal("took a lock held through the array's proxy")
		}
		al.Unlock()
		al.Close()

		ns, _ := NewNamespace(ctx, m)
		defer ns.Close()
		if err := SetAttr(ctx, ns, "d", d2); err != nil {
			t.Fatal(err)
		}
		nd, err := GetAttr[*Dict[string, int]](ctx, ns, "d")
		if err != nil || nd.id != d2.id {
			t.Fatalf("GetAttr = %v, %v", nd, err)
		}
		nd.Close()
		if _, err := GetAttr[*Dict[string, string]](ctx, ns, "d"); !errors.Is(err, ErrTypeMismatch) {
			t.Fatalf("GetAttr of another proxy type: %v", err)
		}

		o, err := Create(ctx, m, counterType.Name())
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		od, _ := NewDict[string, *Object](ctx, m)
		defer od.Close()
		if err := od.Set(ctx, "c", o); err != nil {
			t.Fatal(err)
		}
		oc, err := od.Get(ctx, "c")
		if err != nil || oc.TypeName() != counterType.Name() {
			t.Fatalf("custom object through a dict: %v, %v", oc, err)
		}
		oc.Close()
	})
}

// TestNestedRelease: a stored proxy holds its object; deleting,
// overwriting, popping, clearing, or the container's death gives the
// reference back, and the object dies when nothing holds it.
func TestNestedRelease(t *testing.T) {
	ms := newMemServer(t, t.Name(), true)
	ctx := testCtx(t)
	m := ms.client(t, t.Name())
	d, _ := NewDict[string, *List[int]](ctx, m)
	defer d.Close()
	l, _ := NewList(ctx, m, []int{1})
	id := l.id
	d.Set(ctx, "a", l)
	if n := ms.refs(id); n != 2 {
		t.Fatalf("%d references to a stored list, want 2 (the proxy's, the dict's)", n)
	}
	l.Close()
	waitRefs(t, ms, id, 1)
	x, _ := d.Get(ctx, "a")
	if n := ms.refs(id); n != 2 {
		t.Fatalf("%d references after Get, want 2 (the dict's, the reader's)", n)
	}
	x.Close()
	if err := d.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	waitRefs(t, ms, id, -1)

	// Overwriting.
	l, _ = NewList[int](ctx, m, nil)
	id = l.id
	d.Set(ctx, "a", l)
	l.Close()
	d.Set(ctx, "a", nil)
	waitRefs(t, ms, id, -1)

	// Clear, and a List's Pop.
	l, _ = NewList[int](ctx, m, nil)
	id = l.id
	d.Set(ctx, "a", l)
	d.Set(ctx, "b", l)
	l.Close()
	waitRefs(t, ms, id, 2)
	d.Clear(ctx)
	waitRefs(t, ms, id, -1)

	// The container's death releases what it held, transitively.
	inner, _ := NewList(ctx, m, []int{5})
	innerID := inner.id
	outer, _ := NewList(ctx, m, []*List[int]{inner})
	d2, _ := NewDict[string, *List[*List[int]]](ctx, m)
	d2ID := d2.id
	d2.Set(ctx, "o", outer)
	inner.Close()
	outer.Close()
	o, _ := d2.Get(ctx, "o")
	in, _ := o.Get(ctx, 0)
	if got, err := in.All(ctx); err != nil || !slices.Equal(got, []int{5}) {
		t.Fatalf("d2[o][0] = %v, %v", got, err)
	}
	in.Close()
	o.Close()
	d2.Close()
	waitRefs(t, ms, d2ID, -1)
	waitRefs(t, ms, innerID, -1)

	// A queue's item.
	q, _ := NewQueue[*List[int]](ctx, m, 0)
	l, _ = NewList[int](ctx, m, nil)
	id = l.id
	q.Put(ctx, l)
	l.Close()
	q.Close()
	waitRefs(t, ms, id, -1)
}

// TestNestedRefused: keys, proxies inside other types and update
// functions are refused; a proxy of another manager, a closed proxy, or a
// reference of the wrong kind or a stale instance are refused, typed.
func TestNestedRefused(t *testing.T) {
	ms := newMemServer(t, t.Name(), false)
	ctx := testCtx(t)
	m := ms.client(t, t.Name())
	other := newMemServer(t, t.Name()+"-other", false)
	m2 := other.client(t, t.Name()+"-other")

	if _, err := NewDict[*List[int], int](ctx, m); !errors.Is(err, ErrNotTransferable) {
		t.Fatalf("a proxy as a key: %v, want ErrNotTransferable", err)
	}
	type holds struct{ L *List[int] }
	if _, err := NewList[holds](ctx, m, nil); !errors.Is(err, ErrNotTransferable) {
		t.Fatalf("a proxy inside a struct: %v, want ErrNotTransferable", err)
	}
	if _, err := NewDict[string, *Condition](ctx, m); !errors.Is(err, ErrNotTransferable) {
		t.Fatalf("a Condition element: %v, want ErrNotTransferable", err)
	}

	d, _ := NewDict[string, *List[int]](ctx, m)
	foreign, _ := NewList[int](ctx, m2, nil)
	defer foreign.Close()
	if err := d.Set(ctx, "f", foreign); !errors.Is(err, ErrForeignProxy) {
		t.Fatalf("storing another manager's proxy: %v, want ErrForeignProxy", err)
	}
	closed, _ := NewList[int](ctx, m, nil)
	closed.Close()
	if err := d.Set(ctx, "c", closed); !errors.Is(err, ErrClosed) {
		t.Fatalf("storing a closed proxy: %v, want ErrClosed", err)
	}
	if _, err := d.Update(ctx, "k", UpdateFunc[*List[int]](appendBang)); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("Update on a dict of proxies: %v, want ErrTypeMismatch", err)
	}

	// The server checks what a client sends, whatever the client checked.
	strs, _ := NewList[string](ctx, m, nil)
	defer strs.Close()
	ref := func(inst, id uint64) []byte { return append(putU64(inst), putU64(id)...) }
	for _, c := range []struct {
		name string
		arg  []byte
		want error
	}{
		{"another element type", ref(m.c.inst, strs.id), ErrTypeMismatch},
		{"another kind", ref(m.c.inst, d.id), ErrTypeMismatch},
		{"a stale instance", ref(m.c.inst^1, strs.id), ErrForeignProxy},
		{"a dead object", ref(m.c.inst, closed.id), ErrNoSuchObject},
		{"garbage", []byte{1, 2, 3}, nil},
	} {
		_, err := d.call(ctx, opDictSet, []byte("k"), c.arg)
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if n, _ := d.Len(ctx); n != 0 {
		t.Fatalf("%d entries stored by refused requests", n)
	}
	if n := ms.refs(strs.id); n != 1 {
		t.Fatalf("%d references to a list refused as an element, want 1", n)
	}
	// A handed-out reference the client cannot decode is refused too.
	if _, err := (refCodec[*List[int]]{c: m.c}).Decode(ref(m.c.inst, strs.id)); err == nil {
		t.Fatal("decoded a reference to a List[string] as a *List[int]")
	}
}

type nestedArgs struct {
	D *Dict[string, *List[int]]
	L *List[int] // stored by the child, then closed: only the dict holds it
}

var nestedChild = multiproc.Register("manager_test.nestedChild", multiproc.NoResult(func(ctx context.Context, a nestedArgs) error {
	defer a.D.Close()
	x, err := a.D.Get(ctx, "shared")
	if err != nil {
		return err
	}
	defer x.Close()
	if err := x.Append(ctx, os.Getpid()); err != nil {
		return err
	}
	if a.L != nil {
		if err := a.D.Set(ctx, "from-child", a.L); err != nil {
			return err
		}
		return a.L.Close()
	}
	return nil
}))

// TestNestedTwoClientProcesses: two client processes take the nested
// proxy out of a dict (each over its own connection) and append to the
// list the parent sees; one stores a proxy it received and closes it, and
// the object outlives that process in the dict. Deleting the entries
// then kills the objects nothing else holds.
func TestNestedTwoClientProcesses(t *testing.T) {
	ctx := testCtx(t)
	m := startManager(t)
	l, _ := NewList[int](ctx, m, nil)
	d, err := NewDict[string, *List[int]](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Set(ctx, "shared", l); err != nil {
		t.Fatal(err)
	}
	l2, _ := NewList(ctx, m, []int{-1})
	l2ID := l2.id
	ps := []*multiproc.Process{
		multiproc.NewProcess(nestedChild, nestedArgs{D: d, L: l2}),
		multiproc.NewProcess(nestedChild, nestedArgs{D: d}),
	}
	for _, p := range ps {
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l2.Close() // the hand-off, then the dict, keep it
	var pids []int
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			t.Fatal(err)
		}
		if code, _ := p.ExitCode(); code != 0 {
			_, err := multiproc.Result[struct{}](p)
			t.Fatalf("child exit %d: %v", code, err)
		}
		pids = append(pids, p.Pid())
	}
	got, err := l.All(ctx)
	slices.Sort(got)
	slices.Sort(pids)
	if err != nil || !slices.Equal(got, pids) {
		t.Fatalf("l = %v, %v; want the children's pids %v", got, err, pids)
	}
	fc, err := d.Get(ctx, "from-child")
	if err != nil {
		t.Fatal(err)
	}
	if all, err := fc.All(ctx); err != nil || !slices.Equal(all, []int{-1}) {
		t.Fatalf("d[from-child] = %v, %v", all, err)
	}
	fc.Close()
	// Nothing but the dict holds l2 now: deleting its entry kills it.
	if err := d.Delete(ctx, "from-child"); err != nil {
		t.Fatal(err)
	}
	lid := l.id
	l.Close()
	d.Delete(ctx, "shared")
	for _, id := range []uint64{l2ID, lid} {
		forged := &List[int]{ref: ref{c: m.c, id: id, kind: kindList}, c: elemCodec[int](m.c)}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := forged.Len(ctx)
			if errors.Is(err, ErrNoSuchObject) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("object %d still alive after its entry was deleted: %v", id, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// FuzzRefDecode: a handed-out reference and a stored one never panic
// their decoders, and garbage is refused.
func FuzzRefDecode(f *testing.F) {
	c := &client{inst: 7}
	f.Add(append(append(putU64(7), putU64(3)...), "int"...))
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		if l, err := (refCodec[*List[int]]{c: c}).Decode(b); err == nil && l != nil && (l.id == 0 || l.desc != "int") {
			t.Fatalf("decoded %x as object %d of %q", b, l.id, l.desc)
		}
		(refCodec[*Object]{c: c}).Decode(b)
		(refCodec[*Lock]{c: c}).DecodeSlice(nil, b)
		parseRef(b)
		parseSpec(b)
	})
}
