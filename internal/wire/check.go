package wire

import (
	"encoding"
	"encoding/gob"
	"fmt"
	"reflect"
)

// TypeError reports a type whose values no codec can carry to another
// process: a chan, a func or an unsafe.Pointer, at the top level or inside
// a container or an exported struct field.
type TypeError struct {
	// Path locates the offending part from the root given to [Check]:
	// "In.Jobs[].Done" is field Done of the elements of field Jobs of the
	// root. Slices and arrays add "[]", map keys "[key]", map values "[]";
	// pointers add nothing.
	Path string
	// Type is the offending type itself (chan int), not the root's.
	Type reflect.Type
}

// Error names the path and the type that cannot cross.
func (e *TypeError) Error() string {
	return fmt.Sprintf("%s: %v cannot cross a process boundary", e.Path, e.Type)
}

var (
	gobEncoderType    = reflect.TypeFor[gob.GobEncoder]()
	binaryMarshalType = reflect.TypeFor[encoding.BinaryMarshaler]()
)

// Check walks t, the type of values that will cross a process boundary,
// and reports whether it contains a resource (see [Resource]) and whether
// any part of it cannot cross at all, as a *[TypeError] whose path starts
// with root ("In", "Out", a struct type's name).
//
// The walk follows what the codecs of [For] carry: pointers, slices,
// arrays, map keys and values, and exported struct fields. It does not
// descend into:
//   - unexported fields: gob ignores them, so they arrive as zero values
//     (the raw path of a pointer-free type copies them, and a pointer-free
//     type cannot hold a chan or a func);
//   - types that encode themselves (gob.GobEncoder or
//     encoding.BinaryMarshaler, as time.Time does);
//   - resources, which travel by reference beside their descriptors; a
//     resource makes hasResource true;
//   - interface types, whose dynamic values are known only when encoding
//     (their concrete types need gob.Register in every process).
//
// Recursive types are walked once per type, so the walk always ends.
func Check(t reflect.Type, root string) (hasResource bool, err error) {
	c := checker{seen: map[reflect.Type]bool{}}
	err = c.walk(t, root)
	return c.resource, err
}

type checker struct {
	seen     map[reflect.Type]bool
	resource bool
	ifaces   []string // paths of interface-typed parts, "In.V (any)"
	res      []string // paths of resources, "In.F (*os.File)"
}

// ResourcePaths lists the resources in t (see [Resource]) with their paths
// from root and their types ("In.Log (*os.File)"), for error messages such
// as a remote engine's refusal.
func ResourcePaths(t reflect.Type, root string) []string {
	c := checker{seen: map[reflect.Type]bool{}}
	c.walk(t, root)
	return c.res
}

// interfacePaths lists the interface-typed parts of t, for error messages.
func interfacePaths(t reflect.Type, root string) []string {
	c := checker{seen: map[reflect.Type]bool{}}
	c.walk(t, root)
	return c.ifaces
}

func (c *checker) walk(t reflect.Type, path string) error {
	if isResource(t) {
		c.resource = true
		c.res = append(c.res, fmt.Sprintf("%s (%v)", path, t))
		return nil
	}
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return &TypeError{Path: path, Type: t}
	case reflect.Interface:
		c.ifaces = append(c.ifaces, fmt.Sprintf("%s (%v)", path, t))
		return nil
	}
	if t.Implements(gobEncoderType) || reflect.PointerTo(t).Implements(gobEncoderType) ||
		t.Implements(binaryMarshalType) || reflect.PointerTo(t).Implements(binaryMarshalType) {
		return nil
	}
	// Only composite types can recur; marking them before descending is
	// what ends the walk of type T struct{ Next *T }.
	if c.seen[t] {
		return nil
	}
	c.seen[t] = true
	switch t.Kind() {
	case reflect.Pointer:
		return c.walk(t.Elem(), path)
	case reflect.Slice, reflect.Array:
		return c.walk(t.Elem(), path+"[]")
	case reflect.Map:
		if err := c.walk(t.Key(), path+"[key]"); err != nil {
			return err
		}
		return c.walk(t.Elem(), path+"[]")
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if err := c.walk(f.Type, path+"."+f.Name); err != nil {
				return err
			}
		}
	}
	return nil
}
