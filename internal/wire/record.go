package wire

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"reflect"
	"slices"
	"unsafe"
)

// Records: the direct encoding of small structs such as CPython's
// (i, 'hello', 3.14) items, whose fields are fixed-size (numbers, bools,
// arrays and structs of them), strings or byte slices, or structs and arrays
// of such fields at any depth. Self-contained gob costs 16-18 µs for such an
// item on the project's machine, because every value carries its own type
// description; a record costs what copying its bytes costs.
//
// [For] picks this codec for a struct type that is not pointer-free but
// whose only pointers are strings and byte slices; the raw
// path keeps pointer-free types, gob keeps everything else. The plan (the
// type's fields flattened into a list of operations at fixed offsets) is
// made once, in For; encoding and decoding then walk the plan with unsafe
// offsets, without reflection.
//
// A record is its operations' encodings, in field order, with nothing
// between them:
//
//   - a run of adjacent fixed-size fields: their memory, padding between
//     them included, as the raw path copies it (sound because both ends run
//     the same binary);
//   - a string: a uvarint length and the bytes;
//   - a byte slice: a uvarint of length+1 and the bytes, 0 meaning nil, so
//     nil and empty slices stay apart.
//
// A slice of records is a uvarint count followed by the records. Decoding
// copies: the strings and byte slices of one Decode or DecodeSlice share one
// allocation (each byte slice has its capacity cut to its length, so an
// append never writes into a neighbour), which keeps a chunk of records at
// two allocations, at the price that one retained string keeps the others'
// bytes alive.

// maxRecordOps bounds the plan of a record type: a type that would flatten
// into more operations (a large array of strings) is left to gob.
const maxRecordOps = 1024

type recordOpKind uint8

const (
	opFixed recordOpKind = iota
	opString
	opBytes
)

type recordOp struct {
	kind recordOpKind
	off  uintptr // from the start of the value
	size uintptr // for opFixed
}

// recordPlan is the flattened layout of a record type.
type recordPlan struct {
	typ string
	ops []recordOp
	min int // the fewest bytes one record can encode to
}

// recordPlanFor returns the plan of t, or nil if t is not a record type:
// a struct that is not pointer-free, whose fields flatten into at
// most maxRecordOps operations, none of them a pointer other than a string
// or a byte slice.
func recordPlanFor(t reflect.Type) *recordPlan {
	if t.Kind() != reflect.Struct || pointerFree(t) {
		return nil
	}
	p := &recordPlan{typ: t.String()}
	if !p.add(t, 0) {
		return nil
	}
	for _, op := range p.ops {
		if op.kind == opFixed {
			p.min += int(op.size)
		} else {
			p.min++
		}
	}
	if p.min == 0 {
		// Only zero-length arrays of strings: nothing to encode, and a
		// slice count could not be bounded by the input's length.
		return nil
	}
	return p
}

func (p *recordPlan) add(t reflect.Type, off uintptr) bool {
	if len(p.ops) > maxRecordOps {
		return false
	}
	switch {
	case pointerFree(t):
		if t.Size() == 0 {
			return true
		}
		// Merge with a preceding run: the padding between the two is
		// copied along, one copy instead of two.
		if n := len(p.ops); n > 0 && p.ops[n-1].kind == opFixed {
			last := &p.ops[n-1]
			last.size = off + t.Size() - last.off
			return true
		}
		p.ops = append(p.ops, recordOp{kind: opFixed, off: off, size: t.Size()})
		return true
	case t.Kind() == reflect.String:
		p.ops = append(p.ops, recordOp{kind: opString, off: off})
		return true
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		p.ops = append(p.ops, recordOp{kind: opBytes, off: off})
		return true
	case t.Kind() == reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !p.add(f.Type, off+f.Offset) {
				return false
			}
		}
		return true
	case t.Kind() == reflect.Array:
		for i := range t.Len() {
			if !p.add(t.Elem(), off+uintptr(i)*t.Elem().Size()) {
				return false
			}
		}
		return true
	}
	return false
}

// isRecord reports whether [For] gives t the record codec.
func isRecord(t reflect.Type) bool { return recordPlanFor(t) != nil }

// recordFor returns the record codec of T, which must satisfy isRecord.
func recordFor[T any](t reflect.Type) Value[T] { return recordCodec[T]{recordPlanFor(t)} }

type recordCodec[T any] struct{ p *recordPlan }

func (recordCodec[T]) Name() string { return "record" }

func (c recordCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	return c.p.append(dst, unsafe.Pointer(&v)), nil
}

func (c recordCodec[T]) AppendSlice(dst []byte, vs []T) ([]byte, error) {
	dst = binary.AppendUvarint(dst, uint64(len(vs)))
	for i := range vs {
		dst = c.p.append(dst, unsafe.Pointer(&vs[i]))
	}
	return dst, nil
}

func (c recordCodec[T]) Decode(src []byte) (T, error) {
	var v T
	n, total, err := c.p.check(src)
	if err != nil {
		return v, c.p.corrupt(err)
	}
	if n != len(src) {
		return v, c.p.corrupt(fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(src)-n))
	}
	c.p.fill(unsafe.Pointer(&v), src, make([]byte, total))
	return v, nil
}

