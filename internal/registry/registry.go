// Package registry holds the functions and process types that children can
// run by name. Every process of one binary builds the same registry during
// package initialisation, which is what lets a re-executed child find the
// code its parent names. The registry is frozen when multiproc.Main runs;
// later registrations fail, because a child could not have made them.
package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/pages"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// PanicError is a panic recovered in a registered function.
type PanicError struct {
	Value any
	Stack string
}

// Error prints the panic value, as fmt.Sprint does.
func (p *PanicError) Error() string { return fmt.Sprint(p.Value) }

// Unwrap lets errors.Is see through a panic whose value is an error.
func (p *PanicError) Unwrap() error {
	if err, ok := p.Value.(error); ok {
		return err
	}
	return nil
}

// AppendFailure appends to dst the error envelope of a registered
// function's failure in this process: a *PanicError travels as a panic
// with its stack, any other error as itself.
func AppendFailure(dst []byte, fn string, err error) []byte {
	return AppendFailureOutput(dst, fn, err, "")
}

// AppendFailureOutput is [AppendFailure] with the end of the output the
// task printed (a pool's output capture), carried in the envelope.
func AppendFailureOutput(dst []byte, fn string, err error, output string) []byte {
	var pe *PanicError
	if errors.As(err, &pe) {
		return errs.AppendErrorOutput(dst, fn, os.Getpid(), pe, true, pe.Stack, output)
	}
	return errs.AppendErrorOutput(dst, fn, os.Getpid(), err, false, "", output)
}

// Entry is one registered function, with its typed codecs erased behind
// closures over encoded bytes.
type Entry struct {
	Name              string
	In                reflect.Type
	Out               reflect.Type
	InCodec, OutCodec string
	// InHasResource and OutHasResource report whether the argument or the
	// result type contains a resource (see wire.Resource): its values need
	// descriptors beside their bytes, so an engine that cannot carry
	// descriptors must refuse them with ErrNotTransferable.
	InHasResource, OutHasResource bool
	// Call decodes one argument, runs the function and appends the encoded
	// result to dst. A returned error is the function's (a *PanicError for
	// a panic) or a decoding/encoding failure. Resources in the argument
	// come from wire.IncomingFrom(ctx); those of the result go to
	// wire.OutgoingFrom(ctx) (without one, a result that holds descriptors
	// fails to encode).
	Call func(ctx context.Context, arg, dst []byte) ([]byte, error)
	// CallChunk decodes a slice of arguments and runs the function on each
	// in order, appending the encoded slice of results to dst. It stops at
	// the first failure: n is the number of results encoded and err that
	// item's error.
	CallChunk func(ctx context.Context, args, dst []byte) (out []byte, n int, err error)
}

// Runner is the process-subclass form: a struct whose exported fields travel
// to the child and whose Run method runs there.
type Runner interface {
	Run(ctx context.Context) error
}

// Type is a registered Runner type.
type Type struct {
	Name string
	Type reflect.Type // the struct type (not the pointer)
	// HasResource reports whether the type's exported fields contain a
	// resource (see wire.Resource).
	HasResource bool
	// Run decodes the struct, runs it, and appends the struct's encoding
	// after Run to dst, so the parent can see what Run left in its fields.
	Run func(ctx context.Context, state, dst []byte) ([]byte, error)
	// Encode encodes a *T given as a Runner, its resources into out.
	Encode func(dst []byte, r Runner, out *wire.Outgoing) ([]byte, error)
	// Decode decodes state into the *T given as a Runner, taking its
	// resources from in.
	Decode func(state []byte, r Runner, in wire.Incoming) error
}

var (
	frozen atomic.Bool
	mu     sync.RWMutex
	funcs  = map[string]*Entry{}
	types  = map[string]*Type{}
	byType = map[reflect.Type]*Type{}
)

// Freeze ends registration. multiproc.Main calls it.
func Freeze() { frozen.Store(true) }

// Frozen reports whether Freeze was called.
func Frozen() bool { return frozen.Load() }

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", errs.ErrDuplicate)
	}
	if frozen.Load() {
		return fmt.Errorf("%w: %q registered after Main; register in a package-level var so every process registers it during initialisation", errs.ErrLateRegistration, name)
	}
	if _, ok := funcs[name]; ok {
		return fmt.Errorf("%w: function name %q is already registered", errs.ErrDuplicate, name)
	}
	if _, ok := types[name]; ok {
		return fmt.Errorf("%w: name %q is already registered as a process type", errs.ErrDuplicate, name)
	}
	return nil
}

