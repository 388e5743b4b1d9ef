package shm_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/multiproc-go/multiproc/internal/wire"
	"github.com/multiproc-go/multiproc/shm"
)

// The resource tests run the codec of a value holding segments through a
// fake transport: the receiver gets duplicates of the outgoing descriptors,
// as SCM_RIGHTS or ExtraFiles would give a child. The real transports are
// tested in process_resource_test.go.

// transfer duplicates out's descriptors into a table the decoder takes
// them from, and closes out, as a transport does once it has sent them.
func transfer(t *testing.T, out *wire.Outgoing) *wire.Files {
	t.Helper()
	in := &wire.Files{}
	for _, s := range out.Res {
		var e []*os.File
		for _, f := range s.Files {
			e = append(e, dupFile(t, f))
		}
		in.Entries = append(in.Entries, e)
	}
	out.Close()
	t.Cleanup(in.Close)
	return in
}

// pass encodes v as type A and decodes the bytes as type B through the fake
// transport: a receiver whose position has type B.
func pass[A, B any](t *testing.T, v A) (B, error) {
	t.Helper()
	enc, ok := wire.For[A]().(wire.ResourceValue[A])
	if !ok {
		t.Fatalf("wire.For[%T] is the %s codec, want the resource codec", v, wire.For[A]().Name())
	}
	dec := wire.For[B]().(wire.ResourceValue[B])
	var out wire.Outgoing
	b, err := enc.AppendOut(nil, v, &out)
	if err != nil {
		t.Fatalf("encoding %T: %v", v, err)
	}
	return dec.DecodeIn(b, transfer(t, &out))
}

func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	got, err := pass[T, T](t, v)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// must returns v, or panics with err: for setup calls that cannot fail on
// a working machine (a panic fails the test binary with the error).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func closeAll(t *testing.T, cs ...interface{ Close() error }) {
	t.Helper()
	for _, c := range cs {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
}

func idOf(t *testing.T, r wire.Exporter) uint64 {
	t.Helper()
	var x wire.Exported
	if err := r.ExportResource(&x); err != nil {
		t.Fatal(err)
	}
	if len(x.Files) != 1 || x.Owned {
		t.Fatalf("ExportResource gave %d files, owned %v; want the object's own descriptor", len(x.Files), x.Owned)
	}
	return x.ID
}

// job holds segments at depth, as a task argument would.
type job struct {
	Name  string
	Hits  *shm.Value[int64]
	Rows  *shm.Array[int32]
	Other []*shm.Array[int32]
}

type batch struct {
	Mem  *shm.SharedMemory
	Num  *shm.Value[float64]
	Jobs []job
	By   map[string]*shm.Value[int64]
	None *shm.Value[int64] // nil
}

// TestResourceRoundTrip: segments anywhere in a value arrive as mappings
// of the same memory, each distinct object once, and writes on either side
// are seen on the other.
func TestResourceRoundTrip(t *testing.T) {
	mem := must(shm.Create(4096))
	num := must(shm.NewValue(0.0))
	hits := must(shm.NewValue[int64](0))
	rows := must(shm.ArrayOf([]int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}))
	defer closeAll(t, mem, num, hits, rows)
	copy(mem.Buf(), "hello")

	v := batch{
		Mem:  mem,
		Num:  num,
		Jobs: []job{{Name: "a", Hits: hits, Rows: rows}, {Name: "b", Hits: hits, Other: []*shm.Array[int32]{rows}}},
		By:   map[string]*shm.Value[int64]{"hits": hits},
	}
	var out wire.Outgoing
	rc := wire.For[batch]().(wire.ResourceValue[batch])
	b, err := rc.AppendOut(nil, v, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Res) != 4 || out.Files() != 4 {
		t.Fatalf("%d resources with %d descriptors, want 4 and 4: one per distinct object", len(out.Res), out.Files())
	}
	got, err := rc.DecodeIn(b, transfer(t, &out))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(t, got.Mem, got.Num, got.Jobs[0].Hits, got.Jobs[0].Rows)

	if got.Jobs[0].Hits != got.Jobs[1].Hits || got.Jobs[0].Hits != got.By["hits"] || got.Jobs[0].Rows != got.Jobs[1].Other[0] {
		t.Fatal("one object passed several times arrived as several objects")
	}
	if got.None != nil || got.Jobs[1].Rows != nil {
		t.Fatal("a nil segment arrived non-nil")
	}
	if s := string(got.Mem.Buf()[:5]); s != "hello" || got.Mem.Size() != 4096 || got.Mem.Name() != "" {
		t.Fatalf("SharedMemory arrived as %q, %d bytes, name %q; want hello, 4096, anonymous", s, got.Mem.Size(), got.Mem.Name())
	}
	got.Num.Store(3.1415927)
	shm.Add(got.Jobs[0].Hits, 7)
	for i, x := range got.Jobs[0].Rows.Slice() {
		got.Jobs[0].Rows.Slice()[i] = -x
	}
	copy(got.Mem.Buf(), "HE")
	if num.Load() != 3.1415927 || hits.Load() != 7 || !slices.Equal(rows.Slice(), []int32{0, -1, -2, -3, -4, -5, -6, -7, -8, -9}) ||
		string(mem.Buf()[:5]) != "HEllo" {
		t.Fatalf("sender sees %v, %v, %v, %q: the receiver's writes did not reach it", num.Load(), hits.Load(), rows.Slice(), mem.Buf()[:5])
	}
}

