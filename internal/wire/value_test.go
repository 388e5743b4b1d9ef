package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc/internal/wire"
)

type point struct {
	X, Y float64
	Tag  [4]byte
	ok   bool // unexported: the raw codec copies it too
}

type record struct {
	Name  string
	Tags  []string
	Attrs map[string]int
	Next  *record
}

type (
	label string
	blob  []byte
	empty struct{}
)

func TestCodecChoice(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"int", wire.For[int]().Name(), "raw"},
		{"float64", wire.For[float64]().Name(), "raw"},
		{"bool", wire.For[bool]().Name(), "raw"},
		{"complex128", wire.For[complex128]().Name(), "raw"},
		{"pointer-free struct", wire.For[point]().Name(), "raw"},
		{"array", wire.For[[3]int32]().Name(), "raw"},
		{"struct{}", wire.For[struct{}]().Name(), "raw"},
		{"string", wire.For[string]().Name(), "string"},
		{"named string", wire.For[label]().Name(), "string"},
		{"[]byte", wire.For[[]byte]().Name(), "bytes"},
		{"named []byte", wire.For[blob]().Name(), "bytes"},
		{"struct with strings", wire.For[record]().Name(), "gob"},
		{"[]int", wire.For[[]int]().Name(), "gob"},
		{"map", wire.For[map[string]int]().Name(), "gob"},
		{"pointer", wire.For[*int]().Name(), "gob"},
		{"array of strings", wire.For[[2]string]().Name(), "gob"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("For[%s]().Name() = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// roundTrip checks that v survives Append+Decode, and that vs survives
// AppendSlice+DecodeSlice, both appended after existing bytes and values.
func roundTrip[T any](t *testing.T, name string, v T, vs []T) {
	t.Helper()
	c := wire.For[T]()
	enc, err := c.Append([]byte("keep"), v)
	if err != nil {
		t.Fatalf("%s: Append: %v", name, err)
	}
	if !bytes.HasPrefix(enc, []byte("keep")) {
		t.Fatalf("%s: Append clobbered the buffer's existing bytes", name)
	}
	got, err := c.Decode(enc[len("keep"):])
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Errorf("%s: Decode(Append(%v)) = %v, %v", name, v, got, err)
	}
	enc, err = c.AppendSlice(nil, vs)
	if err != nil {
		t.Fatalf("%s: AppendSlice: %v", name, err)
	}
	var first T
	out, err := c.DecodeSlice([]T{first}, enc)
	if err != nil {
		t.Fatalf("%s: DecodeSlice: %v", name, err)
	}
	if len(out) != len(vs)+1 {
		t.Fatalf("%s: DecodeSlice appended %d values, want %d", name, len(out)-1, len(vs))
	}
	for i := range vs {
		if !reflect.DeepEqual(out[i+1], vs[i]) {
			t.Errorf("%s: value %d = %v, want %v", name, i, out[i+1], vs[i])
		}
	}
}

func TestRoundTrips(t *testing.T) {
	big := int64(3) << 40 // 0 on 32 bits
	roundTrip(t, "int", -42, []int{1, -2, int(big)})
	roundTrip(t, "int empty slice", 0, []int{})
	roundTrip(t, "int nil slice", 7, nil)
	roundTrip(t, "uint8", uint8(255), []uint8{0, 1, 255})
	roundTrip(t, "float64", 3.14, []float64{0, -1.5})
	roundTrip(t, "bool", true, []bool{true, false, true})
	roundTrip(t, "complex64", complex64(1+2i), []complex64{3i})
	roundTrip(t, "point", point{1, 2, [4]byte{'a'}, true}, []point{{X: 1}, {Y: -1, ok: true}})
	roundTrip(t, "struct{}", struct{}{}, []struct{}{{}, {}, {}})
	roundTrip(t, "named struct{}", empty{}, []empty{})
	roundTrip(t, "[0]int", [0]int{}, [][0]int{{}, {}})
	roundTrip(t, "array", [3]int32{1, 2, 3}, [][3]int32{{4, 5, 6}})
	roundTrip(t, "string", "héllo", []string{"", "a", strings.Repeat("z", 1000)})
	roundTrip(t, "empty string", "", []string{})
	roundTrip(t, "named string", label("x"), []label{"y", ""})
	roundTrip(t, "bytes", []byte{0, 1, 2}, [][]byte{{}, {9}, bytes.Repeat([]byte{7}, 300)})
	roundTrip(t, "named bytes", blob("b"), []blob{blob("c")})
	roundTrip(t, "record", record{Name: "r", Tags: []string{"a"}, Attrs: map[string]int{"k": 1}, Next: &record{Name: "n"}},
		[]record{{Name: "one"}, {Name: "two", Tags: []string{"t"}}})
	roundTrip(t, "record empty slice", record{}, []record{})
	roundTrip(t, "map", map[string]int{"a": 1}, []map[string]int{{"b": 2}})
	roundTrip(t, "[]int", []int{1, 2}, [][]int{{3}, {4, 5}})
}

func TestBytesDecodeCopies(t *testing.T) {
	c := wire.For[[]byte]()
	src := []byte("original")
	got, _ := c.Decode(src)
	src[0] = 'X'
	if string(got) != "original" {
		t.Errorf("decoded bytes alias the input: %q", got)
	}
}

// TestGobFreshValues guards against gob's habit of leaving fields that are
// zero on the wire untouched: a decoded value never inherits old data.
func TestGobFreshValues(t *testing.T) {
	c := wire.For[record]()
	enc, _ := c.AppendSlice(nil, []record{{Name: ""}})
	out, err := c.DecodeSlice([]record{{Name: "stale"}}, enc)
	if err != nil || len(out) != 2 || out[1].Name != "" {
		t.Errorf("DecodeSlice = %+v, %v; want the new value's empty Name", out, err)
	}
}

type withChan struct{ C chan int }

type withFunc struct {
	F func()
}

type withIface struct{ V any }

func TestUnencodable(t *testing.T) {
	check := func(name, typ string, err error) {
		t.Helper()
		var ee *wire.EncodeError
		if !errors.As(err, &ee) || ee.Type != typ || !strings.Contains(err.Error(), typ) {
			t.Errorf("%s: %v, want an *EncodeError naming %s", name, err, typ)
		}
	}
	_, err := wire.For[withChan]().Append([]byte("keep"), withChan{C: make(chan int)})
	check("struct with only a chan", "wire_test.withChan", err)
	_, err = wire.For[withFunc]().AppendSlice(nil, []withFunc{{}})
	check("slice of struct with only a func", "wire_test.withFunc", err)
	_, err = wire.For[func()]().Append(nil, func() {})
	check("func", "func()", err)
	_, err = wire.For[chan int]().Append(nil, nil)
	check("chan", "chan int", err)
	_, err = wire.For[withIface]().Append(nil, withIface{V: struct{ A int }{1}})
	check("interface holding an unregistered type", "wire_test.withIface", err)

	dst, err := wire.For[func()]().Append([]byte("keep"), func() {})
	if err == nil || string(dst) != "keep" {
		t.Errorf("failed Append returned %q, want the buffer unchanged", dst)
	}
}

func TestCorruptInputs(t *testing.T) {
	uvarint := func(n uint64) []byte { return binary.AppendUvarint(nil, n) }
	gobInt, _ := wire.For[[]int]().Append(nil, []int{1, 2})
	gobRecord, _ := wire.For[record]().Append(nil, record{Name: "x"})
	tests := []struct {
		name string
		err  func() error
	}{
		{"raw short", func() error { _, err := wire.For[int64]().Decode([]byte{1, 2, 3}); return err }},
		{"raw long", func() error { _, err := wire.For[int32]().Decode(make([]byte, 5)); return err }},
		{"raw zero-size with bytes", func() error { _, err := wire.For[struct{}]().Decode([]byte{1}); return err }},
		{"raw slice empty input", func() error { _, err := wire.For[int]().DecodeSlice(nil, nil); return err }},
		{"raw slice bad varint", func() error { _, err := wire.For[int]().DecodeSlice(nil, []byte{0xff}); return err }},
		{"raw slice count too big", func() error {
			_, err := wire.For[int]().DecodeSlice(nil, append(uvarint(1<<62), make([]byte, 16)...))
			return err
		}},
		{"raw slice count overflows", func() error {
			// n*8 wraps around to 8 in 64 bits.
			_, err := wire.For[int]().DecodeSlice(nil, append(uvarint(1<<61+1), make([]byte, 8)...))
			return err
		}},
		{"raw slice ragged", func() error {
			_, err := wire.For[int32]().DecodeSlice(nil, append(uvarint(2), make([]byte, 7)...))
			return err
		}},
		{"zero-size slice huge count", func() error { _, err := wire.For[struct{}]().DecodeSlice(nil, uvarint(1<<40)); return err }},
		{"zero-size slice trailing", func() error { _, err := wire.For[struct{}]().DecodeSlice(nil, append(uvarint(1), 0)); return err }},
		{"string slice count too big", func() error { _, err := wire.For[string]().DecodeSlice(nil, uvarint(1<<40)); return err }},
		{"string slice truncated", func() error { _, err := wire.For[string]().DecodeSlice(nil, append(uvarint(1), 5, 'a')); return err }},
		{"string slice trailing", func() error {
			_, err := wire.For[string]().DecodeSlice(nil, append(uvarint(1), 1, 'a', 'b'))
			return err
		}},
		{"string slice empty", func() error { _, err := wire.For[string]().DecodeSlice(nil, nil); return err }},
		{"bytes slice count too big", func() error { _, err := wire.For[[]byte]().DecodeSlice(nil, uvarint(1<<40)); return err }},
		{"bytes slice truncated", func() error { _, err := wire.For[[]byte]().DecodeSlice(nil, append(uvarint(2), 1, 'a')); return err }},
		{"bytes slice trailing", func() error { _, err := wire.For[[]byte]().DecodeSlice(nil, append(uvarint(0), 9)); return err }},
		{"gob garbage", func() error { _, err := wire.For[record]().Decode([]byte("not gob at all")); return err }},
		{"gob empty", func() error { _, err := wire.For[record]().Decode(nil); return err }},
		{"gob truncated", func() error { _, err := wire.For[record]().Decode(gobRecord[:len(gobRecord)-1]); return err }},
		{"gob trailing", func() error { _, err := wire.For[record]().Decode(append(bytes.Clone(gobRecord), 0)); return err }},
		{"gob wrong type", func() error { _, err := wire.For[record]().Decode(gobInt); return err }},
		{"gob slice garbage", func() error { _, err := wire.For[record]().DecodeSlice(nil, []byte{0xff, 0xff, 0xff}); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic: %v", r)
					}
				}()
				err = tt.err()
			}()
			if err == nil {
				t.Fatal("decoded without an error")
			}
			var de *wire.DecodeError
			if !errors.Is(err, wire.ErrCorrupt) && !errors.As(err, &de) {
				t.Errorf("error %v is neither ErrCorrupt nor a *DecodeError", err)
			}
		})
	}
}

