package manager

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"math"
	"reflect"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// codecFor returns the encoding of T's values on a connection: wire's own
// (raw memory for pointer-free types, records, strings) when both ends run
// the same build and the server stores raw encodings, and self-describing
// gob values otherwise, so that clients and servers may be different
// binaries.
func codecFor[T any](raw bool) wire.Value[T] {
	if raw {
		return wire.For[T]()
	}
	return gobValue[T]{}
}

// checkElem refuses types that cannot be stored in a manager as data: a
// chan, a func, or a resource. (A proxy type itself is stored as a
// reference where checkValue allows it: see nested.go.)
func checkElem[T any](what string) error {
	t := reflect.TypeFor[T]()
	res, err := wire.Check(t, what)
	if err != nil {
		return fmt.Errorf("manager: %s type %v: %w", what, t, err)
	}
	if res {
		return fmt.Errorf("manager: %s type %v holds a resource (a proxy, a file, a shared object), which a manager cannot store as data (a proxy type itself, such as *manager.List[int], nests as a Dict's value, a List's, an Array's or a Queue's element, a Value or a Namespace attribute; not as a key, inside another type, or in an update function): %w", what, t, ErrNotTransferable)
	}
	return nil
}

// gobValue encodes each value as a self-contained gob stream (its type
// description included), which any binary decodes by structure.
type gobValue[T any] struct{}

func (gobValue[T]) Name() string { return "gob" }

type appendW struct{ b []byte }

func (w *appendW) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func (gobValue[T]) Append(dst []byte, v T) ([]byte, error) {
	w := &appendW{b: dst}
	if err := gob.NewEncoder(w).Encode(&v); err != nil {
		return dst, &wire.EncodeError{Type: reflect.TypeFor[T]().String(), Err: err}
	}
	return w.b, nil
}

func (g gobValue[T]) AppendSlice(dst []byte, vs []T) ([]byte, error) {
	w := &appendW{b: dst}
	if err := gob.NewEncoder(w).Encode(&vs); err != nil {
		return dst, &wire.EncodeError{Type: "[]" + reflect.TypeFor[T]().String(), Err: err}
	}
	return w.b, nil
}

func (gobValue[T]) Decode(src []byte) (T, error) {
	var v T
	if err := gobDecode(src, &v); err != nil {
		return v, &wire.DecodeError{Type: reflect.TypeFor[T]().String(), Err: err}
	}
	return v, nil
}

func (gobValue[T]) DecodeSlice(dst []T, src []byte) ([]T, error) {
	var vs []T
	if err := gobDecode(src, &vs); err != nil {
		return dst, &wire.DecodeError{Type: "[]" + reflect.TypeFor[T]().String(), Err: err}
	}
	return append(dst, vs...), nil
}

// gobDecode decodes one self-contained gob value; gob has had panics on
// hostile input, and a peer's bytes must never crash this process.
func gobDecode(src []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: gob panicked: %v", wire.ErrCorrupt, r)
		}
	}()
	r := bytes.NewReader(src)
	if err := gob.NewDecoder(r).Decode(v); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("%w: %d bytes after a gob value", wire.ErrCorrupt, r.Len())
	}
	return nil
}

func gobEncode(v any) ([]byte, error) {
	w := &appendW{}
	if err := gob.NewEncoder(w).Encode(v); err != nil {
		return nil, err
	}
	return w.b, nil
}

// Numeric kinds of Incr: how the server reads the stored value.
const (
	numSigned   = 'i'
	numUnsigned = 'u'
	numFloat    = 'f'
)

// numArg is the kind argument of an Incr request: T's numeric kind and
// its width in bits (a server of an earlier build reads the kind alone,
// as 64 bits wide), or nil if T is not a number.
func numArg[T any]() []byte {
	nk := numKind[T]()
	if nk == 0 {
		return nil
	}
	return []byte{nk, byte(reflect.TypeFor[T]().Bits())}
}

// numKind returns T's numeric kind, or 0 if T is not a number.
func numKind[T any]() byte {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return numSigned
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return numUnsigned
	case reflect.Float32, reflect.Float64:
		return numFloat
	}
	return 0
}

// addNumbers adds delta to cur, both encoded by a client of the object's
// encoding (raw or gob) as numbers of kind nk, and returns the sum in the
// same encoding.
//
// Integers wrap around at their type's width, as Go's + does (bits is
// the width, from the client's numArg; 64 when a client sent none), in
// both encodings; floats are added at their type's precision.
func addNumbers(raw bool, kindArg, cur, delta []byte) ([]byte, error) {
	var nk byte
	bits := 64
	switch len(kindArg) {
	case 1:
		nk = kindArg[0]
	case 2:
		nk, bits = kindArg[0], int(kindArg[1])
		if bits != 8 && bits != 16 && bits != 32 && bits != 64 {
			return nil, fmt.Errorf("%w: a %d-bit number", wire.ErrCorrupt, bits)
		}
	default:
		return nil, fmt.Errorf("%w: numeric kind of %d bytes", wire.ErrCorrupt, len(kindArg))
	}
	if raw {
		if len(cur) != len(delta) {
			return nil, fmt.Errorf("%w: increment of %d bytes on a value of %d", ErrTypeMismatch, len(delta), len(cur))
		}
		switch nk {
		case numSigned, numUnsigned:
			out := make([]byte, len(cur))
			switch len(cur) {
			case 1:
				out[0] = cur[0] + delta[0]
			case 2:
				binary.LittleEndian.PutUint16(out, binary.LittleEndian.Uint16(cur)+binary.LittleEndian.Uint16(delta))
			case 4:
				binary.LittleEndian.PutUint32(out, binary.LittleEndian.Uint32(cur)+binary.LittleEndian.Uint32(delta))
			case 8:
				binary.LittleEndian.PutUint64(out, binary.LittleEndian.Uint64(cur)+binary.LittleEndian.Uint64(delta))
			default:
				return nil, fmt.Errorf("%w: a %d-byte integer", ErrTypeMismatch, len(cur))
			}
			return out, nil
		case numFloat:
			switch len(cur) {
			case 4:
				s := math.Float32frombits(binary.LittleEndian.Uint32(cur)) + math.Float32frombits(binary.LittleEndian.Uint32(delta))
				return binary.LittleEndian.AppendUint32(nil, math.Float32bits(s)), nil
			case 8:
				s := math.Float64frombits(binary.LittleEndian.Uint64(cur)) + math.Float64frombits(binary.LittleEndian.Uint64(delta))
				return binary.LittleEndian.AppendUint64(nil, math.Float64bits(s)), nil
			}
			return nil, fmt.Errorf("%w: a %d-byte float", ErrTypeMismatch, len(cur))
		}
		return nil, fmt.Errorf("%w: numeric kind %q", wire.ErrCorrupt, nk)
	}
	// gob encodes every signed integer alike, every unsigned one alike and
	// every float alike, so the widest type reads and writes them all.
	switch nk {
	case numSigned:
		var a, b int64
		if err := gobDecode(cur, &a); err != nil {
			return nil, fmt.Errorf("%w: stored value: %v", ErrTypeMismatch, err)
		}
		if err := gobDecode(delta, &b); err != nil {
			return nil, fmt.Errorf("%w: increment: %v", ErrTypeMismatch, err)
		}
		sum := a + b
		if bits < 64 {
			sum = sum << (64 - bits) >> (64 - bits) // wrap, sign-extended
		}
		return gobEncode(sum)
	case numUnsigned:
		var a, b uint64
		if err := gobDecode(cur, &a); err != nil {
			return nil, fmt.Errorf("%w: stored value: %v", ErrTypeMismatch, err)
		}
		if err := gobDecode(delta, &b); err != nil {
			return nil, fmt.Errorf("%w: increment: %v", ErrTypeMismatch, err)
		}
		sum := a + b
		if bits < 64 {
			sum &= 1<<bits - 1 // wrap
		}
		return gobEncode(sum)
	case numFloat:
		var a, b float64
		if err := gobDecode(cur, &a); err != nil {
			return nil, fmt.Errorf("%w: stored value: %v", ErrTypeMismatch, err)
		}
		if err := gobDecode(delta, &b); err != nil {
			return nil, fmt.Errorf("%w: increment: %v", ErrTypeMismatch, err)
		}
		if bits == 32 {
			return gobEncode(float64(float32(a) + float32(b)))
		}
		return gobEncode(a + b)
	}
	return nil, fmt.Errorf("%w: numeric kind %q", wire.ErrCorrupt, nk)
}

// errZeroProxy is the error of a call on a proxy that was never made by
// a constructor nor imported (a zero value).
var errZeroProxy = fmt.Errorf("manager: call on a zero or unimported proxy: %w", ErrClosed)

// appendVal encodes v with c; a zero proxy has no codec (ErrClosed).
func appendVal[T any](c wire.Value[T], v T) ([]byte, error) {
	if c == nil {
		return nil, errZeroProxy
	}
	return c.Append(nil, v)
}
