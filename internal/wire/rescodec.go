package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// The resource codec carries every type that holds a resource or an
// interface-typed part: the one encoding that can find a resource wherever
// it is (a field at any depth, a slice or map element, an interface holding
// a *net.TCPListener) before any other path could copy its descriptor
// numbers as if they were data.
//
// It walks a plan compiled once per type. Pointer-free parts are copied as
// memory (as by the raw codec), strings and byte slices are length-prefixed,
// pointers, slices and maps carry a presence mark and a count, structs their
// exported fields (as gob does), types that encode themselves
// (gob.GobEncoder, encoding.BinaryMarshaler) are gob-encoded, and interface
// values carry a tag: nil, a standard-library resource kind, or a
// self-contained gob encoding of the dynamic value (whose type must be
// registered with gob, as for the gob codec). A resource is an index into
// the message's resource table (see [Outgoing], [Incoming]) followed by
// its exported state.

// ResourceValue is the codec of a type that may hold resources: [For]
// returns one for such types. The Out and In forms carry resources; the
// plain [Value] methods fail at the first resource that needs descriptors
// (ErrNoTransport) and decode no resource at all.
type ResourceValue[T any] interface {
	Value[T]
	AppendOut(dst []byte, v T, out *Outgoing) ([]byte, error)
	AppendSliceOut(dst []byte, vs []T, out *Outgoing) ([]byte, error)
	DecodeIn(src []byte, in Incoming) (T, error)
	DecodeSliceIn(dst []T, src []byte, in Incoming) ([]T, error)
}

type planKind uint8

const (
	pRaw planKind = iota
	pString
	pBytes
	pResource
	pIface
	pPtr
	pSlice
	pArray
	pMap
	pStruct
	pGob
)

type plan struct {
	kind   planKind
	t      reflect.Type
	size   int      // pRaw: bytes
	elem   *plan    // pPtr, pSlice, pArray, pMap (value)
	key    *plan    // pMap
	n      int      // pArray: length
	fields []pfield // pStruct: exported fields
	bi     *builtin // pResource: a standard-library kind, nil for an Exporter
	cycle  bool     // values may hold a pointer cycle
	flat   bool     // raw, string and byte-slice parts and Exporter pointers only: see flat.go
}

type pfield struct {
	index int
	off   uintptr
	name  string
	p     *plan
}

var (
	plans   sync.Map // reflect.Type -> *plan
	plansMu sync.Mutex
)

// holdsResource reports whether values of t may hold a resource: a
// resource type, or an interface-typed part (whose dynamic value may be
// one), anywhere in what the codecs carry.
func holdsResource(t reflect.Type) bool {
	return holds(t, map[reflect.Type]bool{})
}