// TestResourceIDs: every object has an ID of its own from creation; a
// received object gets a new one in the receiving process (IDs are unique
// per process only), and its Close releases that one, not the sender's.
func TestResourceIDs(t *testing.T) {
	v := must(shm.NewValue[int64](1))
	a := must(shm.NewArray[byte](8))
	m := must(shm.Create(64))
	defer closeAll(t, v, a, m)
	ids := []uint64{idOf(t, v), idOf(t, a), idOf(t, m)}
	if slices.Contains(ids, 0) || ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2] {
		t.Fatalf("IDs %v, want three distinct non-zero IDs", ids)
	}
	if again := idOf(t, v); again != ids[0] {
		t.Fatalf("second export has ID %d, want the object's ID %d", again, ids[0])
	}
	got := roundTrip(t, v)
	gid := idOf(t, got)
	if gid == 0 || gid == ids[0] {
		t.Fatalf("received Value has ID %d, sender's is %d: want a new non-zero ID", gid, ids[0])
	}

	released := recordReleases(t)
	if err := got.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v.Close() // idempotent: no second release
	if r := released(); !slices.Equal(r, []uint64{gid, ids[0]}) {
		t.Fatalf("released %v, want [%d %d]: each Close releases its own object's ID, once", r, gid, ids[0])
	}
}

// recordReleases returns the IDs released from now on, in order.
func recordReleases(t *testing.T) func() []uint64 {
	var mu sync.Mutex
	var ids []uint64
	stop := wire.OnRelease(func(id uint64) {
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
	})
	t.Cleanup(stop)
	return func() []uint64 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ids)
	}
}

// TestResourceReleaseOnClose: each type's Close releases its ID, once.
func TestResourceReleaseOnClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func() (wire.Exporter, error)
	}{
		{"SharedMemory", func() (wire.Exporter, error) { return shm.Create(64) }},
		{"named SharedMemory", func() (wire.Exporter, error) { return shm.Create(64, shm.Name(testName(t))) }},
		{"Value", func() (wire.Exporter, error) { return shm.NewValue(int32(1)) }},
		{"Array", func() (wire.Exporter, error) { return shm.NewArray[float64](3) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := must(tc.make())
			id := idOf(t, r)
			released := recordReleases(t)
			c := r.(interface{ Close() error })
			closeAll(t, c, c)
			if got := released(); !slices.Equal(got, []uint64{id}) {
				t.Fatalf("released %v, want [%d]", got, id)
			}
		})
	}
}

// TestResourceNamedByDescriptor: a named segment travels by descriptor
// like an anonymous one; the receiver knows its name, may Unlink it, and
// its Close never unlinks (it is not the creator).
func TestResourceNamedByDescriptor(t *testing.T) {
	name := testName(t)
	m := must(shm.Create(4096, shm.Name(name)))
	defer m.Close()
	var x wire.Exported
	if err := m.ExportResource(&x); err != nil || len(x.Files) != 1 {
		t.Fatalf("ExportResource: %d files, %v; want the segment's descriptor", len(x.Files), err)
	}
	got := roundTrip(t, m)
	if got.Name() != name || got.Size() != 4096 {
		t.Fatalf("received %q of %d bytes, want %q of 4096", got.Name(), got.Size(), name)
	}
	copy(got.Buf(), "named")
	if err := got.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(segmentPath(name)); err != nil {
		t.Fatalf("the receiver's Close removed the creator's name: %v", err)
	}
	if s := string(m.Buf()[:5]); s != "named" {
		t.Fatalf("creator reads %q, want the receiver's write", s)
	}
	// The descriptor, not the name, is what the receiver maps: it works
	// with the name gone, and the receiver may unlink it too.
	if err := m.Unlink(); err != nil {
		t.Fatal(err)
	}
	again := roundTrip(t, m)
	defer again.Close()
	if s := string(again.Buf()[:5]); s != "named" {
		t.Fatalf("received after Unlink: %q, want named", s)
	}
}

