package errs

import (
	"fmt"
	"reflect"
	"sync"
)

// A registered error type travels inside the envelope as its name and its
// encoding, so the receiving process can rebuild the value and errors.As
// finds it. Both ends run the same binary, so the same types are
// registered under the same names in both.
type errorType struct {
	name   string
	encode func(dst []byte, err error) ([]byte, error)
	decode func(src []byte) (error, error)
}

var errorTypes = struct {
	sync.RWMutex
	byName map[string]*errorType
	byType map[reflect.Type]*errorType
}{byName: map[string]*errorType{}, byType: map[reflect.Type]*errorType{}}

// TypeName is the name a registered error type travels under: its package
// path and name, with a "*" for a pointer type, so that types of the same
// name in two packages stay apart.
func TypeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer && t.Name() == "" {
		return "*" + TypeName(t.Elem())
	}
	if t.Name() == "" || t.PkgPath() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}

// RegisterType makes values whose dynamic type is t (a concrete type that
// implements error) travel in error envelopes: encode appends a value's
// encoding, decode rebuilds a value from it. It fails with an error
// wrapping ErrDuplicate if t is registered already. Registration must run
// during package initialisation, the same in every process; the caller
// enforces that (this package cannot see whether Main ran).
func RegisterType(t reflect.Type, encode func(dst []byte, err error) ([]byte, error), decode func(src []byte) (error, error)) error {
	if t == nil || t.Kind() == reflect.Interface {
		return fmt.Errorf("multiproc: RegisterErrorType[%v]: need a concrete type, not an interface", t)
	}
	name := TypeName(t)
	errorTypes.Lock()
	defer errorTypes.Unlock()
	if _, ok := errorTypes.byType[t]; ok {
		return fmt.Errorf("%w: error type %v is already registered", ErrDuplicate, t)
	}
	if _, ok := errorTypes.byName[name]; ok {
		return fmt.Errorf("%w: error type name %q is already registered", ErrDuplicate, name)
	}
	et := &errorType{name: name, encode: encode, decode: decode}
	errorTypes.byName[name] = et
	errorTypes.byType[t] = et
	return nil
}

func lookupType(t reflect.Type) *errorType {
	errorTypes.RLock()
	defer errorTypes.RUnlock()
	return errorTypes.byType[t]
}

func lookupName(name string) *errorType {
	errorTypes.RLock()
	defer errorTypes.RUnlock()
	return errorTypes.byName[name]
}
