package wire_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// The fuzz tests below cover every decoder that reads bytes from another
// process. Seed corpora live in testdata/fuzz/<FuzzName>/ next to the
// seeds added here; run one with
//
//	go test -run='^$' -fuzz=FuzzReader -fuzztime=20s ./internal/wire/

func FuzzParseFrame(f *testing.F) {
	f.Add(wire.AppendFrame(nil, 'k', []byte("payload")), 100)
	f.Add(wire.AppendFrame(wire.AppendFrame(nil, 1, nil), 2, []byte{3}), 0)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 'x'}, 0)
	f.Add([]byte{1, 0, 0}, 5)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		kind, payload, n, err := wire.ParseFrame(b, max)
		switch {
		case err != nil:
			if !errors.Is(err, wire.ErrFrameTooLarge) || max <= 0 || n != 0 {
				t.Fatalf("ParseFrame = n %d, %v with limit %d", n, err, max)
			}
		case n == 0:
			if payload != nil || kind != 0 {
				t.Fatalf("partial frame returned a payload")
			}
		default:
			if n != wire.HeaderSize+len(payload) || n > len(b) || kind != b[4] || !bytes.Equal(payload, b[wire.HeaderSize:n]) {
				t.Fatalf("ParseFrame = kind %q, %d-byte payload, n %d over %d bytes", kind, len(payload), n, len(b))
			}
			if max > 0 && len(payload) > max {
				t.Fatalf("%d-byte payload accepted with limit %d", len(payload), max)
			}
			if re := wire.AppendFrame(nil, kind, payload); !bytes.Equal(re, b[:n]) {
				t.Fatalf("AppendFrame(ParseFrame(b)) differs from b")
			}
		}
	})
}

// chunkReader returns at most size bytes per Read, to exercise every way
// a frame can be split across reads.
type chunkReader struct {
	data []byte
	size int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.size)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// FuzzReader checks the streaming Reader against ParseFrame applied to the
// whole input at once: the same frames, then the same kind of end.
func FuzzReader(f *testing.F) {
	f.Add(encodeFrames([]frame{{'a', []byte("one")}, {'b', nil}, {'c', bytes.Repeat([]byte("z"), 300)}}), uint16(1))
	f.Add(encodeFrames([]frame{{'a', []byte("cut")}})[:6], uint16(7))
	f.Add([]byte{0xff, 0xff, 0, 0, 'x'}, uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		const max = 1 << 12
		var want []frame
		var wantErr error
		for rest := data; ; {
			kind, payload, n, err := wire.ParseFrame(rest, max)
			if err != nil {
				wantErr = wire.ErrFrameTooLarge
				break
			}
			if n == 0 {
				wantErr = io.EOF
				if len(rest) > 0 {
					wantErr = io.ErrUnexpectedEOF
				}
				break
			}
			want = append(want, frame{kind, payload})
			rest = rest[n:]
		}
		got, err := readAll(wire.NewReader(&chunkReader{data, int(chunk) + 1}, max))
		if !errors.Is(err, wantErr) {
			t.Fatalf("Reader ended with %v, want %v", err, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("Reader returned %d frames, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].kind != want[i].kind || !bytes.Equal(got[i].payload, want[i].payload) {
				t.Fatalf("frame %d differs", i)
			}
		}
	})
}

// FuzzDecodeSlice feeds arbitrary bytes to the slice decoders of each
// codec. Whatever decodes must encode again and decode to the same values
// (for gob, only encode again: gob does not keep empty-versus-nil).
func FuzzDecodeSlice(f *testing.F) {
	seed := func(which byte, b []byte, err error) {
		if err != nil {
			f.Fatal(err)
		}
		f.Add(which, b)
	}
	b, err := wire.For[int32]().AppendSlice(nil, []int32{1, -1, 1 << 30})
	seed(0, b, err)
	b, err = wire.For[struct{}]().AppendSlice(nil, make([]struct{}, 3))
	seed(1, b, err)
	b, err = wire.For[[3]uint16]().AppendSlice(nil, [][3]uint16{{1, 2, 3}})
	seed(2, b, err)
	b, err = wire.For[string]().AppendSlice(nil, []string{"", "ab", "ünï"})
	seed(3, b, err)
	b, err = wire.For[[]byte]().AppendSlice(nil, [][]byte{nil, {1}, {2, 3}})
	seed(4, b, err)
	b, err = wire.For[record]().AppendSlice(nil, []record{{Name: "r", Tags: []string{"t"}, Attrs: map[string]int{"a": 1}, Next: &record{}}})
	seed(5, b, err)
	f.Fuzz(func(t *testing.T, which byte, data []byte) {
		switch which % 6 {
		case 0:
			checkSlice[int32](t, data, true)
		case 1:
			// Zero-size values cost no bytes, so a short input can
			// announce a billion of them; comparing them one by one
			// would only measure the loop.
			checkSlice[struct{}](t, data, false)
		case 2:
			checkSlice[[3]uint16](t, data, true)
		case 3:
			checkSlice[string](t, data, true)
		case 4:
			checkSlice[[]byte](t, data, true)
		case 5:
			checkSlice[record](t, data, false)
		}
	})
}

func checkSlice[T any](t *testing.T, data []byte, exact bool) {
	c := wire.For[T]()
	vs, err := c.DecodeSlice(nil, data)
	if err != nil {
		return
	}
	enc, err := c.AppendSlice(nil, vs)
	if err != nil {
		t.Fatalf("%s: decoded values do not encode again: %v", c.Name(), err)
	}
	again, err := c.DecodeSlice(nil, enc)
	if err != nil {
		t.Fatalf("%s: re-encoded values do not decode: %v", c.Name(), err)
	}
	if len(again) != len(vs) {
		t.Fatalf("%s: %d values decode as %d after a round trip", c.Name(), len(vs), len(again))
	}
	if exact {
		for i := range vs {
			if !reflect.DeepEqual(normalize(vs[i]), normalize(again[i])) {
				t.Fatalf("%s: value %d changed in a round trip: %v, then %v", c.Name(), i, vs[i], again[i])
			}
		}
	}
}

// normalize maps empty byte slices to nil, which the bytes codec does not
// distinguish.
func normalize(v any) any {
	if b, ok := v.([]byte); ok && len(b) == 0 {
		return []byte(nil)
	}
	return v
}
