//go:build unix

package wire

import (
	"encoding/gob"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
)

// fakeRes is a resource backed by one pipe end, with an ID like a shared
// segment's, so the tests see what the codec does with descriptors.
type fakeRes struct {
	id   uint64
	f    *os.File
	note string
}

func (r *fakeRes) NeedsDescriptors() bool { return r.f != nil }

func (r *fakeRes) ExportResource(x *Exported) error {
	if r.f == nil {
		return errors.New("closed")
	}
	x.ID, x.Files, x.State = r.id, []*os.File{r.f}, []byte(r.note)
	return nil
}

func (r *fakeRes) ImportResource(state []byte, files []*os.File) error {
	if len(files) != 1 {
		closeAll(files)
		return errors.New("want one file")
	}
	r.f, r.note = files[0], string(state)
	return nil
}

type job struct {
	Name string
	Q    *fakeRes
	N    int
}

type holder struct {
	Jobs  []job
	ByKey map[string]*fakeRes
	Plain fakeRes // a value-typed resource field
	Any   any
	Conn  net.Listener
	Skip  *fakeRes // nil
}

func newFake(t *testing.T, note string) *fakeRes {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return &fakeRes{id: NewID(), f: w, note: note}
}

// transfer simulates the transport: the receiver gets duplicates of the
// outgoing descriptors (as SCM_RIGHTS would give it).
func transfer(t *testing.T, out *Outgoing) *Files {
	t.Helper()
	in := &Files{}
	for _, s := range out.Res {
		var e []*os.File
		for _, f := range s.Files {
			d, err := dupFile(f, "received")
			if err != nil {
				t.Fatal(err)
			}
			e = append(e, d)
		}
		in.Entries = append(in.Entries, e)
	}
	out.Close()
	t.Cleanup(in.Close)
	return in
}