// TestNilPointerRoundTrip: a nil pointer as the whole value arrives nil (gob
// alone encodes it to bytes its decoder rejects with EOF); a pointer chain
// ending in nil arrives nil too, and a non-nil pointer keeps its value.
func TestNilPointerRoundTrip(t *testing.T) {
	type rec struct{ A int }
	checkNil[*int](t)
	checkNil[*rec](t)
	checkNil[**int](t)
	var inner *int
	if got := oneTrip(t, &inner); got != nil {
		t.Errorf("**int to a nil *int arrived as %v, want nil", got)
	}
	x := 7
	if got := oneTrip(t, &x); got == nil || *got != 7 {
		t.Errorf("*int 7 arrived as %v", got)
	}
}

func checkNil[T any](t *testing.T) {
	t.Helper()
	var zero T
	got := oneTrip(t, zero)
	if !reflect.ValueOf(&got).Elem().IsNil() {
		t.Errorf("nil %T arrived as %v", zero, got)
	}
}

func oneTrip[T any](t *testing.T, v T) T {
	t.Helper()
	c := wire.For[T]()
	b, err := c.Append(nil, v)
	if err != nil {
		t.Fatalf("%T: Append: %v", v, err)
	}
	got, err := c.Decode(b)
	if err != nil {
		t.Fatalf("%T (codec %s): Decode: %v", v, c.Name(), err)
	}
	return got
}