func holds(t reflect.Type, seen map[reflect.Type]bool) bool {
	if isResource(t) || t.Kind() == reflect.Interface {
		return true
	}
	if encodesItself(t) || seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return holds(t.Elem(), seen)
	case reflect.Map:
		return holds(t.Key(), seen) || holds(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && holds(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

func planFor(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	plansMu.Lock()
	defer plansMu.Unlock()
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	building := map[reflect.Type]*plan{}
	p := compile(t, building)
	for _, bp := range building {
		bp.flat = isFlat(bp, map[*plan]bool{})
	}
	for bt, bp := range building {
		plans.Store(bt, bp)
	}
	return p
}

func compile(t reflect.Type, building map[reflect.Type]*plan) *plan {
	if p, ok := building[t]; ok {
		return p // a recursive type: the node is being filled
	}
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	p := &plan{t: t}
	building[t] = p
	switch {
	case isResource(t):
		p.kind, p.bi = pResource, builtinFor(t)
		return p
	case t.Kind() == reflect.Interface:
		p.kind = pIface
		return p
	case encodesItself(t):
		p.kind = pGob
		return p
	case pointerFree(t) && !holdsResource(t):
		p.kind, p.size = pRaw, int(t.Size())
		return p
	}
	p.cycle = mayCycle(t)
	switch t.Kind() {
	case reflect.String:
		p.kind = pString
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !holdsResource(t.Elem()) {
			p.kind = pBytes
		} else {
			p.kind, p.elem = pSlice, compile(t.Elem(), building)
		}
	case reflect.Pointer:
		p.kind, p.elem = pPtr, compile(t.Elem(), building)
	case reflect.Array:
		p.kind, p.n, p.elem = pArray, t.Len(), compile(t.Elem(), building)
	case reflect.Map:
		p.kind, p.key, p.elem = pMap, compile(t.Key(), building), compile(t.Elem(), building)
	case reflect.Struct:
		p.kind = pStruct
		for i := range t.NumField() {
			f := t.Field(i)
			if f.IsExported() {
				p.fields = append(p.fields, pfield{index: i, off: f.Offset, name: f.Name, p: compile(f.Type, building)})
			}
		}
	default:
		// chan, func, unsafe.Pointer: Register refuses them; a value built
		// around Register (an interface holding one) goes to gob, which
		// reports it.
		p.kind = pGob
	}
	return p
}

type resCodec[T any] struct{ p *plan }

func resourceFor[T any](t reflect.Type) Value[T] { return resCodec[T]{p: planFor(t)} }

func (c resCodec[T]) Name() string { return "resource" }

func (c resCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	out := Outgoing{NoDescriptors: true}
	defer out.Close()
	return c.AppendOut(dst, v, &out)
}

func (c resCodec[T]) AppendSlice(dst []byte, vs []T) ([]byte, error) {
	out := Outgoing{NoDescriptors: true}
	defer out.Close()
	return c.AppendSliceOut(dst, vs, &out)
}

func (c resCodec[T]) Decode(src []byte) (T, error) { return c.DecodeIn(src, nil) }

func (c resCodec[T]) DecodeSlice(dst []T, src []byte) ([]T, error) {
	return c.DecodeSliceIn(dst, src, nil)
}

func typeName[T any]() string { return reflect.TypeFor[T]().String() }

// AppendOut appends v's encoding to dst and its resources to out. On
// error dst is returned unchanged and the resources this call added to out
// are removed (their descriptors closed where out owned them).
func (c resCodec[T]) AppendOut(dst []byte, v T, out *Outgoing) ([]byte, error) {
	if c.p.kind == pResource && c.p.bi == nil {
		// The argument is itself a resource (a *shm.Value): no walk, no
		// reflection, no allocation on the way.
		if c.p.t.Kind() == reflect.Pointer && *(*unsafe.Pointer)(unsafe.Pointer(&v)) == nil {
			return append(dst, 0), nil // nil, as the walk encodes it
		}
		if ex, ok := any(v).(Exporter); ok {
			e := encoder{b: dst, out: out, mark: len(out.Res)}
			if err := e.export(c.p.t, ex); err != nil {
				return dst, e.fail(err, typeName[T]())
			}
			return e.b, nil
		}
	}
	if c.p.flat {
		e := encoder{b: dst, out: out, mark: len(out.Res)}
		if err := e.flat(c.p, unsafe.Pointer(&v)); err != nil {
			return dst, e.fail(err, typeName[T]())
		}
		return e.b, nil
	}
	rv := reflect.ValueOf(&v).Elem()
	if c.p.cycle {
		if err := cycleError(rv, typeName[T]()); err != nil {
			return dst, &EncodeError{Type: typeName[T](), Err: err}
		}
	}
	e := encoder{b: dst, out: out, mark: len(out.Res)}
	if err := e.walk(c.p, rv); err != nil {
		return dst, e.fail(err, typeName[T]())
	}
	return e.b, nil
}

// AppendSliceOut appends the encoding of vs (a count, then each value).
func (c resCodec[T]) AppendSliceOut(dst []byte, vs []T, out *Outgoing) ([]byte, error) {
	rv := reflect.ValueOf(vs)
	if c.p.cycle {
		if err := cycleError(rv, "[]"+typeName[T]()); err != nil {
			return dst, &EncodeError{Type: typeName[T](), Err: err}
		}
	}
	e := encoder{b: binary.AppendUvarint(dst, uint64(len(vs))), out: out, mark: len(out.Res)}
	for i := range vs {
		var err error
		if c.p.flat {
			err = e.flat(c.p, unsafe.Pointer(&vs[i]))
		} else {
			err = e.walk(c.p, rv.Index(i))
		}
		if err != nil {
			return dst, e.fail(at(err, "["+strconv.Itoa(i)+"]"), "[]"+typeName[T]())
		}
	}
	return e.b, nil
}

// DecodeIn decodes one value, taking its resources from in (nil: the value
// must hold none).
func (c resCodec[T]) DecodeIn(src []byte, in Incoming) (T, error) {
	if c.p.kind == pResource && c.p.bi == nil && c.p.t.Kind() == reflect.Pointer && in != nil {
		if v, ok, err := c.decodeKept(src, in); ok {
			return v, err
		}
	}
	var v T
	d := decoder{Buf: Buf{b: src}, in: in}
	var err error
	if c.p.flat {
		err = d.flat(c.p, unsafe.Pointer(&v))
	} else {
		err = d.walk(c.p, reflect.ValueOf(&v).Elem())
	}
	if err == nil && len(d.b) != 0 {
		err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	if err != nil {
		var zero T
		return zero, decodeFail(err, typeName[T]())
	}
	return v, nil
}

// decodeKept decodes a value that is itself a resource held by the
// receiver (a pool worker's kept *shm.Value), without reflection. ok is
// false when the general path must decode it (a first import).
func (c resCodec[T]) decodeKept(src []byte, in Incoming) (v T, ok bool, err error) {
	d := Buf{b: src}
	ref := d.Uvarint()
	d.Bytes() // the state: the kept object has it already
	if d.err != nil || ref == 0 || len(d.b) != 0 {
		return v, false, nil
	}
	if k, ok := in.(interface{ Kept(i int) any }); ok {
		if x, ok := k.Kept(int(min(ref-1, 1<<31))).(T); ok {
			return x, true, nil
		}
	}
	return v, false, nil
}

// DecodeSliceIn decodes values encoded by AppendSliceOut, appending to dst.
func (c resCodec[T]) DecodeSliceIn(dst []T, src []byte, in Incoming) ([]T, error) {
	d := decoder{Buf: Buf{b: src}, in: in}
	n := d.Uvarint()
	if d.err == nil && n > uint64(len(d.b)) && c.p.minSize() > 0 {
		return dst, decodeFail(fmt.Errorf("%w: %d values in %d bytes", ErrCorrupt, n, len(d.b)), "[]"+typeName[T]())
	}
	if d.err == nil && n > 1<<31 {
		return dst, decodeFail(fmt.Errorf("%w: %d values", ErrCorrupt, n), "[]"+typeName[T]())
	}
	start := len(dst)
	for i := uint64(0); i < n && d.err == nil; i++ {
		dst = append(dst, *new(T))
		var err error
		if c.p.flat {
			err = d.flat(c.p, unsafe.Pointer(&dst[len(dst)-1]))
		} else {
			err = d.walk(c.p, reflect.ValueOf(&dst[len(dst)-1]).Elem())
		}
		if err != nil {
			clear(dst[start:])
			return dst[:start], decodeFail(at(err, "["+strconv.FormatUint(i, 10)+"]"), "[]"+typeName[T]())
		}
	}
	if d.err != nil {
		return dst[:start], decodeFail(d.err, "[]"+typeName[T]())
	}
	if len(d.b) != 0 {
		return dst[:start], decodeFail(fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b)), "[]"+typeName[T]())
	}
	return dst, nil
}

// minSize is the least number of bytes one value of p takes, used to
// bound counts read from a peer before anything is allocated.
func (p *plan) minSize() int {
	switch p.kind {
	case pRaw:
		return p.size
	case pArray:
		return 0 // elements may be empty
	}
	return 1
}

// pathError carries the path of a failure up the walk; each level adds
// its part in front, so success costs no string building.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }

func at(err error, part string) error {
	if pe, ok := err.(*pathError); ok {
		pe.path = part + pe.path
		return pe
	}
	return &pathError{path: part, err: err}
}

func (e *encoder) fail(err error, root string) error {
	// Undo what this call added to the resource table.
	for i := e.mark; i < len(e.out.Res); i++ {
		e.out.Res[i].Settle(false)
		if e.out.Res[i].Owned {
			closeAll(e.out.Res[i].Files)
		}
		e.out.Res[i] = Sent{}
	}
	e.out.Res = e.out.Res[:e.mark]
	return finish(err, root, true)
}

func decodeFail(err error, root string) error { return finish(err, root, false) }

// finish turns a walk's error into the package's error types, with the
// path rooted at the type's name.
func finish(err error, root string, encoding bool) error {
	path := root
	var pe *pathError
	if errors.As(err, &pe) {
		path, err = root+pe.path, pe.err
	}
	var re *ResourceError
	if errors.As(err, &re) {
		re.Path = path
		return re
	}
	var ie *InterfaceError
	if errors.As(err, &ie) {
		ie.Interfaces = []string{path + " (" + ie.Interfaces[0] + ")"}
	} else if path != root {
		err = fmt.Errorf("%s: %w", path, err)
	}
	if encoding {
		return &EncodeError{Type: root, Err: err}
	}
	return &DecodeError{Type: root, Err: err}
}

type encoder struct {
	b    []byte
	out  *Outgoing
	mark int // resources in out before this encoding
	gob  appendWriter
}

func (e *encoder) walk(p *plan, v reflect.Value) error {
	switch p.kind {
	case pRaw:
		if p.size > 0 {
			e.b = append(e.b, rawBytes(v, p.size)...)
		}
	case pString:
		e.b = AppendString(e.b, v.String())
	case pBytes:
		if v.IsNil() {
			e.b = append(e.b, 0)
		} else {
			b := v.Bytes()
			e.b = binary.AppendUvarint(e.b, uint64(len(b))+1)
			e.b = append(e.b, b...)
		}
	case pPtr:
		if v.IsNil() {
			e.b = append(e.b, 0)
			return nil
		}
		e.b = append(e.b, 1)
		return e.walk(p.elem, v.Elem())
	case pSlice:
		if v.IsNil() {
			e.b = append(e.b, 0)
			return nil
		}
		n := v.Len()
		e.b = binary.AppendUvarint(e.b, uint64(n)+1)
		if p.elem.kind == pRaw && n > 0 {
			e.b = append(e.b, unsafe.Slice((*byte)(v.UnsafePointer()), n*p.elem.size)...)
			return nil
		}
		for i := range n {
			if err := e.walk(p.elem, v.Index(i)); err != nil {
				return at(err, "["+strconv.Itoa(i)+"]")
			}
		}
	case pArray:
		for i := range p.n {
			if err := e.walk(p.elem, v.Index(i)); err != nil {
				return at(err, "["+strconv.Itoa(i)+"]")
			}
		}
	case pMap:
		if v.IsNil() {
			e.b = append(e.b, 0)
			return nil
		}
		e.b = binary.AppendUvarint(e.b, uint64(v.Len())+1)
		it := v.MapRange()
		k, x := reflect.New(p.key.t).Elem(), reflect.New(p.elem.t).Elem()
		for it.Next() {
			// Map entries are not addressable; the walk needs them to be.
			k.Set(it.Key())
			x.Set(it.Value())
			if err := e.walk(p.key, k); err != nil {
				return at(err, "[key]")
			}
			if err := e.walk(p.elem, x); err != nil {
				return at(err, "["+fmt.Sprint(it.Key().Interface())+"]")
			}
		}
	case pStruct:
		for _, f := range p.fields {
			if err := e.walk(f.p, v.Field(f.index)); err != nil {
				return at(err, "."+f.name)
			}
		}
	case pResource:
		return e.resource(p, v)
	case pIface:
		return e.iface(v)
	case pGob:
		return e.gobValue(v)
	}
	return nil
}

// rawBytes returns the memory of v, a pointer-free value.
func rawBytes(v reflect.Value, size int) []byte {
	if v.CanAddr() {
		return unsafe.Slice((*byte)(v.Addr().UnsafePointer()), size)
	}
	c := reflect.New(v.Type())
	c.Elem().Set(v)
	return unsafe.Slice((*byte)(c.UnsafePointer()), size)
}

func (e *encoder) resource(p *plan, v reflect.Value) error {
	var x Exported
	var err error
	switch {
	case p.bi != nil:
		if v.IsNil() {
			e.b = append(e.b, 0)
			return nil
		}
		if e.out.NoDescriptors {
			return &ResourceError{Type: p.t, Err: ErrNoTransport}
		}
		err = p.bi.export(v.Interface(), &x)
	default:
		var ex Exporter
		if p.t.Kind() == reflect.Pointer || p.t.Kind() == reflect.Interface {
			if v.IsNil() {
				e.b = append(e.b, 0)
				return nil
			}
			ex, _ = v.Interface().(Exporter)
		} else if v.CanAddr() {
			ex, _ = v.Addr().Interface().(Exporter)
		} else {
			c := reflect.New(p.t)
			c.Elem().Set(v)
			ex, _ = c.Interface().(Exporter)
		}
		if ex == nil {
			return &ResourceError{Type: p.t, Err: errors.New("the type is a resource but cannot travel (it does not implement ExportResource)")}
		}
		return e.export(p.t, ex)
	}
	if err != nil {
		return &ResourceError{Type: p.t, Err: err}
	}
	if e.out.NoDescriptors && len(x.Files) > 0 {
		if x.Owned {
			closeAll(x.Files)
		}
		return &ResourceError{Type: p.t, Err: ErrNoTransport}
	}
	i := e.out.add(&x)
	e.b = binary.AppendUvarint(e.b, uint64(i)+1)
	e.b = AppendBytes(e.b, x.State)
	return nil
}

// export adds the resource ex (of type t) to the table and its reference
// to the encoding.
func (e *encoder) export(t reflect.Type, ex Exporter) error {
	if e.out.NoDescriptors && ex.NeedsDescriptors() {
		return &ResourceError{Type: t, Err: ErrNoTransport}
	}
	x := &e.out.x
	*x = Exported{}
	if err := ex.ExportResource(x); err != nil {
		return &ResourceError{Type: t, Err: err}
	}
	if e.out.NoDescriptors && len(x.Files) > 0 {
		if x.Owned {
			closeAll(x.Files)
		}
		if x.Done != nil {
			x.Done(false)
		}
		*x = Exported{}
		return &ResourceError{Type: t, Err: ErrNoTransport}
	}
	i := e.out.add(x)
	e.b = binary.AppendUvarint(e.b, uint64(i)+1)
	e.b = AppendBytes(e.b, x.State)
	*x = Exported{}
	return nil
}

// Interface tags.
const (
	ifaceNil     = 0
	ifaceBuiltin = 1 // uvarint builtin index, then the resource
	ifaceGob     = 2 // length-prefixed gob encoding of ifaceBox
)

// ifaceBox carries an interface's dynamic value through gob, which sends
// the concrete type's registered name only for interface-typed fields.
type ifaceBox struct{ V any }

func (e *encoder) iface(v reflect.Value) error {
	if v.IsNil() {
		e.b = append(e.b, ifaceNil)
		return nil
	}
	dyn := v.Elem()
	if bi := builtinFor(dyn.Type()); bi != nil {
		for i, b := range builtins {
			if b == bi {
				e.b = append(e.b, ifaceBuiltin)
				e.b = binary.AppendUvarint(e.b, uint64(i))
				return e.resource(&plan{kind: pResource, t: bi.typ, bi: bi}, dyn)
			}
		}
	}
	if isResource(dyn.Type()) {
		return &ResourceError{Type: dyn.Type(), Err: fmt.Errorf("%w: a resource of this type cannot travel in an interface-typed position (%v); only files, connections and listeners can: declare the field with the resource's own type", ErrNoTransport, v.Type())}
	}
	e.b = append(e.b, ifaceGob)
	e.gob.b = e.gob.b[:0]
	if err := gob.NewEncoder(&e.gob).Encode(ifaceBox{V: v.Interface()}); err != nil {
		return explainIface(err, v.Type())
	}
	e.b = AppendBytes(e.b, e.gob.b)
	return nil
}

func (e *encoder) gobValue(v reflect.Value) error {
	e.gob.b = e.gob.b[:0]
	if err := gob.NewEncoder(&e.gob).EncodeValue(v); err != nil {
		return err
	}
	e.b = AppendBytes(e.b, e.gob.b)
	return nil
}

// explainIface turns gob's complaint about an unregistered concrete type
// into an *InterfaceError (whose path finish fills in).
func explainIface(err error, t reflect.Type) error {
	msg := err.Error()
	const key = "not registered for interface: "
	if i := strings.Index(msg, key); i >= 0 {
		return &InterfaceError{Interfaces: []string{t.String()}, Concrete: strings.Trim(msg[i+len(key):], `"`), Err: err}
	}
	return err
}

type decoder struct {
	Buf
	in   Incoming
	seen []seenRes // resources met so far in this message
	one  [1]seenRes
}

type seenRes struct {
	i   int
	obj any
}

func (d *decoder) remember(i int, obj any) {
	if d.seen == nil {
		d.seen = d.one[:0]
	}
	d.seen = append(d.seen, seenRes{i, obj})
}

func (d *decoder) met(i int) (any, bool) {
	for _, s := range d.seen {
		if s.i == i {
			return s.obj, true
		}
	}
	return nil, false
}

func (d *decoder) walk(p *plan, v reflect.Value) error {
	switch p.kind {
	case pRaw:
		if p.size == 0 {
			return nil
		}
		if len(d.b) < p.size {
			d.fail(p.t.String())
			return d.err
		}
		copy(unsafe.Slice((*byte)(v.Addr().UnsafePointer()), p.size), d.b[:p.size])
		d.b = d.b[p.size:]
	case pString:
		b := d.Bytes()
		if d.err != nil {
			return d.err
		}
		v.SetString(string(b))
	case pBytes:
		n := d.Uvarint()
		if d.err != nil || n == 0 {
			return d.err
		}
		if n-1 > uint64(len(d.b)) {
			d.fail("byte slice")
			return d.err
		}
		b := bytes.Clone(d.b[:n-1])
		if b == nil {
			b = []byte{}
		}
		d.b = d.b[n-1:]
		v.SetBytes(b)
	case pPtr:
		switch d.Byte() {
		case 0:
			return d.err
		case 1:
			n := reflect.New(p.elem.t)
			if err := d.walk(p.elem, n.Elem()); err != nil {
				return err
			}
			v.Set(n)
		default:
			return fmt.Errorf("%w: bad pointer mark", ErrCorrupt)
		}
	case pSlice:
		n := d.Uvarint()
		if d.err != nil || n == 0 {
			return d.err
		}
		n--
		if (n > uint64(len(d.b)) && p.elem.minSize() > 0) || n > 1<<31 {
			return fmt.Errorf("%w: %d elements in %d bytes", ErrCorrupt, n, len(d.b))
		}
		s := reflect.MakeSlice(p.t, int(n), int(n))
		if p.elem.kind == pRaw {
			size := int(n) * p.elem.size
			if len(d.b) < size {
				return fmt.Errorf("%w: %d bytes for %d elements of %d", ErrCorrupt, len(d.b), n, p.elem.size)
			}
			if size > 0 {
				copy(unsafe.Slice((*byte)(s.UnsafePointer()), size), d.b[:size])
			}
			d.b = d.b[size:]
		} else {
			for i := range int(n) {
				if err := d.walk(p.elem, s.Index(i)); err != nil {
					return at(err, "["+strconv.Itoa(i)+"]")
				}
			}
		}
		v.Set(s)
	case pArray:
		for i := range p.n {
			if err := d.walk(p.elem, v.Index(i)); err != nil {
				return at(err, "["+strconv.Itoa(i)+"]")
			}
		}
	case pMap:
		n := d.Uvarint()
		if d.err != nil || n == 0 {
			return d.err
		}
		n--
		if n > uint64(len(d.b)) {
			return fmt.Errorf("%w: %d map entries in %d bytes", ErrCorrupt, n, len(d.b))
		}
		m := reflect.MakeMapWithSize(p.t, int(n))
		for range n {
			k, x := reflect.New(p.key.t).Elem(), reflect.New(p.elem.t).Elem()
			if err := d.walk(p.key, k); err != nil {
				return at(err, "[key]")
			}
			if err := d.walk(p.elem, x); err != nil {
				return at(err, "[]")
			}
			m.SetMapIndex(k, x)
		}
		v.Set(m)
	case pStruct:
		for _, f := range p.fields {
			if err := d.walk(f.p, v.Field(f.index)); err != nil {
				return at(err, "."+f.name)
			}
		}
	case pResource:
		return d.resource(p, v)
	case pIface:
		return d.iface(v)
	case pGob:
		b := d.Bytes()
		if d.err != nil {
			return d.err
		}
		return gobDecodeValue(b, v)
	}
	return d.err
}

func gobDecodeValue(b []byte, v reflect.Value) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: gob panicked: %v", ErrCorrupt, r)
		}
	}()
	r := bytes.NewReader(b)
	if err := gob.NewDecoder(r).DecodeValue(v); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("%w: %d trailing bytes after gob value", ErrCorrupt, r.Len())
	}
	return nil
}