func (c recordCodec[T]) DecodeSlice(dst []T, src []byte) ([]T, error) {
	count, k := binary.Uvarint(src)
	if k <= 0 {
		return dst, c.p.corrupt(fmt.Errorf("%w: bad record count", ErrCorrupt))
	}
	body := src[k:]
	// Every record costs at least min bytes (min >= 1: a record type has
	// a string or a byte slice), so a hostile count cannot make this
	// allocate more than the input justifies.
	if count > uint64(len(body)/c.p.min) {
		return dst, c.p.corrupt(fmt.Errorf("%w: %d records in %d bytes", ErrCorrupt, count, len(body)))
	}
	total, pos := 0, 0
	for range count {
		n, t, err := c.p.check(body[pos:])
		if err != nil {
			return dst, c.p.corrupt(err)
		}
		pos += n
		total += t
	}
	if pos != len(body) {
		return dst, c.p.corrupt(fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(body)-pos))
	}
	start := len(dst)
	dst = slices.Grow(dst, int(count))[:start+int(count)]
	clear(dst[start:])
	buf := make([]byte, total)
	pos = 0
	for i := start; i < len(dst); i++ {
		n, used := c.p.fill(unsafe.Pointer(&dst[i]), body[pos:], buf)
		pos += n
		buf = buf[used:]
	}
	return dst, nil
}

func (p *recordPlan) corrupt(err error) error { return &DecodeError{Type: p.typ, Err: err} }

// append appends the encoding of the record at v.
func (p *recordPlan) append(dst []byte, v unsafe.Pointer) []byte {
	for i := range p.ops {
		op := &p.ops[i]
		f := unsafe.Add(v, op.off)
		switch op.kind {
		case opFixed:
			dst = append(dst, unsafe.Slice((*byte)(f), op.size)...)
		case opString:
			s := *(*string)(f)
			dst = binary.AppendUvarint(dst, uint64(len(s)))
			dst = append(dst, s...)
		case opBytes:
			b := *(*[]byte)(f)
			if b == nil {
				dst = append(dst, 0)
				continue
			}
			dst = binary.AppendUvarint(dst, uint64(len(b))+1)
			dst = append(dst, b...)
		}
	}
	return dst
}

// check validates the record at the start of src and returns its length and
// the number of string and byte-slice bytes it holds.
func (p *recordPlan) check(src []byte) (n, total int, err error) {
	for i := range p.ops {
		op := &p.ops[i]
		if op.kind == opFixed {
			if uintptr(len(src)-n) < op.size {
				return 0, 0, fmt.Errorf("%w: record cut short in a %d-byte field", ErrCorrupt, op.size)
			}
			n += int(op.size)
			continue
		}
		l, k := binary.Uvarint(src[n:])
		if k <= 0 {
			return 0, 0, fmt.Errorf("%w: bad length in a record", ErrCorrupt)
		}
		n += k
		if op.kind == opBytes {
			if l == 0 {
				continue // nil
			}
			l--
		}
		if l > uint64(len(src)-n) {
			return 0, 0, fmt.Errorf("%w: a record announces %d bytes, %d remain", ErrCorrupt, l, len(src)-n)
		}
		n += int(l)
		total += int(l)
	}
	return n, total, nil
}

// zeroLen backs empty, non-nil byte slices.
var zeroLen [0]byte

// fill decodes the record at the start of src, which check accepted, into
// v, copying its strings and byte slices into the front of buf. It returns
// the bytes of src read and of buf used.
func (p *recordPlan) fill(v unsafe.Pointer, src, buf []byte) (n, used int) {
	for i := range p.ops {
		op := &p.ops[i]
		f := unsafe.Add(v, op.off)
		if op.kind == opFixed {
			copy(unsafe.Slice((*byte)(f), op.size), src[n:])
			n += int(op.size)
			continue
		}
		l, k := binary.Uvarint(src[n:])
		n += k
		switch {
		case op.kind == opString:
			if l > 0 {
				b := buf[used : used+int(l)]
				copy(b, src[n:])
				*(*string)(f) = unsafe.String(&b[0], len(b))
			}
		case l == 0:
			*(*[]byte)(f) = nil
		case l == 1:
			*(*[]byte)(f) = zeroLen[:]
			l = 0
		default:
			l--
			b := buf[used : used+int(l) : used+int(l)]
			copy(b, src[n:])
			*(*[]byte)(f) = b
		}
		n += int(l)
		used += int(l)
	}
	return n, used
}

// Size returns the length of v's encoding by Append, without encoding it:
// a caller that must reserve the room first (a queue's Put, in shared
// memory) appends into exactly that room, with no scratch buffer.
func (c recordCodec[T]) Size(v T) int { return c.p.size(unsafe.Pointer(&v)) }

// size is the length of append's encoding of the record at v.
func (p *recordPlan) size(v unsafe.Pointer) int {
	n := 0
	for i := range p.ops {
		op := &p.ops[i]
		f := unsafe.Add(v, op.off)
		switch op.kind {
		case opFixed:
			n += int(op.size)
		case opString:
			l := uint64(len(*(*string)(f)))
			n += uvarintLen(l) + int(l)
		case opBytes:
			b := *(*[]byte)(f)
			if b == nil {
				n++
				continue
			}
			n += uvarintLen(uint64(len(b))+1) + len(b)
		}
	}
	return n
}

// uvarintLen is the length of binary.AppendUvarint's encoding of x.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }
