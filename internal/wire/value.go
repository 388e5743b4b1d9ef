package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unsafe"
)

// Value encodes and decodes values of one Go type. Encoding appends to a
// caller-owned buffer so that many values share one allocation. Decoding
// always fills fresh values: gob leaves fields that were zero on the wire
// untouched, so decoding into a reused value would leak old data.
//
// Implementations are safe for concurrent use.
type Value[T any] interface {
	// Append appends the encoding of v to dst.
	Append(dst []byte, v T) ([]byte, error)
	// AppendSlice appends the encoding of vs (one payload for all).
	AppendSlice(dst []byte, vs []T) ([]byte, error)
	// Decode decodes one value encoded by Append.
	Decode(src []byte) (T, error)
	// DecodeSlice decodes values encoded by AppendSlice, appending to dst.
	DecodeSlice(dst []T, src []byte) ([]T, error)
	// Name names the codec ("raw", "string", "bytes" or "gob").
	Name() string
}

// For returns the codec for T. A type that may hold a resource (a resource
// type or an interface-typed part, at any depth) uses the resource codec
// (a [ResourceValue]), which carries resources by reference beside the
// bytes. Otherwise pointer-free types (numbers, bools, arrays and structs
// of them) are copied as raw memory; string and []byte are
// length-prefixed; structs of fixed-size, string and byte-slice fields are
// records; every other type, and any type that implements gob.GobEncoder,
// uses self-contained gob encodings.
//
// The raw copy is sound only between processes running the same binary on
// the same architecture, which the boot handshake guarantees.
func For[T any]() Value[T] {
	t := reflect.TypeFor[T]()
	switch {
	case holdsResource(t):
		// First: a resource's descriptor numbers must never be copied as
		// data by the raw or record paths.
		return resourceFor[T](t)
	case t.Implements(gobEncoderType) || reflect.PointerTo(t).Implements(gobEncoderType):
		// The type's own gob encoding is honoured, whatever its layout:
		// it may redact, normalise or carry what copying would not.
		return gobCodec[T]{}
	case t.Kind() == reflect.String:
		return stringCodec[T]{}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && t.Elem() == reflect.TypeFor[byte]():
		return bytesCodec[T]{}
	case pointerFree(t):
		return rawCodec[T]{size: int(t.Size())}
	case isRecord(t):
		return recordFor[T](t)
	default:
		return gobCodec[T]{}
	}
}

// pointerFree reports whether values of t contain no pointers, so that their
// memory image means the same thing in another process of the same binary.
func pointerFree(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return true
	case reflect.Array:
		return pointerFree(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !pointerFree(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

type rawCodec[T any] struct{ size int }

func (c rawCodec[T]) Name() string { return "raw" }

func (c rawCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	if c.size == 0 {
		return dst, nil
	}
	return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(&v)), c.size)...), nil
}

// A raw slice is an 8-byte little-endian count followed by the values'
// memory. The fixed-size count keeps the values 8-byte aligned whenever the
// encoding starts aligned, so a receiver can use them in place (View).
func (c rawCodec[T]) AppendSlice(dst []byte, vs []T) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(vs)))
	return append(dst, c.SliceBytes(vs)...), nil
}

// SliceBytes returns the memory of vs, without copying.
func (c rawCodec[T]) SliceBytes(vs []T) []byte {
	if c.size == 0 || len(vs) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&vs[0])), c.size*len(vs))
}

// View returns the values of a slice encoding without copying them, when
// src is a valid encoding whose values are suitably aligned in memory. The
// result aliases src.
func (c rawCodec[T]) View(src []byte) ([]T, bool) {
	n, body, err := c.split(src)
	if err != nil || c.size == 0 || n == 0 {
		return nil, false
	}
	p := unsafe.Pointer(&body[0])
	if uintptr(p)%uintptr(reflect.TypeFor[T]().Align()) != 0 {
		return nil, false
	}
	return unsafe.Slice((*T)(p), n), true
}

func (c rawCodec[T]) split(src []byte) (n uint64, body []byte, err error) {
	if len(src) < 8 {
		return 0, nil, fmt.Errorf("%w: slice shorter than its count", ErrCorrupt)
	}
	n, body = binary.LittleEndian.Uint64(src), src[8:]
	if c.size == 0 {
		if n > 1<<31 || len(body) != 0 {
			return 0, nil, fmt.Errorf("%w: bad zero-size slice", ErrCorrupt)
		}
		return n, body, nil
	}
	if n > uint64(len(body)) || uint64(len(body)) != n*uint64(c.size) {
		return 0, nil, fmt.Errorf("%w: %d bytes for %d values of %d bytes", ErrCorrupt, len(body), n, c.size)
	}
	return n, body, nil
}