func (d *decoder) resource(p *plan, v reflect.Value) error {
	ref := d.Uvarint()
	if d.err != nil || ref == 0 {
		return d.err // ref 0: nil where the sender had none
	}
	state := d.Bytes()
	if d.err != nil {
		return d.err
	}
	if d.in == nil {
		return &ResourceError{Type: p.t, Err: fmt.Errorf("%w: a resource arrived on a channel that carries none", ErrCorrupt)}
	}
	i := int(min(ref-1, 1<<31))
	if obj, ok := d.met(i); ok {
		// Referenced again in the same message: the same object.
		return assignKept(p.t, v, obj)
	}
	kept, files, err := d.in.Resource(i)
	if err != nil {
		return &ResourceError{Type: p.t, Err: err}
	}
	if kept != nil {
		d.remember(i, kept)
		return assignKept(p.t, v, kept)
	}
	if p.bi != nil {
		obj, err := p.bi.imp(state, files)
		if err != nil {
			return &ResourceError{Type: p.t, Err: err}
		}
		d.remember(i, obj)
		v.Set(reflect.ValueOf(obj))
		return nil
	}
	et := p.t
	if et.Kind() == reflect.Pointer {
		et = et.Elem()
	}
	obj := reflect.New(et)
	im, ok := obj.Interface().(Importer)
	if !ok {
		closeAll(files)
		return &ResourceError{Type: p.t, Err: errors.New("the type is a resource but cannot be received (its pointer does not implement ImportResource)")}
	}
	if err := im.ImportResource(state, files); err != nil {
		return &ResourceError{Type: p.t, Err: err}
	}
	d.in.Keep(i, obj.Interface())
	d.remember(i, obj.Interface())
	if p.t.Kind() == reflect.Pointer {
		v.Set(obj)
	} else {
		v.Set(obj.Elem())
	}
	return nil
}