// Add registers fn under name. It fails, without registering anything, if
// the name is empty or taken (ErrDuplicate), if Freeze was called
// (ErrLateRegistration), if fn is nil, or if In or Out cannot cross a
// process boundary (a *wire.TypeError naming the part: a chan, a func or
// an unsafe.Pointer in the type or its exported fields).
func Add[In, Out any](name string, fn func(context.Context, In) (Out, error)) (*Entry, error) {
	if fn == nil {
		return nil, fmt.Errorf("multiproc: Register(%q) with a nil function", name)
	}
	mu.Lock()
	defer mu.Unlock()
	if err := checkName(name); err != nil {
		return nil, err
	}
	inRes, err := wire.Check(reflect.TypeFor[In](), "In")
	if err != nil {
		return nil, fmt.Errorf("multiproc: Register(%q): argument type %v: %w", name, reflect.TypeFor[In](), err)
	}
	outRes, err := wire.Check(reflect.TypeFor[Out](), "Out")
	if err != nil {
		return nil, fmt.Errorf("multiproc: Register(%q): result type %v: %w", name, reflect.TypeFor[Out](), err)
	}
	in, out := wire.For[In](), wire.For[Out]()
	e := &Entry{
		Name: name, In: reflect.TypeFor[In](), Out: reflect.TypeFor[Out](),
		InCodec: in.Name(), OutCodec: out.Name(),
		InHasResource: inRes, OutHasResource: outRes,
	}
	e.Call = func(ctx context.Context, arg, dst []byte) (res []byte, err error) {
		x, err := wire.DecodeIn(in, arg, wire.IncomingFrom(ctx))
		if err != nil {
			return dst, fmt.Errorf("multiproc: %q: decoding argument: %w", name, err)
		}
		defer func() {
			if r := recover(); r != nil {
				res, err = dst, &PanicError{Value: r, Stack: string(debug.Stack())}
			}
		}()
		y, err := fn(ctx, x)
		if err != nil {
			return dst, err
		}
		res, err = wire.AppendOut(out, dst, y, wire.OutgoingFrom(ctx))
		if err != nil {
			return dst, fmt.Errorf("multiproc: %q: encoding result: %w", name, err)
		}
		return res, nil
	}
	// Chunks run one after another in a worker; reusing the argument and
	// result slices saves two allocations (and their zeroing) per chunk.
	type scratch struct {
		xs []In
		ys []Out
	}
	var pool sync.Pool
	e.CallChunk = func(ctx context.Context, args, dst []byte) (res []byte, n int, err error) {
		sc, _ := pool.Get().(*scratch)
		if sc == nil {
			sc = new(scratch)
		}
		defer func() {
			clear(sc.xs) // drop references held by pointerful types
			clear(sc.ys)
			sc.xs, sc.ys = sc.xs[:0], sc.ys[:0]
			pool.Put(sc)
		}()
		// Raw arguments are used where they lie when aligned (the worker
		// keeps task payloads 8-byte aligned): no copy at all.
		xs, ok := []In(nil), false
		if raw, isRaw := in.(wire.RawSlice[In]); isRaw {
			xs, ok = raw.View(args)
		}
		if !ok {
			xs, err = wire.DecodeSliceIn(in, sc.xs[:0], args, wire.IncomingFrom(ctx))
			sc.xs = xs
			if err != nil {
				return dst, 0, fmt.Errorf("multiproc: %q: decoding arguments: %w", name, err)
			}
		}
		ys := sc.ys[:0]
		if cap(ys) < len(xs) {
			// make, not slices.Grow: Grow zeroes (and so faults in) the new
			// memory, make does not on a fresh span, and a large new
			// buffer about to be written through is populated in bulk
			// (internal/pages).
			ys = make([]Out, 0, len(xs))
			pages.Populate(ys[:len(xs)])
		}
		defer func() {
			if r := recover(); r != nil {
				err = &PanicError{Value: r, Stack: string(debug.Stack())}
			}
			sc.ys = ys
			if raw, isRaw := out.(wire.RawSlice[Out]); isRaw {
				dst = growPopulated(dst, len(raw.SliceBytes(ys[:n]))+8)
			}
			var eerr error
			res, eerr = wire.AppendSliceOut(out, dst, ys[:n], wire.OutgoingFrom(ctx))
			if eerr != nil {
				res, n = dst, 0
				if err == nil {
					err = fmt.Errorf("multiproc: %q: encoding results: %w", name, eerr)
				}
			}
		}()
		for i := range xs {
			y, ferr := fn(ctx, xs[i])
			if ferr != nil {
				return dst, i, ferr
			}
			ys = append(ys, y)
			n = i + 1
		}
		return dst, n, nil
	}
	funcs[name] = e
	return e, nil
}