// TestResourceMismatch: a received segment that does not hold what the
// receiving position expects fails with ErrMismatch and maps nothing.
func TestResourceMismatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) error
		want string
	}{
		{"Value of another type", func(t *testing.T) error {
			return passMismatch[*shm.Value[int64], *shm.Value[float64]](t, must(shm.NewValue[int64](1)))
		}, "received Value[int64] where Value[float64] is expected"},
		{"Value of another type of the same size", func(t *testing.T) error {
			return passMismatch[*shm.Value[int32], *shm.Value[float32]](t, must(shm.NewValue[int32](1)))
		}, "Value[float32] is expected"},
		{"Array where a Value is expected", func(t *testing.T) error {
			return passMismatch[*shm.Array[int32], *shm.Value[int32]](t, must(shm.NewArray[int32](4)))
		}, "received an Array where a Value[int32] is expected"},
		{"Array of another type", func(t *testing.T) error {
			return passMismatch[*shm.Array[int32], *shm.Array[uint32]](t, must(shm.NewArray[int32](4)))
		}, "received Array[int32] where Array[uint32] is expected"},
		{"SharedMemory where a Value is expected", func(t *testing.T) error {
			return passMismatch[*shm.SharedMemory, *shm.Value[int64]](t, must(shm.Create(4096)))
		}, "received a SharedMemory where a Value[int64] is expected"},
		{"Value where a SharedMemory is expected", func(t *testing.T) error {
			return passMismatch[*shm.Value[int64], *shm.SharedMemory](t, must(shm.NewValue[int64](1)))
		}, "received a Value where a SharedMemory is expected"},
		// The header is the authority: a state that claims the right type
		// does not get another type's memory mapped.
		{"header of another type", func(t *testing.T) error {
			return forged(t, must(shm.NewValue[int64](1)), must(shm.NewValue[float64](1)))
		}, "another element type"},
		{"raw memory announced as a Value", func(t *testing.T) error {
			return forged(t, must(shm.Create(4096)), must(shm.NewValue[float64](1)))
		}, "not a Value or Array segment"},
		{"Array announced with another length", func(t *testing.T) error {
			a := must(shm.NewArray[float64](4))
			b := must(shm.NewArray[float64](5))
			defer b.Close()
			var w shm.Array[float64]
			return importForged(t, a, b, &w)
		}, "of 5 elements arrived with a header of 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(t)
			if !errors.Is(err, shm.ErrMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error matching ErrMismatch containing %q", err, tc.want)
			}
		})
	}
}

// passMismatch passes sent (closed afterwards) to a position of type B and
// returns the decoding error, which must be a *wire.ResourceError.
func passMismatch[A interface {
	wire.Exporter
	Close() error
}, B any](t *testing.T, sent A) error {
	t.Helper()
	defer sent.Close()
	got, err := pass[A, B](t, sent)
	if err == nil {
		t.Fatalf("%T arrived as %T %v without an error", sent, got, got)
	}
	var re *wire.ResourceError
	if !errors.As(err, &re) {
		t.Fatalf("got %T %v, want a *wire.ResourceError", err, err)
	}
	return err
}

// forged imports from's descriptor into a Value[float64] with the state
// of like, which is a genuine Value[float64]: only the header can tell.
func forged(t *testing.T, from wire.Exporter, like *shm.Value[float64]) error {
	t.Helper()
	defer like.Close()
	var w shm.Value[float64]
	return importForged(t, from, like, &w)
}

func importForged(t *testing.T, from, like wire.Exporter, into wire.Importer) error {
	t.Helper()
	defer from.(interface{ Close() error }).Close()
	var fx, lx wire.Exported
	if err := from.ExportResource(&fx); err != nil {
		t.Fatal(err)
	}
	if err := like.ExportResource(&lx); err != nil {
		t.Fatal(err)
	}
	err := into.ImportResource(lx.State, []*os.File{dupFile(t, fx.Files[0])})
	if err == nil {
		into.(interface{ Close() error }).Close()
		t.Fatal("a forged state was accepted")
	}
	return err
}

