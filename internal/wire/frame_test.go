package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/internal/wire"
)

func TestMain(m *testing.M) { testutil.Run(m) }

type frame struct {
	kind    byte
	payload []byte
}

// sampleFrames are frames of every size class the Reader treats
// differently: empty, small, larger than its initial 64 KiB buffer, and
// larger than the 1 MiB above which it gives a grown buffer back.
func sampleFrames() []frame {
	big := bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16)
	huge := bytes.Repeat([]byte{0xa5}, 1<<20+17)
	return []frame{
		{'a', nil},
		{'b', []byte("hello")},
		{0x20, big},
		{0xff, []byte{0}},
		{'h', huge},
		{'c', []byte("after the huge one")},
		{0, nil},
	}
}

func encodeFrames(fs []frame) []byte {
	var b []byte
	for _, f := range fs {
		b = wire.AppendFrame(b, f.kind, f.payload)
	}
	return b
}

func TestAppendParseFrame(t *testing.T) {
	for _, f := range sampleFrames() {
		b := wire.AppendFrame([]byte("prefix"), f.kind, f.payload)
		kind, payload, n, err := wire.ParseFrame(b[len("prefix"):], 0)
		if err != nil || n != wire.HeaderSize+len(f.payload) || kind != f.kind || !bytes.Equal(payload, f.payload) {
			t.Errorf("ParseFrame(AppendFrame(%q, %d bytes)) = %q, %d bytes, n %d, %v", f.kind, len(f.payload), kind, len(payload), n, err)
		}
		if cap(payload) != len(payload) {
			t.Errorf("payload capacity %d > length %d: appending to it would overwrite the next frame", cap(payload), len(payload))
		}
	}
}

func TestBeginEndFrame(t *testing.T) {
	b, off := wire.BeginFrame([]byte("xy"), 'k')
	b = append(b, "payload"...)
	if err := wire.EndFrame(b, off, 0); err != nil {
		t.Fatal(err)
	}
	if want := wire.AppendFrame([]byte("xy"), 'k', []byte("payload")); !bytes.Equal(b, want) {
		t.Errorf("BeginFrame+EndFrame = %q, want %q", b, want)
	}
	if err := wire.EndFrame(b, off, 6); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Errorf("EndFrame over the limit = %v, want ErrFrameTooLarge", err)
	}
	if err := wire.EndFrame(b, len(b), 0); !errors.Is(err, wire.ErrCorrupt) {
		t.Errorf("EndFrame with an offset past the buffer = %v, want ErrCorrupt", err)
	}
}

func TestParseFramePartial(t *testing.T) {
	b := wire.AppendFrame(nil, 'p', []byte("partial"))
	for i := range len(b) {
		kind, payload, n, err := wire.ParseFrame(b[:i], 0)
		if n != 0 || err != nil || kind != 0 || payload != nil {
			t.Errorf("ParseFrame of %d of %d bytes = %q, %q, %d, %v; want nothing yet", i, len(b), kind, payload, n, err)
		}
	}
}

func TestParseFrameLimit(t *testing.T) {
	b := wire.AppendFrame(nil, 'p', make([]byte, 101))
	// The header alone is enough to refuse: no need to wait for 101 bytes.
	if _, _, _, err := wire.ParseFrame(b[:wire.HeaderSize], 100); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Errorf("ParseFrame of a header announcing 101 bytes, limit 100: %v, want ErrFrameTooLarge", err)
	}
	if _, _, n, err := wire.ParseFrame(b, 101); err != nil || n != len(b) {
		t.Errorf("ParseFrame at exactly the limit = %d, %v", n, err)
	}
	huge := []byte{0xff, 0xff, 0xff, 0xff, 'x'}
	if _, _, _, err := wire.ParseFrame(huge, 0); err != nil {
		t.Errorf("ParseFrame with no limit and a 4 GiB header = %v, want a partial frame", err)
	}
}

// readAll reads frames until an error and returns them (payloads copied)
// with that error.
func readAll(r *wire.Reader) ([]frame, error) {
	var got []frame
	for {
		kind, payload, err := r.Next()
		if err != nil {
			return got, err
		}
		got = append(got, frame{kind, bytes.Clone(payload)})
	}
}

func sameFrames(t *testing.T, got, want []frame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].kind != want[i].kind || !bytes.Equal(got[i].payload, want[i].payload) {
			t.Errorf("frame %d: kind %q, %d bytes; want %q, %d bytes", i, got[i].kind, len(got[i].payload), want[i].kind, len(want[i].payload))
		}
	}
}

func TestReaderPartialReads(t *testing.T) {
	want := sampleFrames()
	data := encodeFrames(want)
	readers := map[string]func(io.Reader) io.Reader{
		"whole":        func(r io.Reader) io.Reader { return r },
		"one byte":     iotest.OneByteReader,
		"half":         iotest.HalfReader,
		"data and EOF": iotest.DataErrReader,
	}
	for name, wrap := range readers {
		t.Run(name, func(t *testing.T) {
			got, err := readAll(wire.NewReader(wrap(bytes.NewReader(data)), 0))
			if err != io.EOF {
				t.Errorf("end of stream: %v, want io.EOF", err)
			}
			sameFrames(t, got, want)
		})
	}
}