// growPopulated returns dst with room for n more bytes. A large new buffer
// is made, populated (internal/pages) and the old bytes copied in, instead
// of growing through append, whose fresh pages would be faulted in one at
// a time by the write that follows.
func growPopulated(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n || n < pages.Min {
		return dst
	}
	nd := make([]byte, len(dst), len(dst)+n)
	pages.Populate(nd[:len(dst)+n])
	copy(nd, dst)
	return nd
}

// AddType registers the Runner type T (used through *T) under name. It
// fails like [Add]: on an empty or taken name or type, after Freeze, and
// when an exported field of T cannot cross a process boundary (the
// *wire.TypeError's path starts with T's name).
func AddType[T any, PT interface {
	*T
	Runner
}](name string) error {
	mu.Lock()
	defer mu.Unlock()
	if err := checkName(name); err != nil {
		return err
	}
	rt := reflect.TypeFor[T]()
	if prev, ok := byType[rt]; ok {
		return fmt.Errorf("%w: type %v is already registered as %q", errs.ErrDuplicate, rt, prev.Name)
	}
	hasRes, err := wire.Check(rt, rt.String())
	if err != nil {
		return fmt.Errorf("multiproc: RegisterProcess(%q): %w", name, err)
	}
	c := wire.For[T]()
	t := &Type{Name: name, Type: rt, HasResource: hasRes}
	t.Encode = func(dst []byte, r Runner, out *wire.Outgoing) ([]byte, error) {
		return wire.AppendOut(c, dst, *r.(PT), out)
	}
	// Decode copies back only the exported fields: those are what travels
	// (the raw codec carries unexported ones too, gob does not), and the
	// parent's unexported state (a mutex, a logger) must survive Join.
	var exported []int
	if rt.Kind() == reflect.Struct {
		for i := range rt.NumField() {
			if rt.Field(i).IsExported() {
				exported = append(exported, i)
			}
		}
	}
	t.Decode = func(state []byte, r Runner, in wire.Incoming) error {
		v, err := wire.DecodeIn(c, state, in)
		if err != nil {
			return err
		}
		if rt.Kind() != reflect.Struct {
			*r.(PT) = v
			return nil
		}
		dst, src := reflect.ValueOf(r).Elem(), reflect.ValueOf(&v).Elem()
		for _, i := range exported {
			dst.Field(i).Set(src.Field(i))
		}
		return nil
	}
	t.Run = func(ctx context.Context, state, dst []byte) (res []byte, err error) {
		v, err := wire.DecodeIn(c, state, wire.IncomingFrom(ctx))
		if err != nil {
			return dst, fmt.Errorf("multiproc: %q: decoding process state: %w", name, err)
		}
		defer func() {
			if r := recover(); r != nil {
				res, err = dst, &PanicError{Value: r, Stack: string(debug.Stack())}
			}
		}()
		if err := PT(&v).Run(ctx); err != nil {
			return dst, err
		}
		res, err = wire.AppendOut(c, dst, v, wire.OutgoingFrom(ctx))
		if err != nil {
			return dst, fmt.Errorf("multiproc: %q: encoding process state after Run: %w", name, err)
		}
		return res, nil
	}
	types[name] = t
	byType[rt] = t
	return nil
}

// Lookup finds a registered function.
func Lookup(name string) (*Entry, error) {
	mu.RLock()
	e, ok := funcs[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q is not registered in this process (register it in a package-level var, the same in every process of the program)", errs.ErrNotRegistered, name)
	}
	return e, nil
}

// LookupType finds a registered Runner type by name.
func LookupType(name string) (*Type, error) {
	mu.RLock()
	t, ok := types[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: process type %q is not registered in this process", errs.ErrNotRegistered, name)
	}
	return t, nil
}

// TypeOf finds the registration of r's dynamic type (a *T).
func TypeOf(r Runner) (*Type, error) {
	rt := reflect.TypeOf(r)
	if rt == nil || rt.Kind() != reflect.Pointer {
		return nil, fmt.Errorf("%w: process type %T: pass a pointer to a registered struct type", errs.ErrNotRegistered, r)
	}
	mu.RLock()
	t, ok := byType[rt.Elem()]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: process type %v is not registered (call multiproc.RegisterProcess in a package-level var)", errs.ErrNotRegistered, rt.Elem())
	}
	return t, nil
}
