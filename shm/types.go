package shm

import (
	"fmt"
	"reflect"
	"strings"
)

// checkType returns an error wrapping ErrType, naming what in t holds a
// pointer, unless t is fixed-size and pointer-free: a number, a bool, or an
// array or struct of such types. Only such values mean the same thing in
// every process that maps them.
func checkType(what string, t reflect.Type) error {
	path, bad := firstPointer(t, "")
	switch {
	case bad == nil:
		return nil
	case path == "":
		return fmt.Errorf("%w: %s[%s]: %s holds pointers", ErrType, what, t, aKind(t.Kind()))
	default:
		return fmt.Errorf("%w: %s[%s]: %s is %s", ErrType, what, t, path, aKind(bad.Kind()))
	}
}

// aKind is k with its article: "a slice", "an interface".
func aKind(k reflect.Kind) string {
	s := k.String()
	if strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

// firstPointer returns the first part of t that is not pointer-free and the
// path to it from t ("" for t itself), or a nil type if t is pointer-free.
func firstPointer(t reflect.Type, path string) (string, reflect.Type) {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return "", nil
	case reflect.Array:
		return firstPointer(t.Elem(), path+"[0]")
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			p := "field " + f.Name
			if path != "" {
				p = path + "." + f.Name
			}
			if where, bad := firstPointer(f.Type, p); bad != nil {
				return where, bad
			}
		}
		return "", nil
	}
	return path, t
}