func TestResourceCodecRoundTrip(t *testing.T) {
	gob.Register(map[string]int{})
	a, b := newFake(t, "a"), newFake(t, "b")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	v := holder{
		Jobs:  []job{{Name: "x", Q: a, N: 1}, {Name: "y", Q: a, N: 2}, {Name: "z", Q: b, N: 3}},
		ByKey: map[string]*fakeRes{"b": b},
		Plain: *newFake(t, "plain"),
		Any:   pw,
		Conn:  ln,
	}
	c := For[holder]()
	rc, ok := c.(ResourceValue[holder])
	if !ok {
		t.Fatalf("For[holder] is %s, not the resource codec", c.Name())
	}
	var out Outgoing
	enc, err := rc.AppendOut(nil, v, &out)
	if err != nil {
		t.Fatal(err)
	}
	// a and b appear several times but travel once each; plus the plain
	// field, the pipe and the listener.
	if len(out.Res) != 5 {
		t.Fatalf("%d resources in the table, want 5 (one per distinct resource)", len(out.Res))
	}
	in := transfer(t, &out)
	got, err := rc.DecodeIn(enc, in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Jobs[0].Q != got.Jobs[1].Q || got.Jobs[0].Q == got.Jobs[2].Q {
		t.Fatal("one resource should arrive as one object, two as two")
	}
	if got.Jobs[2].Q != got.ByKey["b"] {
		t.Fatal("the same resource in a slice and a map arrived as two objects")
	}
	if got.Jobs[1].Name != "y" || got.Jobs[2].N != 3 || got.Jobs[0].Q.note != "a" || got.Plain.note != "plain" {
		t.Fatalf("fields lost: %+v", got)
	}
	if got.Skip != nil {
		t.Fatal("a nil resource arrived non-nil")
	}
	f, ok := got.Any.(*os.File)
	if !ok {
		t.Fatalf("interface holding *os.File arrived as %T", got.Any)
	}
	defer f.Close()
	if _, err := f.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(pr, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("the received file is not the pipe: %q %v", buf, err)
	}
	if f.Name() != pw.Name() {
		t.Fatalf("received file named %q, want %q", f.Name(), pw.Name())
	}
	gl, ok := got.Conn.(*net.TCPListener)
	if !ok {
		t.Fatalf("listener arrived as %T", got.Conn)
	}
	defer gl.Close()
	if gl.Addr().String() != ln.Addr().String() {
		t.Fatalf("listener on %v, want %v", gl.Addr(), ln.Addr())
	}
	for _, r := range []*fakeRes{got.Jobs[0].Q, got.Jobs[2].Q, &got.Plain} {
		r.f.Close()
	}
}

func TestResourceCodecKept(t *testing.T) {
	a := newFake(t, "a")
	rc := For[*fakeRes]().(ResourceValue[*fakeRes])
	keep := &keeper{}
	for i := range 3 {
		var out Outgoing
		enc, err := rc.AppendOut(nil, a, &out)
		if err != nil {
			t.Fatal(err)
		}
		keep.files = transfer(t, &out)
		got, err := rc.DecodeIn(enc, keep)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && got != keep.obj {
			t.Fatal("a kept resource was imported again")
		}
	}
	keep.obj.(*fakeRes).f.Close()
}

// keeper keeps the first import, as a pool worker's cache does.
type keeper struct {
	files *Files
	obj   any
}

func (k *keeper) Resource(i int) (any, []*os.File, error) {
	if k.obj != nil {
		return k.obj, nil, nil
	}
	return k.files.Resource(i)
}

func (k *keeper) Keep(_ int, obj any) { k.obj = obj }

func TestResourceCodecNoTransport(t *testing.T) {
	type deep struct{ Jobs []job }
	v := deep{Jobs: make([]job, 4)}
	v.Jobs[3].Q = newFake(t, "q")
	_, err := For[deep]().Append(nil, v)
	var re *ResourceError
	if !errors.As(err, &re) || !errors.Is(err, ErrNoTransport) {
		t.Fatalf("got %v, want a *ResourceError matching ErrNoTransport", err)
	}
	if !strings.Contains(re.Path, "Jobs[3].Q") {
		t.Fatalf("path %q does not locate the resource", re.Path)
	}
	// A value without resources goes through the plain methods.
	v.Jobs[3].Q = nil
	enc, err := For[deep]().Append(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := For[deep]().Decode(enc); err != nil || len(got.Jobs) != 4 {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestResourceCodecInterfaces(t *testing.T) {
	type box struct{ V any }
	type rec struct {
		A int
		B string
	}
	gob.Register(rec{})
	c := For[box]()
	for _, v := range []any{nil, 42, "s", rec{A: 7, B: "j"}} {
		enc, err := c.Append(nil, box{V: v})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Decode(enc)
		if err != nil || got.V != v {
			t.Fatalf("%v arrived as %v (%v)", v, got.V, err)
		}
	}
	type unregistered struct{ X int }
	_, err := c.Append(nil, box{V: unregistered{1}})
	var ie *InterfaceError
	if !errors.As(err, &ie) || !strings.Contains(ie.Error(), "box.V") {
		t.Fatalf("got %v, want an *InterfaceError naming box.V", err)
	}
	// A project resource in an interface position is refused by name.
	_, err = c.(ResourceValue[box]).AppendOut(nil, box{V: newFake(t, "x")}, &Outgoing{})
	var re *ResourceError
	if !errors.As(err, &re) || !errors.Is(err, ErrNoTransport) || !strings.Contains(err.Error(), "interface-typed position") {
		t.Fatalf("got %v", err)
	}
}

func TestResourceCodecSlice(t *testing.T) {
	a := newFake(t, "a")
	rc := For[job]().(ResourceValue[job])
	items := []job{{Name: "1", Q: a}, {Name: "2"}, {Name: "3", Q: a}}
	var out Outgoing
	enc, err := rc.AppendSliceOut(nil, items, &out)
	if err != nil || len(out.Res) != 1 {
		t.Fatalf("%v, %d resources", err, len(out.Res))
	}
	got, err := rc.DecodeSliceIn(nil, enc, transfer(t, &out))
	if err != nil || len(got) != 3 || got[0].Q != got[2].Q || got[1].Q != nil || got[2].Name != "3" {
		t.Fatalf("%+v %v", got, err)
	}
	got[0].Q.f.Close()
}

func FuzzResourceCodec(f *testing.F) {
	rc := For[holder]().(ResourceValue[holder])
	enc, _ := rc.Append(nil, holder{Jobs: []job{{Name: "a", N: 1}}, ByKey: map[string]*fakeRes{"k": nil}, Any: 3})
	f.Add(enc)
	f.Add([]byte{1, 2, 3})
	flat := For[job]().(ResourceValue[job]) // the flat path
	enc, _ = flat.Append(nil, job{Name: "x", N: 2})
	f.Add(enc)
	f.Fuzz(func(t *testing.T, b []byte) {
		// No descriptors arrive: every reference must fail cleanly.
		rc.DecodeIn(b, &Files{})
		rc.DecodeSliceIn(nil, b, &Files{})
		flat.DecodeIn(b, &Files{})
		flat.DecodeSliceIn(nil, b, &Files{})
	})
}
