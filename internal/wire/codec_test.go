package wire_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// TestFrameStream sends values through a persistent stream: every value is
// one frame, the type description crosses once (later frames of the same
// type are smaller), and a Reader plus a FrameReader on the other end get
// them back in order.
func TestFrameStream(t *testing.T) {
	if wire.Gob.Name() != "gob" {
		t.Errorf("Gob.Name() = %q", wire.Gob.Name())
	}
	fw := wire.NewFrameWriter(wire.Gob, 'v')
	values := []record{
		{Name: "first", Tags: []string{"a", "b"}},
		{Name: "second", Attrs: map[string]int{"n": 2}},
		{},
		{Name: "fourth", Next: &record{Name: "inner"}},
	}
	var stream []byte
	var sizes []int
	for _, v := range values {
		n := len(stream)
		var err error
		stream, err = fw.AppendEncoded(stream, v)
		if err != nil {
			t.Fatalf("AppendEncoded(%+v): %v", v, err)
		}
		sizes = append(sizes, len(stream)-n)
	}
	// A different type in the same stream.
	stream, err := fw.AppendEncoded(stream, 12345)
	if err != nil {
		t.Fatal(err)
	}
	if sizes[1] >= sizes[0] {
		t.Errorf("second frame %d bytes, first %d: the type description was sent twice", sizes[1], sizes[0])
	}

	r := wire.NewReader(iotest.OneByteReader(bytes.NewReader(stream)), 0)
	fr := wire.NewFrameReader(wire.Gob)
	for i, want := range values {
		kind, payload, err := r.Next()
		if err != nil || kind != 'v' {
			t.Fatalf("frame %d: kind %q, %v", i, kind, err)
		}
		var got record
		if err := fr.DecodeFrame(payload, &got); err != nil {
			t.Fatalf("frame %d: DecodeFrame: %v", i, err)
		}
		if got.Name != want.Name || len(got.Tags) != len(want.Tags) || len(got.Attrs) != len(want.Attrs) || (want.Next != nil) != (got.Next != nil) {
			t.Errorf("frame %d = %+v, want %+v", i, got, want)
		}
	}
	_, payload, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := fr.DecodeFrame(payload, &n); err != nil || n != 12345 {
		t.Errorf("int frame = %d, %v", n, err)
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

// TestFrameStreamEncodeError checks that an unencodable value fails in
// AppendEncoded, naming its type, leaves the buffer alone, and that the
// stream keeps working.
func TestFrameStreamEncodeError(t *testing.T) {
	fw := wire.NewFrameWriter(wire.Gob, 'v')
	fr := wire.NewFrameReader(wire.Gob)
	buf, err := fw.AppendEncoded([]byte("keep"), withChan{C: make(chan int)})
	var ee *wire.EncodeError
	if !errors.As(err, &ee) || ee.Type != "wire_test.withChan" {
		t.Errorf("AppendEncoded(withChan) = %v, want an *EncodeError naming wire_test.withChan", err)
	}
	if string(buf) != "keep" {
		t.Errorf("failed AppendEncoded returned %q, want the buffer unchanged", buf)
	}
	buf, err = fw.AppendEncoded(nil, record{Name: "after"})
	if err != nil {
		t.Fatalf("stream broken after an encoding error: %v", err)
	}
	_, payload, _, _ := wire.ParseFrame(buf, 0)
	var got record
	if err := fr.DecodeFrame(payload, &got); err != nil || got.Name != "after" {
		t.Errorf("DecodeFrame after an encoding error = %+v, %v", got, err)
	}
}

func TestFrameReaderCorrupt(t *testing.T) {
	fw := wire.NewFrameWriter(wire.Gob, 'v')
	frame, _ := fw.AppendEncoded(nil, record{Name: "x"})
	_, payload, _, _ := wire.ParseFrame(frame, 0)
	tests := []struct {
		name    string
		payload []byte
	}{
		{"trailing byte", append(bytes.Clone(payload), 0)},
		{"truncated", payload[:len(payload)-1]},
		{"empty", nil},
		{"garbage", []byte("\xff\xfe\xfd garbage")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got record
			err := wire.NewFrameReader(wire.Gob).DecodeFrame(tt.payload, &got)
			if err == nil {
				t.Fatalf("DecodeFrame of a %s payload succeeded: %+v", tt.name, got)
			}
		})
	}
}

// FuzzFrameStream feeds arbitrary payloads to a persistent decoder: errors
// are fine, panics are not.
func FuzzFrameStream(f *testing.F) {
	fw := wire.NewFrameWriter(wire.Gob, 'v')
	frame, _ := fw.AppendEncoded(nil, record{Name: "seed", Tags: []string{"t"}})
	_, payload, _, _ := wire.ParseFrame(frame, 0)
	f.Add(payload)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r record
		wire.NewFrameReader(wire.Gob).DecodeFrame(b, &r)
	})
}