// assignKept sets v (of type t) to a resource object a receiver kept: a
// pointer to the imported value.
func assignKept(t reflect.Type, v reflect.Value, kept any) error {
	k := reflect.ValueOf(kept)
	switch {
	case k.Type() == t:
		v.Set(k)
	case k.Kind() == reflect.Pointer && k.Type().Elem() == t:
		v.Set(k.Elem())
	default:
		return &ResourceError{Type: t, Err: fmt.Errorf("%w: the resource kept for this reference is a %v", ErrCorrupt, k.Type())}
	}
	return nil
}

func (d *decoder) iface(v reflect.Value) error {
	switch d.Byte() {
	case ifaceNil:
		return d.err
	case ifaceBuiltin:
		i := d.Uvarint()
		if d.err != nil {
			return d.err
		}
		if i >= uint64(len(builtins)) {
			return fmt.Errorf("%w: unknown resource kind %d", ErrCorrupt, i)
		}
		bi := builtins[i]
		if !bi.typ.AssignableTo(v.Type()) {
			return fmt.Errorf("%w: a %v cannot be stored in a %v", ErrCorrupt, bi.typ, v.Type())
		}
		x := reflect.New(bi.typ).Elem()
		if err := d.resource(&plan{kind: pResource, t: bi.typ, bi: bi}, x); err != nil {
			return err
		}
		v.Set(x)
	case ifaceGob:
		b := d.Bytes()
		if d.err != nil {
			return d.err
		}
		var box ifaceBox
		if err := safeGobDecode(b, &box); err != nil {
			return explainIface(err, v.Type())
		}
		if box.V == nil {
			return nil
		}
		x := reflect.ValueOf(box.V)
		if !x.Type().AssignableTo(v.Type()) {
			return fmt.Errorf("%w: a %v arrived for a %v", ErrCorrupt, x.Type(), v.Type())
		}
		v.Set(x)
	default:
		if d.err == nil {
			return fmt.Errorf("%w: bad interface tag", ErrCorrupt)
		}
	}
	return d.err
}
