package manager

import (
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"reflect"
	"runtime/debug"
	"sync"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/registry"
)

// Registrations are made during package initialisation, before
// multiproc.Main, like the root's Register: every process of a binary
// makes the same ones, so a manager child finds what its parent names.
// A server resolves every name a client sends in its own registry; a
// client can create objects of registered types and call their listed
// methods, never run code of its choosing.
var reg = struct {
	sync.RWMutex
	types   map[string]*customType
	updates map[string]*updateFn
}{types: map[string]*customType{}, updates: map[string]*updateFn{}}

func checkRegName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", errs.ErrDuplicate)
	}
	if registry.Frozen() {
		return fmt.Errorf("%w: manager name %q registered after Main; register in a package-level var so every process registers it during initialisation", errs.ErrLateRegistration, name)
	}
	if reg.types[name] != nil || reg.updates[name] != nil {
		return fmt.Errorf("%w: manager name %q is already registered", errs.ErrDuplicate, name)
	}
	return nil
}

// UpdateFunc names a registered update function for values of type T
// (see [RegisterUpdate]): Dict.Update and Value.Update run it on the
// server, under the object's lock, so a read-modify-write is atomic.
type UpdateFunc[T any] struct{ name string }

// Name returns the name the function was registered under.
func (u UpdateFunc[T]) Name() string { return u.name }

type updateFn struct {
	typ reflect.Type
	// run decodes old (present says whether it exists) with the object's
	// encoding, runs the function and encodes the result.
	run func(raw bool, old []byte, present bool) ([]byte, error)
}

// RegisterUpdate registers fn under name as an update function for values
// of type T. The server calls fn(old, present) with the stored value (the
// zero T and false when a Dict has no such key) and stores its result;
// an error stores nothing and is the caller's. It fails after Main
// (ErrLateRegistration) or for a name already taken (ErrDuplicate).
func RegisterUpdate[T any](name string, fn func(old T, present bool) (T, error)) (UpdateFunc[T], error) {
	if fn == nil {
		return UpdateFunc[T]{}, fmt.Errorf("manager: RegisterUpdate(%q) with a nil function", name)
	}
	if err := checkElem[T]("update value"); err != nil {
		return UpdateFunc[T]{}, err
	}
	reg.Lock()
	defer reg.Unlock()
	if err := checkRegName(name); err != nil {
		return UpdateFunc[T]{}, err
	}
	rawC, gobC := codecFor[T](true), codecFor[T](false)
	reg.updates[name] = &updateFn{typ: reflect.TypeFor[T](), run: func(raw bool, old []byte, present bool) (out []byte, err error) {
		c := gobC
		if raw {
			c = rawC
		}
		var v T
		if present {
			if v, err = c.Decode(old); err != nil {
				return nil, fmt.Errorf("%w: update %q: stored value: %v", ErrTypeMismatch, name, err)
			}
		}
		defer func() {
			if r := recover(); r != nil {
				err = &registry.PanicError{Value: r, Stack: string(debug.Stack())}
			}
		}()
		nv, err := fn(v, present)
		if err != nil {
			return nil, err
		}
		return c.Append(nil, nv)
	}}
	return UpdateFunc[T]{name: name}, nil
}

// MustRegisterUpdate is RegisterUpdate that panics on error, for
// package-level vars.
func MustRegisterUpdate[T any](name string, fn func(old T, present bool) (T, error)) UpdateFunc[T] {
	u, err := RegisterUpdate(name, fn)
	if err != nil {
		panic(err)
	}
	return u
}

func lookupUpdate(name string) *updateFn {
	reg.RLock()
	defer reg.RUnlock()
	return reg.updates[name]
}

// MethodDef is one method a registered type lists (see [Method]).
type MethodDef[T any] struct {
	name    string
	in, out reflect.Type
	call    func(ctx context.Context, obj *T, args [][]byte) ([]byte, error)
}

