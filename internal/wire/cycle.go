package wire

import (
	"fmt"
	"reflect"
	"sync"
)

// encoding/gob follows pointers without remembering them: a value that
// holds a cycle (a node pointing back at its list) makes it recurse until
// the goroutine's stack overflows, a fatal error that kills the process.
// The gob codec therefore looks for cycles first, in the values of the
// types that can hold one: types that recur (a struct reaching itself
// through a pointer, slice or map) and types with interface parts.

var mayCycleCache sync.Map // reflect.Type -> bool

// encodesItself reports whether gob hands values of t to their own
// encoder rather than walking them.
func encodesItself(t reflect.Type) bool {
	return t.Implements(gobEncoderType) || t.Implements(binaryMarshalType) ||
		reflect.PointerTo(t).Implements(gobEncoderType) || reflect.PointerTo(t).Implements(binaryMarshalType)
}

// mayCycle reports whether a value of t can hold a pointer cycle.
func mayCycle(t reflect.Type) bool {
	if v, ok := mayCycleCache.Load(t); ok {
		return v.(bool)
	}
	r := typeMayCycle(t, map[reflect.Type]bool{})
	mayCycleCache.Store(t, r)
	return r
}

func typeMayCycle(t reflect.Type, onPath map[reflect.Type]bool) bool {
	if encodesItself(t) {
		return false
	}
	if onPath[t] {
		return true
	}
	onPath[t] = true
	defer delete(onPath, t)
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return typeMayCycle(t.Elem(), onPath)
	case reflect.Map:
		return typeMayCycle(t.Key(), onPath) || typeMayCycle(t.Elem(), onPath)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && typeMayCycle(f.Type, onPath) {
				return true
			}
		}
	}
	return false
}

// visit is a pointer, slice or map on the path being walked.
type visit struct {
	ptr uintptr
	typ reflect.Type
	n   int // a slice's length
}

// cycleError returns an error naming where v (of the type named root)
// points back into itself, or nil if it holds no cycle.
func cycleError(v reflect.Value, root string) error {
	if path := findCycle(v, root, map[visit]bool{}); path != "" {
		return fmt.Errorf("the value holds a cycle: %s leads back to a value that contains it, and gob cannot encode cycles (break the cycle, or implement gob.GobEncoder)", path)
	}
	return nil
}

func findCycle(v reflect.Value, path string, onPath map[visit]bool) string {
	if !v.IsValid() {
		return ""
	}
	if v.CanInterface() && encodesItself(v.Type()) {
		return ""
	}
	enter := func(k visit) bool {
		if onPath[k] {
			return false
		}
		onPath[k] = true
		return true
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return ""
		}
		k := visit{v.Pointer(), v.Type(), 0}
		if !enter(k) {
			return path
		}
		defer delete(onPath, k)
		return findCycle(v.Elem(), path, onPath)
	case reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return findCycle(v.Elem(), path, onPath)
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				if p := findCycle(v.Field(i), path+"."+f.Name, onPath); p != "" {
					return p
				}
			}
		}
	case reflect.Slice:
		if v.IsNil() || v.Len() == 0 {
			return ""
		}
		k := visit{v.Pointer(), v.Type(), v.Len()}
		if !enter(k) {
			return path
		}
		defer delete(onPath, k)
		fallthrough
	case reflect.Array:
		if !typeMayCycle(v.Type().Elem(), map[reflect.Type]bool{}) {
			return ""
		}
		for i := range v.Len() {
			if p := findCycle(v.Index(i), fmt.Sprintf("%s[%d]", path, i), onPath); p != "" {
				return p
			}
		}
	case reflect.Map:
		if v.IsNil() || v.Len() == 0 {
			return ""
		}
		k := visit{v.Pointer(), v.Type(), 0}
		if !enter(k) {
			return path
		}
		defer delete(onPath, k)
		it := v.MapRange()
		for it.Next() {
			if p := findCycle(it.Value(), fmt.Sprintf("%s[%v]", path, it.Key()), onPath); p != "" {
				return p
			}
		}
	}
	return ""
}