func (c rawCodec[T]) Decode(src []byte) (T, error) {
	var v T
	if len(src) != c.size {
		return v, fmt.Errorf("%w: %d bytes for a %d-byte %s", ErrCorrupt, len(src), c.size, reflect.TypeFor[T]())
	}
	if c.size > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&v)), c.size), src)
	}
	return v, nil
}

func (c rawCodec[T]) DecodeSlice(dst []T, src []byte) ([]T, error) {
	n, body, err := c.split(src)
	if err != nil {
		return dst, err
	}
	if c.size == 0 {
		return append(dst, make([]T, n)...), nil
	}
	start := len(dst)
	dst = slices.Grow(dst, int(n))[:start+int(n)]
	if n > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[start])), len(body)), body)
	}
	return dst, nil
}

// RawSlice is implemented by the raw codec (see [For]): its slices can be
// sent and received without copying the values.
type RawSlice[T any] interface {
	SliceBytes(vs []T) []byte
	View(src []byte) ([]T, bool)
}

// stringCodec and bytesCodec length-prefix each value; they differ only in
// how a value's bytes are read and made.
type stringCodec[T any] struct{}

func (stringCodec[T]) Name() string { return "string" }

func strBytes[T any](v *T) []byte {
	return unsafe.Slice(unsafe.StringData(*(*string)(unsafe.Pointer(v))), len(*(*string)(unsafe.Pointer(v))))
}

func strMake[T any](b []byte) (v T) { *(*string)(unsafe.Pointer(&v)) = string(b); return v }

func (stringCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	return append(dst, strBytes(&v)...), nil
}

func (stringCodec[T]) AppendSlice(dst []byte, vs []T) ([]byte, error) {
	return appendPrefixed(dst, vs, strBytes[T]), nil
}

func (stringCodec[T]) Decode(src []byte) (T, error) { return strMake[T](src), nil }

func (stringCodec[T]) DecodeSlice(dst []T, src []byte) ([]T, error) {
	return decodePrefixed(dst, src, strMake[T])
}

type bytesCodec[T any] struct{}

func (bytesCodec[T]) Name() string { return "bytes" }

func bytesOf[T any](v *T) []byte { return *(*[]byte)(unsafe.Pointer(v)) }

func bytesMake[T any](b []byte) (v T) { *(*[]byte)(unsafe.Pointer(&v)) = bytes.Clone(b); return v }

func (bytesCodec[T]) Append(dst []byte, v T) ([]byte, error) { return append(dst, bytesOf(&v)...), nil }

func (bytesCodec[T]) AppendSlice(dst []byte, vs []T) ([]byte, error) {
	return appendPrefixed(dst, vs, bytesOf[T]), nil
}

func (bytesCodec[T]) Decode(src []byte) (T, error) { return bytesMake[T](src), nil }

func (bytesCodec[T]) DecodeSlice(dst []T, src []byte) ([]T, error) {
	return decodePrefixed(dst, src, bytesMake[T])
}

func appendPrefixed[T any](dst []byte, vs []T, get func(*T) []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(vs)))
	for i := range vs {
		dst = AppendBytes(dst, get(&vs[i]))
	}
	return dst
}

func decodePrefixed[T any](dst []T, src []byte, mk func([]byte) T) ([]T, error) {
	d := NewBuf(src)
	n := d.Uvarint()
	if n > uint64(len(src)) { // each value costs at least one byte
		return dst, fmt.Errorf("%w: %d values in %d bytes", ErrCorrupt, n, len(src))
	}
	for range n {
		b := d.Bytes()
		if d.Err() != nil {
			return dst, d.Err()
		}
		dst = append(dst, mk(b))
	}
	if d.Err() != nil {
		return dst, d.Err()
	}
	if len(d.Rest()) != 0 {
		return dst, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.Rest()))
	}
	return dst, nil
}

// gobCodec encodes each value (or slice) as a self-contained gob stream.
type gobCodec[T any] struct{}

func (gobCodec[T]) Name() string { return "gob" }

// appendWriter lets a gob.Encoder append to a caller's buffer.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func (gobCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	if t := reflect.TypeFor[T](); mayCycle(t) {
		if err := cycleError(reflect.ValueOf(&v).Elem(), t.String()); err != nil {
			return dst, &EncodeError{Type: t.String(), Err: err}
		}
	}
	if nilPointer(reflect.ValueOf(&v).Elem()) {
		// gob writes nothing a decoder accepts for a nil pointer at the
		// top (it flattens pointers): the empty encoding stands for it.
		return dst, nil
	}
	w := &appendWriter{b: dst}
	n := len(dst)
	if err := gob.NewEncoder(w).Encode(&v); err != nil {
		return dst[:n], &EncodeError{Type: reflect.TypeFor[T]().String(), Err: explainGob[T](err)}
	}
	return w.b, nil
}

