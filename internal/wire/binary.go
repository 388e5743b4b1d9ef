package wire

import (
	"encoding/binary"
	"fmt"
)

// AppendString appends s as a uvarint length followed by its bytes.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// AppendBytes appends b as a uvarint length followed by its bytes.
func AppendBytes(dst []byte, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// Buf reads the primitive encodings of this package from a byte slice.
// The first error sticks: later reads return zero values, and Err reports it.
// It never panics and never allocates more than the input's length, whatever
// the bytes say.
type Buf struct {
	b   []byte
	err error
}

// NewBuf returns a Buf over b.
func NewBuf(b []byte) *Buf { return &Buf{b: b} }

// Err returns the first error met, wrapping ErrCorrupt.
func (d *Buf) Err() error { return d.err }

// Rest returns the bytes not yet read.
func (d *Buf) Rest() []byte { return d.b }

func (d *Buf) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or invalid %s", ErrCorrupt, what)
	}
	d.b = nil
}

// Uvarint reads an unsigned varint.
func (d *Buf) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Varint reads a signed varint.
func (d *Buf) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Byte reads one byte.
func (d *Buf) Byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// Uint64 reads a fixed 8-byte little-endian integer.
func (d *Buf) Uint64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail("uint64")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// Bytes reads a length-prefixed byte string. The result aliases the input.
func (d *Buf) Bytes() []byte {
	n := d.Uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length-prefixed bytes")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// String reads a length-prefixed string (copied).
func (d *Buf) String() string { return string(d.Bytes()) }
