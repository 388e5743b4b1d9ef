package wire

import (
	"encoding/binary"
	"reflect"
	"unsafe"
)

// The flat path of the resource codec: a type made only of pointer-free
// parts, strings, byte slices, pointers to Exporter types and structs of
// those (a task argument like struct{ A *shm.Array[float64]; I int }) is
// encoded and decoded through field offsets, without reflect.Value, so an
// argument holding a resource costs about what one without does. Its wire
// form is the walk's: the two paths are interchangeable.

// isFlat reports whether p takes the flat path.
func isFlat(p *plan, seen map[*plan]bool) bool {
	if seen[p] {
		return false // recursive: walk it
	}
	seen[p] = true
	switch p.kind {
	case pRaw, pString, pBytes:
		return true
	case pResource:
		return p.bi == nil && p.t.Kind() == reflect.Pointer && p.t.Implements(exporterType) && p.t.Implements(importerType)
	case pStruct:
		for _, f := range p.fields {
			if !isFlat(f.p, seen) {
				return false
			}
		}
		return true
	}
	return false
}

// flat encodes the value of plan p at ptr.
func (e *encoder) flat(p *plan, ptr unsafe.Pointer) error {
	switch p.kind {
	case pRaw:
		if p.size > 0 {
			e.b = append(e.b, unsafe.Slice((*byte)(ptr), p.size)...)
		}
	case pString:
		e.b = AppendString(e.b, *(*string)(ptr))
	case pBytes:
		b := *(*[]byte)(ptr)
		if b == nil {
			e.b = append(e.b, 0)
		} else {
			e.b = binary.AppendUvarint(e.b, uint64(len(b))+1)
			e.b = append(e.b, b...)
		}
	case pResource:
		obj := *(*unsafe.Pointer)(ptr)
		if obj == nil {
			e.b = append(e.b, 0)
			return nil
		}
		// A pointer-kind Value's Interface does not allocate.
		ex := reflect.NewAt(p.t.Elem(), obj).Interface().(Exporter)
		return e.export(p.t, ex)
	case pStruct:
		for _, f := range p.fields {
			if err := e.flat(f.p, unsafe.Add(ptr, f.off)); err != nil {
				return at(err, "."+f.name)
			}
		}
	}
	return nil
}

// flat decodes into the value of plan p at ptr.
func (d *decoder) flat(p *plan, ptr unsafe.Pointer) error {
	switch p.kind {
	case pRaw:
		if p.size == 0 {
			return nil
		}
		if len(d.b) < p.size {
			d.fail(p.t.String())
			return d.err
		}
		copy(unsafe.Slice((*byte)(ptr), p.size), d.b[:p.size])
		d.b = d.b[p.size:]
	case pString:
		b := d.Bytes()
		if d.err != nil {
			return d.err
		}
		*(*string)(ptr) = string(b)
	case pBytes, pResource:
		// Rare enough to share the walk's code (a byte slice to copy, a
		// resource to import or find kept).
		return d.walk(p, reflect.NewAt(p.t, ptr).Elem())
	case pStruct:
		for _, f := range p.fields {
			if err := d.flat(f.p, unsafe.Add(ptr, f.off)); err != nil {
				return at(err, "."+f.name)
			}
		}
	}
	return d.err
}
