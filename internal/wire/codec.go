package wire

import (
	"encoding/gob"
	"fmt"
	"io"
)

// Codec makes persistent encoder/decoder streams: one stream per direction of
// a connection, so type descriptions cross the connection once. Streams suit
// a connection with one writer and one reader (a manager connection, a queue
// feeder); values that may go to any of several peers use [Value] instead.
type Codec interface {
	// Name identifies the codec in handshakes, so both ends agree.
	Name() string
	NewEncoder(w io.Writer) Encoder
	NewDecoder(r io.Reader) Decoder
}

// Encoder writes values to a stream.
type Encoder interface{ Encode(v any) error }

// Decoder reads values from a stream. Decode must be given a pointer to a
// fresh value.
type Decoder interface{ Decode(v any) error }

// Gob is the default [Codec]: encoding/gob streams.
var Gob Codec = gobStreams{}

type gobStreams struct{}

func (gobStreams) Name() string { return "gob" }

func (gobStreams) NewEncoder(w io.Writer) Encoder { return gobEncoder{gob.NewEncoder(w)} }

func (gobStreams) NewDecoder(r io.Reader) Decoder { return gobDecoder{gob.NewDecoder(r)} }

type gobEncoder struct{ e *gob.Encoder }

func (g gobEncoder) Encode(v any) error {
	if err := g.e.Encode(v); err != nil {
		return &EncodeError{Type: fmt.Sprintf("%T", v), Err: err}
	}
	return nil
}

type gobDecoder struct{ d *gob.Decoder }

func (g gobDecoder) Decode(v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: gob panicked: %v", ErrCorrupt, r)
		}
	}()
	if err := g.d.Decode(v); err != nil {
		if err == io.EOF {
			return err
		}
		return &DecodeError{Type: fmt.Sprintf("%T", v), Err: err}
	}
	return nil
}

// FrameWriter adapts a stream codec to frames: every Encode becomes exactly
// one frame of the given kind, appended to a buffer the caller flushes.
type FrameWriter struct {
	kind byte
	buf  appendWriter
	enc  Encoder
}

// NewFrameWriter returns a FrameWriter whose frames have the given kind.
func NewFrameWriter(c Codec, kind byte) *FrameWriter {
	fw := &FrameWriter{kind: kind}
	fw.enc = c.NewEncoder(&fw.buf)
	return fw
}

// AppendEncoded encodes v as one frame appended to dst. On error dst is
// returned unchanged. The stream stays usable after an encoding error only if
// the codec guarantees it (gob does for type errors found before writing).
func (fw *FrameWriter) AppendEncoded(dst []byte, v any) ([]byte, error) {
	fw.buf.b = fw.buf.b[:0]
	if err := fw.enc.Encode(v); err != nil {
		return dst, err
	}
	return AppendFrame(dst, fw.kind, fw.buf.b), nil
}

// FrameReader feeds frame payloads to a persistent stream decoder.
type FrameReader struct {
	cur []byte
	dec Decoder
}

// NewFrameReader returns a FrameReader decoding with c.
func NewFrameReader(c Codec) *FrameReader {
	fr := &FrameReader{}
	fr.dec = c.NewDecoder(fr)
	return fr
}

// Read implements io.Reader over the current payload only.
func (fr *FrameReader) Read(p []byte) (int, error) {
	if len(fr.cur) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, fr.cur)
	fr.cur = fr.cur[n:]
	return n, nil
}

// ReadByte implements io.ByteReader, which stops gob from buffering ahead
// past the frame.
func (fr *FrameReader) ReadByte() (byte, error) {
	if len(fr.cur) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	b := fr.cur[0]
	fr.cur = fr.cur[1:]
	return b, nil
}

// DecodeFrame decodes the value carried by one frame payload into v. The
// whole payload must be consumed.
func (fr *FrameReader) DecodeFrame(payload []byte, v any) error {
	fr.cur = payload
	if err := fr.dec.Decode(v); err != nil {
		return err
	}
	if len(fr.cur) != 0 {
		return fmt.Errorf("%w: %d bytes left in frame after value", ErrCorrupt, len(fr.cur))
	}
	return nil
}