func (gobCodec[T]) AppendSlice(dst []byte, vs []T) ([]byte, error) {
	if t := reflect.TypeFor[T](); mayCycle(t) {
		if err := cycleError(reflect.ValueOf(vs), "[]"+t.String()); err != nil {
			return dst, &EncodeError{Type: t.String(), Err: err}
		}
	}
	w := &appendWriter{b: dst}
	n := len(dst)
	if err := gob.NewEncoder(w).Encode(&vs); err != nil {
		return dst[:n], &EncodeError{Type: reflect.TypeFor[T]().String(), Err: explainGob[T](err)}
	}
	return w.b, nil
}

func (gobCodec[T]) Decode(src []byte) (T, error) {
	var v T
	if len(src) == 0 && reflect.TypeFor[T]().Kind() == reflect.Pointer {
		return v, nil // a nil pointer (see Append); gob's encodings are never empty
	}
	if err := safeGobDecode(src, &v); err != nil {
		return v, &DecodeError{Type: reflect.TypeFor[T]().String(), Err: explainGob[T](err)}
	}
	return v, nil
}

func (gobCodec[T]) DecodeSlice(dst []T, src []byte) ([]T, error) {
	var vs []T
	if err := safeGobDecode(src, &vs); err != nil {
		return dst, &DecodeError{Type: "[]" + reflect.TypeFor[T]().String(), Err: explainGob[T](err)}
	}
	return append(dst, vs...), nil
}

// safeGobDecode decodes one gob value from src. gob has had panics on
// hostile input; a peer's bad bytes must never crash this process.
func safeGobDecode(src []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: gob panicked: %v", ErrCorrupt, r)
		}
	}()
	r := bytes.NewReader(src)
	if err := gob.NewDecoder(r).Decode(v); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("%w: %d trailing bytes after gob value", ErrCorrupt, r.Len())
	}
	return nil
}

// InterfaceError reports an interface value whose concrete type gob does
// not know in this process: gob carries an interface's dynamic value only
// if its type was passed to gob.Register, in the encoding and in the
// decoding process alike. Registration at Register time cannot check this,
// since the concrete type is known only once a value exists.
type InterfaceError struct {
	// Interfaces lists the interface-typed parts of the value's type, such
	// as "main.Job.Payload (interface {})".
	Interfaces []string
	// Concrete is the type gob could not find, as gob names it.
	Concrete string
	// Err is gob's own error.
	Err error
}

// Error names the interface, the missing type and the fix.
func (e *InterfaceError) Error() string {
	where := "an interface value"
	if len(e.Interfaces) > 0 {
		where = "interface " + strings.Join(e.Interfaces, ", ")
	}
	return fmt.Sprintf("%s holds %s, which this process has not registered with gob (call gob.Register with a %s in an init function or package-level var, before multiproc.Main, so that every process registers it): %v",
		where, e.Concrete, e.Concrete, e.Err)
}

// Unwrap returns gob's error.
func (e *InterfaceError) Unwrap() error { return e.Err }

// explainGob turns gob's complaint about an unregistered interface type
// into an *InterfaceError naming the interface and the missing type; other
// errors are returned unchanged.
func explainGob[T any](err error) error {
	msg := err.Error()
	i := strings.Index(msg, "not registered for interface: ")
	if i < 0 {
		return err
	}
	concrete := strings.Trim(msg[i+len("not registered for interface: "):], `"`)
	return &InterfaceError{Interfaces: interfacePaths(reflect.TypeFor[T](), reflect.TypeFor[T]().String()), Concrete: concrete, Err: err}
}

// EncodeError reports a value that cannot be encoded, naming its type.
type EncodeError struct {
	Type string
	Err  error
}

// Error names the type and the codec's complaint.
func (e *EncodeError) Error() string {
	return fmt.Sprintf("wire: cannot encode value of type %s: %v", e.Type, e.Err)
}

// Unwrap returns the codec's error.
func (e *EncodeError) Unwrap() error { return e.Err }

// DecodeError reports bytes that do not decode as the expected type.
type DecodeError struct {
	Type string
	Err  error
}

// Error names the type and the codec's complaint.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("wire: cannot decode value of type %s: %v", e.Type, e.Err)
}

// Unwrap returns the codec's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// nilPointer reports whether v is a pointer that is nil or leads through
// pointers to a nil one (gob, which flattens pointers, sees no value in
// either). Such a value travels as nil.
func nilPointer(v reflect.Value) bool {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return true
		}
		v = v.Elem()
	}
	return false
}
