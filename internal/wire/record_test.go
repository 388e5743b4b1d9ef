package wire_test

import (
	"bytes"
	"encoding/gob"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// item is CPython's (i, 'hello', 3.14).
type item struct {
	I int
	S string
	F float64
}

type inner struct {
	B   []byte
	Tag string
}

// mixed has padding between fixed fields, unexported fields, a nested
// record, an array of strings and a pointer-free struct.
type mixed struct {
	small int8
	Big   int64
	On    bool
	In    inner
	Names [2]string
	Pt    struct{ X, Y float32 }
	tail  uint16
}

func TestRecordChosen(t *testing.T) {
	for _, tc := range []struct {
		name, got, want string
	}{
		{"item", wire.For[item]().Name(), "record"},
		{"mixed", wire.For[mixed]().Name(), "record"},
		{"struct with an array of strings", wire.For[struct{ A [3]string }]().Name(), "record"},
		{"array of strings", wire.For[[3]string]().Name(), "gob"}, // records are structs
		{"huge array of strings", wire.For[struct{ A [2000]string }]().Name(), "gob"},
		{"nothing but an empty array of strings", wire.For[struct{ A [0]string }]().Name(), "gob"},
		{"an empty array of strings and an int", wire.For[struct {
			A [0]string
			N int
		}]().Name(), "record"},
		{"pointer-free struct", wire.For[struct{ A, B int }]().Name(), "raw"},
		{"struct with a pointer", wire.For[struct {
			S string
			P *int
		}]().Name(), "gob"},
		{"struct with a slice of strings", wire.For[struct{ S []string }]().Name(), "gob"},
		{"struct with a map", wire.For[struct {
			S string
			M map[string]int
		}]().Name(), "gob"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: codec %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	t.Run("item", func(t *testing.T) {
		recordRoundTrip(t, []item{{1, "hello", 3.14}, {}, {math.MinInt / 2, "ünïcode and a longer string than one byte of length can announce, " + string(bytes.Repeat([]byte("x"), 200)), -0.5}})
	})
	t.Run("mixed", func(t *testing.T) {
		recordRoundTrip(t, []mixed{
			{small: -3, Big: 1 << 40, On: true, In: inner{B: []byte{1, 2, 3}, Tag: "t"}, Names: [2]string{"a", ""}, Pt: struct{ X, Y float32 }{1, 2}, tail: 9},
			{In: inner{B: []byte{}}}, // empty, not nil: must stay empty
			{},                       // nil: must stay nil
		})
	})
}

func recordRoundTrip[T any](t *testing.T, vs []T) {
	t.Helper()
	c := wire.For[T]()
	for i, v := range vs {
		b, err := c.Append([]byte("prefix"), v)
		if err != nil {
			t.Fatal(err)
		}
		// Size is what a queue's Put reserves before it appends in place.
		if n := c.(interface{ Size(T) int }).Size(v); n != len(b)-len("prefix") {
			t.Fatalf("value %d: Size %d, want the %d bytes Append wrote", i, n, len(b)-len("prefix"))
		}
		got, err := c.Decode(b[len("prefix"):])
		if err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Fatalf("value %d: got %+v, want %+v", i, got, v)
		}
	}
	b, err := c.AppendSlice(nil, vs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.DecodeSlice([]T{vs[0]}, b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[1:], vs) || !reflect.DeepEqual(got[0], vs[0]) {
		t.Fatalf("slice: got %+v, want %+v after the first", got, vs)
	}
}

// TestRecordBytesDoNotAlias guards the shared allocation behind decoded
// strings and byte slices: appending to one decoded slice must not write
// into the next one's bytes.
func TestRecordBytesDoNotAlias(t *testing.T) {
	c := wire.For[inner]()
	b, _ := c.AppendSlice(nil, []inner{{B: []byte("ab"), Tag: "cd"}, {B: []byte("ef")}})
	vs, err := c.DecodeSlice(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(vs[0].B, 'X', 'Y', 'Z')
	if vs[0].Tag != "cd" || string(vs[1].B) != "ef" {
		t.Fatalf("append to a decoded slice changed its neighbours: %q %q", vs[0].Tag, vs[1].B)
	}
}

func TestRecordCorrupt(t *testing.T) {
	c := wire.For[item]()
	good, _ := c.Append(nil, item{1, "hello", 2})
	goodSlice, _ := c.AppendSlice(nil, []item{{1, "a", 2}})
	for _, tc := range []struct {
		name  string
		slice bool
		b     []byte
	}{
		{"empty", false, nil},
		{"cut in a fixed field", false, good[:4]},
		{"cut in a string", false, good[:len(good)-10]},
		{"trailing byte", false, append(append([]byte{}, good...), 0)},
		{"string longer than the input", false, append(good[:8:8], 0xff, 0x7f)},
		{"bad varint", false, append(good[:8:8], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
		{"slice: no count", true, nil},
		{"slice: hostile count", true, []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3}},
		{"slice: fewer records than counted", true, append([]byte{2}, goodSlice[1:]...)},
		{"slice: trailing byte", true, append(append([]byte{}, goodSlice...), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.slice {
				_, err = c.DecodeSlice(nil, tc.b)
			} else {
				_, err = c.Decode(tc.b)
			}
			var de *wire.DecodeError
			if !errors.Is(err, wire.ErrCorrupt) || !errors.As(err, &de) || de.Type != "wire_test.item" {
				t.Fatalf("got %v, want a *DecodeError for wire_test.item wrapping ErrCorrupt", err)
			}
		})
	}
}

// BenchmarkSmallRecord is the codec_small_record row: one
// struct{I int; S string; F float64} encoded and decoded, by the record
// codec that For picks and by self-contained gob, which For picked before.
//
//	go test -run='^$' -bench=SmallRecord -benchmem ./internal/wire/
func BenchmarkSmallRecord(b *testing.B) {
	v := item{42, "hello", 3.14}
	b.Run("record", func(b *testing.B) {
		c := wire.For[item]()
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = c.Append(buf[:0], v)
			if _, err := c.Decode(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gob", func(b *testing.B) {
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := gob.NewEncoder(&buf).Encode(&v); err != nil {
				b.Fatal(err)
			}
			var got item
			if err := gob.NewDecoder(&buf).Decode(&got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("record_slice_1000", func(b *testing.B) {
		c := wire.For[item]()
		vs := make([]item, 1000)
		for i := range vs {
			vs[i] = item{i, "hello", float64(i)}
		}
		var buf []byte
		var out []item
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = c.AppendSlice(buf[:0], vs)
			var err error
			if out, err = c.DecodeSlice(out[:0], buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzRecord feeds arbitrary bytes to the record decoders. Whatever decodes
// must encode again, and that encoding must decode to values that encode
// the same way (bytes are compared, since floats may be NaN). Run it with a
// short minimisation time: minimising a large new input by the default 60 s
// stalls a 20 s run on a loaded machine (execs stop counting meanwhile):
//
//	go test -run='^$' -fuzz=FuzzRecord -fuzztime=20s -fuzzminimizetime=1s ./internal/wire/
func FuzzRecord(f *testing.F) {
	seed := func(which byte, b []byte, err error) {
		if err != nil {
			f.Fatal(err)
		}
		f.Add(which, b)
	}
	b, err := wire.For[item]().Append(nil, item{1, "hello", 3.14})
	seed(0, b, err)
	b, err = wire.For[item]().AppendSlice(nil, []item{{1, "a", 2}, {3, "", 4}})
	seed(1, b, err)
	b, err = wire.For[mixed]().Append(nil, mixed{Big: 7, In: inner{B: []byte{}}, Names: [2]string{"x", "y"}})
	seed(2, b, err)
	b, err = wire.For[mixed]().AppendSlice(nil, []mixed{{}, {In: inner{B: []byte("z")}}})
	seed(3, b, err)
	f.Fuzz(func(t *testing.T, which byte, data []byte) {
		switch which % 4 {
		case 0:
			checkRecord[item](t, data, false)
		case 1:
			checkRecord[item](t, data, true)
		case 2:
			checkRecord[mixed](t, data, false)
		case 3:
			checkRecord[mixed](t, data, true)
		}
	})
}

func checkRecord[T any](t *testing.T, data []byte, slice bool) {
	c := wire.For[T]()
	enc := func(vs []T) []byte {
		var b []byte
		var err error
		if slice {
			b, err = c.AppendSlice(nil, vs)
		} else {
			b, err = c.Append(nil, vs[0])
		}
		if err != nil {
			t.Fatalf("decoded values do not encode: %v", err)
		}
		return b
	}
	dec := func(b []byte) ([]T, error) {
		if slice {
			return c.DecodeSlice(nil, b)
		}
		v, err := c.Decode(b)
		return []T{v}, err
	}
	vs, err := dec(data)
	if err != nil {
		return
	}
	once := enc(vs)
	again, err := dec(once)
	if err != nil {
		t.Fatalf("re-encoded values do not decode: %v", err)
	}
	if twice := enc(again); !bytes.Equal(once, twice) {
		t.Fatalf("encoding changed in a round trip:\n%x\n%x", once, twice)
	}
}