// TestReaderPayloadStable checks that a payload stays intact until the next
// call to Next, even when the Reader refills its buffer for that call.
func TestReaderPayloadStable(t *testing.T) {
	data := encodeFrames([]frame{{'a', []byte("first")}, {'b', bytes.Repeat([]byte("x"), 200<<10)}})
	r := wire.NewReader(iotest.HalfReader(bytes.NewReader(data)), 0)
	_, p, err := r.Next()
	if err != nil || string(p) != "first" {
		t.Fatalf("Next = %q, %v", p, err)
	}
	if r.Buffered() < 0 || r.Buffered() > len(data) {
		t.Errorf("Buffered() = %d", r.Buffered())
	}
	if string(p) != "first" {
		t.Errorf("payload changed to %q before the next call", p)
	}
}

// TestReaderBufferedFrame guards Buffered and BufferedFrame against
// counting the frame Next returned last, which stays in the buffer until the
// next call: a caller deciding whether Next would block must not be told a
// frame is waiting when none is.
func TestReaderBufferedFrame(t *testing.T) {
	data := encodeFrames([]frame{{'a', []byte("one")}, {'b', []byte("two")}})
	r := wire.NewReader(bytes.NewReader(data), 0)
	if r.BufferedFrame() {
		t.Errorf("BufferedFrame before any read = true")
	}
	if _, _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if !r.BufferedFrame() || r.Buffered() != len(data)-wire.HeaderSize-3 {
		t.Errorf("after the first frame: BufferedFrame %v, Buffered %d; want true, %d", r.BufferedFrame(), r.Buffered(), len(data)-wire.HeaderSize-3)
	}
	if _, _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.BufferedFrame() {
		t.Errorf("BufferedFrame with nothing left = true")
	}
}

func TestReaderLimit(t *testing.T) {
	data := encodeFrames([]frame{{'a', make([]byte, 100)}, {'b', make([]byte, 101)}})
	got, err := readAll(wire.NewReader(iotest.OneByteReader(bytes.NewReader(data)), 100))
	if !errors.Is(err, wire.ErrFrameTooLarge) || len(got) != 1 {
		t.Errorf("frames of 100 and 101 bytes with limit 100: %d frames then %v; want 1 then ErrFrameTooLarge", len(got), err)
	}
	// The default limit applies when none is given.
	hostile := []byte{0xff, 0xff, 0xff, 0x7f, 'x'}
	if _, _, err := wire.NewReader(bytes.NewReader(hostile), 0).Next(); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Errorf("2 GiB header with the default limit: %v, want ErrFrameTooLarge", err)
	}
}

func TestReaderTruncated(t *testing.T) {
	data := encodeFrames([]frame{{'a', []byte("complete")}, {'b', []byte("cut short")}})
	second := len(data) - wire.HeaderSize - len("cut short")
	for _, cut := range []int{second + 1, second + wire.HeaderSize - 1, second + wire.HeaderSize, len(data) - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			got, err := readAll(wire.NewReader(iotest.HalfReader(bytes.NewReader(data[:cut])), 0))
			if err != io.ErrUnexpectedEOF || len(got) != 1 {
				t.Errorf("stream cut at %d of %d: %d frames then %v; want 1 then io.ErrUnexpectedEOF", cut, len(data), len(got), err)
			}
		})
	}
	if _, _, err := wire.NewReader(bytes.NewReader(nil), 0).Next(); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}

func TestReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	data := encodeFrames([]frame{{'a', []byte("ok")}})
	r := wire.NewReader(io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)), 0)
	got, err := readAll(r)
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Errorf("%d frames then %v; want 1 then the reader's error", len(got), err)
	}
	if _, _, err := wire.NewReader(stuckReader{}, 0).Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("reader returning 0, nil: %v, want io.ErrNoProgress", err)
	}
}

// stuckReader returns no data and no error, which io.Reader discourages.
type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

func TestBuf(t *testing.T) {
	var b []byte
	b = wire.AppendString(b, "name")
	b = wire.AppendBytes(b, []byte{1, 2})
	b = append(b, 7)
	b = append(b, 1, 0, 0, 0, 0, 0, 0, 0)
	d := wire.NewBuf(b)
	if s, p, c, u := d.String(), d.Bytes(), d.Byte(), d.Uint64(); s != "name" || !bytes.Equal(p, []byte{1, 2}) || c != 7 || u != 1 || d.Err() != nil || len(d.Rest()) != 0 {
		t.Errorf("Buf read %q %v %d %d, err %v, rest %d", s, p, c, u, d.Err(), len(d.Rest()))
	}
	for name, read := range map[string]func(*wire.Buf){
		"Byte":    func(d *wire.Buf) { d.Byte() },
		"Uint64":  func(d *wire.Buf) { d.Uint64() },
		"Uvarint": func(d *wire.Buf) { d.Uvarint() },
		"Varint":  func(d *wire.Buf) { d.Varint() },
		"Bytes":   func(d *wire.Buf) { d.Bytes() },
	} {
		d := wire.NewBuf(nil)
		read(d)
		if !errors.Is(d.Err(), wire.ErrCorrupt) {
			t.Errorf("%s on empty input: %v, want ErrCorrupt", name, d.Err())
		}
		// The first error sticks, and later reads return zero values.
		if d.Byte() != 0 || d.String() != "" || !errors.Is(d.Err(), wire.ErrCorrupt) {
			t.Errorf("%s: reads after an error are not zero", name)
		}
	}
	// A length prefix larger than what follows must not allocate or panic.
	d = wire.NewBuf([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 'x'})
	if v := d.Bytes(); v != nil || !errors.Is(d.Err(), wire.ErrCorrupt) {
		t.Errorf("Bytes with a 4 GiB length over 1 byte = %v, %v", v, d.Err())
	}
}