// TestResourceClosed: a closed or zero object cannot travel; the error
// names where it was and matches ErrClosed.
func TestResourceClosed(t *testing.T) {
	closedValue := must(shm.NewValue(1.0))
	closedArray := must(shm.NewArray[int32](2))
	closedMem := must(shm.Create(64))
	closeAll(t, closedValue, closedArray, closedMem)
	for _, tc := range []struct {
		name string
		r    wire.Exporter
		enc  func() error
	}{
		{"closed Value", closedValue, func() error { return encodeErr(job{}, nil, closedValue) }},
		{"zero Value", &shm.Value[float64]{}, func() error { return encodeErr(job{}, nil, &shm.Value[float64]{}) }},
		{"closed Array", closedArray, func() error { return encodeErr(job{Other: []*shm.Array[int32]{nil, closedArray}}, nil, nil) }},
		{"zero Array", &shm.Array[int32]{}, func() error { return encodeErr(job{Rows: &shm.Array[int32]{}}, nil, nil) }},
		{"closed SharedMemory", closedMem, func() error { return encodeErr(job{}, closedMem, nil) }},
		{"zero SharedMemory", &shm.SharedMemory{}, func() error { return encodeErr(job{}, &shm.SharedMemory{}, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.r.NeedsDescriptors() {
				t.Error("NeedsDescriptors = true, want false: there is nothing to pass")
			}
			var x wire.Exported
			if err := tc.r.ExportResource(&x); !errors.Is(err, shm.ErrClosed) {
				t.Errorf("ExportResource = %v, want an error matching ErrClosed", err)
			}
			err := tc.enc()
			var re *wire.ResourceError
			if !errors.As(err, &re) || !errors.Is(err, shm.ErrClosed) {
				t.Fatalf("encoding = %v, want a *wire.ResourceError matching ErrClosed", err)
			}
			if !strings.Contains(re.Path, "arg.") {
				t.Errorf("path %q does not locate the object", re.Path)
			}
		})
	}
}

type arg struct {
	Mem *shm.SharedMemory
	Num *shm.Value[float64]
	Job job
}

func encodeErr(j job, m *shm.SharedMemory, v *shm.Value[float64]) error {
	var out wire.Outgoing
	defer out.Close()
	_, err := wire.For[arg]().(wire.ResourceValue[arg]).AppendOut(nil, arg{Mem: m, Num: v, Job: j}, &out)
	if err == nil {
		return errors.New("encoding succeeded")
	}
	return err
}

// TestResourceNoTransport: a channel that cannot carry descriptors (the
// plain codec methods; a cluster backend) refuses an open segment.
func TestResourceNoTransport(t *testing.T) {
	v := must(shm.NewValue[int64](1))
	defer v.Close()
	_, err := wire.For[job]().Append(nil, job{Hits: v})
	if !errors.Is(err, wire.ErrNoTransport) {
		t.Fatalf("got %v, want ErrNoTransport", err)
	}
}

// keeper is an Incoming that keeps the first import, as a pool worker's
// cache does for an ID it has seen.
type keeper struct {
	files   *wire.Files
	kept    any
	imports int
}

func (k *keeper) Resource(i int) (any, []*os.File, error) {
	if k.kept != nil {
		return k.kept, nil, nil
	}
	return k.files.Resource(i)
}

func (k *keeper) Keep(_ int, obj any) { k.kept = obj; k.imports++ }

// TestResourceKept: a receiver that keeps resources maps an object once and
// hands the same mapping to every later value that carries it.
func TestResourceKept(t *testing.T) {
	a := must(shm.NewArray[int64](1000))
	defer a.Close()
	k := &keeper{}
	var first *shm.Array[int64]
	for i := range 5 {
		var out wire.Outgoing
		type big struct{ A *shm.Array[int64] }
		bc := wire.For[big]().(wire.ResourceValue[big])
		b, err := bc.AppendOut(nil, big{A: a}, &out)
		if err != nil {
			t.Fatal(err)
		}
		k.files = transfer(t, &out)
		got, err := bc.DecodeIn(b, k)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = got.A
		} else if got.A != first {
			t.Fatalf("task %d got a new mapping; want the kept one", i)
		}
		got.A.Slice()[i] = int64(i + 1)
	}
	if k.imports != 1 {
		t.Fatalf("%d imports, want 1", k.imports)
	}
	if !slices.Equal(a.Slice()[:5], []int64{1, 2, 3, 4, 5}) {
		t.Fatalf("sender sees %v", a.Slice()[:5])
	}
	first.Close()
}

// FuzzImportState: the state of a received segment comes from another
// process; no state makes ImportResource panic or map what it should not.
func FuzzImportState(f *testing.F) {
	v, err := shm.NewValue[int64](42)
	if err != nil {
		f.Fatal(err)
	}
	defer v.Close()
	var x wire.Exported
	if err := v.ExportResource(&x); err != nil {
		f.Fatal(err)
	}
	f.Add(x.State)
	f.Add([]byte{2})
	f.Add([]byte{1, 0x80})
	f.Add([]byte{3, 1, 'i', 'n', 't', '6', '4'})
	f.Fuzz(func(t *testing.T, state []byte) {
		var w shm.Value[int64]
		if err := w.ImportResource(state, []*os.File{dupFile(t, x.Files[0])}); err == nil {
			if w.Load() != 42 {
				t.Fatalf("imported a Value reading %d, want 42", w.Load())
			}
			w.Close()
		}
		var m shm.SharedMemory
		if err := m.ImportResource(state, []*os.File{dupFile(t, x.Files[0])}); err == nil {
			m.Close()
		}
		var a shm.Array[byte]
		if err := a.ImportResource(state, []*os.File{dupFile(t, x.Files[0])}); err == nil {
			t.Fatal("a Value's segment was imported as an Array")
		}
	})
}