// Method lists fn as the method name of registered type T: [Call] with
// that name runs fn on the server's object, with In decoded from the
// call's arguments and Out encoded back. One argument decodes as In
// itself; several decode as the fields of In, a struct with exactly that
// many exported fields, in order; no arguments are allowed only when In
// is a struct without fields (struct{}). Too few or too many arguments,
// or arguments that do not decode as their types, fail with ErrArgType
// without running fn. Arguments and results travel as
// self-describing gob values, so a client of another build can call the
// method.
func Method[T, In, Out any](name string, fn func(ctx context.Context, obj *T, in In) (Out, error)) MethodDef[T] {
	inT := reflect.TypeFor[In]()
	return MethodDef[T]{name: name, in: inT, out: reflect.TypeFor[Out](), call: func(ctx context.Context, obj *T, args [][]byte) (res []byte, err error) {
		var in In
		switch {
		case len(args) == 1:
			if err := gobDecode(args[0], &in); err != nil {
				return nil, fmt.Errorf("%w: method %q takes %v: %v", ErrArgType, name, inT, err)
			}
		case len(args) == 0:
			if inT.Kind() != reflect.Struct || inT.NumField() != 0 {
				return nil, fmt.Errorf("%w: method %q takes %v, called with no arguments", ErrArgType, name, inT)
			}
		default:
			v := reflect.ValueOf(&in).Elem()
			if inT.Kind() != reflect.Struct || inT.NumField() != len(args) {
				return nil, fmt.Errorf("%w: method %q takes %v, called with %d arguments", ErrArgType, name, inT, len(args))
			}
			for i, a := range args {
				f := v.Field(i)
				if !f.CanSet() {
					return nil, fmt.Errorf("%w: method %q: field %d of %v is not exported", ErrArgType, name, i, inT)
				}
				p := reflect.New(f.Type())
				if err := gobDecode(a, p.Interface()); err != nil {
					return nil, fmt.Errorf("%w: method %q: argument %d does not decode as %v: %v", ErrArgType, name, i, f.Type(), err)
				}
				f.Set(p.Elem())
			}
		}
		defer func() {
			if r := recover(); r != nil {
				err = &registry.PanicError{Value: r, Stack: string(debug.Stack())}
			}
		}()
		out, err := fn(ctx, obj, in)
		if err != nil {
			return nil, err
		}
		return gobEncode(&out)
	}}
}

type customType struct {
	name    string
	typ     reflect.Type
	newObj  func(ctx context.Context) (*customObj, error)
	methods []methodSig
}

type methodSig struct{ name, in, out string }

// Type is a registered custom type (see [RegisterType]).
type Type[T any] struct{ name string }

// Name returns the name the type was registered under.
func (t Type[T]) Name() string { return t.name }

// RegisterType registers T under name: a client's [Create] with that name
// makes the server call ctor and keep the object, and [Call] runs the
// listed methods on it, one call at a time per object. Only registered
// types can be created, and only their listed methods called. It fails
// after Main (ErrLateRegistration), for a name already taken
// (ErrDuplicate), for two methods of one name, or for a method whose
// argument or result type gob cannot encode (a chan, a func, a struct
// without exported fields, or a type holding one where gob does not skip
// it): such a method could never be called, so the whole registration
// is refused, naming the method.
func RegisterType[T any](name string, ctor func(ctx context.Context) (*T, error), methods ...MethodDef[T]) (Type[T], error) {
	if ctor == nil {
		return Type[T]{}, fmt.Errorf("manager: RegisterType(%q) with a nil constructor", name)
	}
	byName := map[string]*MethodDef[T]{}
	var sigs []methodSig
	for i := range methods {
		m := &methods[i]
		if m.call == nil || m.name == "" {
			return Type[T]{}, fmt.Errorf("manager: RegisterType(%q): method %d has no name or function (use manager.Method)", name, i)
		}
		if byName[m.name] != nil {
			return Type[T]{}, fmt.Errorf("%w: RegisterType(%q): method %q listed twice", errs.ErrDuplicate, name, m.name)
		}
		for _, t := range []struct {
			what string
			t    reflect.Type
		}{{"argument", m.in}, {"result", m.out}} {
			if err := gobCheck(t.t); err != nil {
				return Type[T]{}, fmt.Errorf("manager: RegisterType(%q): method %q: its %s type %v cannot travel as a gob value: %w", name, m.name, t.what, t.t, err)
			}
		}
		byName[m.name] = m
		sigs = append(sigs, methodSig{m.name, m.in.String(), m.out.String()})
	}
	reg.Lock()
	defer reg.Unlock()
	if err := checkRegName(name); err != nil {
		return Type[T]{}, err
	}
	reg.types[name] = &customType{name: name, typ: reflect.TypeFor[T](), methods: sigs, newObj: func(ctx context.Context) (o *customObj, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = &registry.PanicError{Value: r, Stack: string(debug.Stack())}
			}
		}()
		v, err := ctor(ctx)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, fmt.Errorf("manager: the constructor of %q returned nil", name)
		}
		return &customObj{typ: name, sigs: sigs, call: func(ctx context.Context, method string, args [][]byte) ([]byte, error) {
			m := byName[method]
			if m == nil {
				return nil, fmt.Errorf("%w: %q has no method %q", ErrNoSuchMethod, name, method)
			}
			return m.call(ctx, v, args)
		}}, nil
	}}
	return Type[T]{name: name}, nil
}

// MustRegisterType is RegisterType that panics on error, for
// package-level vars.
func MustRegisterType[T any](name string, ctor func(ctx context.Context) (*T, error), methods ...MethodDef[T]) Type[T] {
	t, err := RegisterType(name, ctor, methods...)
	if err != nil {
		panic(err)
	}
	return t
}

// gobCheck reports whether gob can encode values of t (it compiles the
// type's encoder by encoding a zero value).
func gobCheck(t reflect.Type) error {
	return gob.NewEncoder(io.Discard).Encode(reflect.New(t).Interface())
}

func lookupType(name string) *customType {
	reg.RLock()
	defer reg.RUnlock()
	return reg.types[name]
}
