package multiproc

import (
	"context"
	"fmt"

	"github.com/multiproc-go/multiproc/internal/registry"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Func is a handle to a registered function that takes In and returns Out.
// Everything that runs work in other processes takes a Func, so argument and
// result types are checked by the compiler. The zero Func is not registered;
// using it fails with [ErrNotRegistered]. A Func is a small value, safe to
// copy and to use from many goroutines.
type Func[In, Out any] struct {
	e   *registry.Entry
	in  wire.Value[In]
	out wire.Value[Out]
}

// Name returns the name the function was registered under.
func (f Func[In, Out]) Name() string {
	if f.e == nil {
		return ""
	}
	return f.e.Name
}

func (f Func[In, Out]) check() error {
	if f.e == nil {
		return fmt.Errorf("%w: zero Func (obtain one from Register in a package-level var)", ErrNotRegistered)
	}
	return nil
}

// Register registers fn under name so that child processes can run it, and
// returns its handle. Call it in a package-level var declaration, so every
// process of the program (the parent and each re-executed child) registers
// the same functions during initialisation:
//
//	var square = multiproc.Register("square", func(_ context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
// Register panics if the registration could not be made the same way in
// every process: with an error wrapping [ErrDuplicate] or
// [ErrLateRegistration] that names the function if the name is taken or if
// Main already ran, and with an error naming the offending part if In or
// Out cannot cross a process boundary at all: a chan, a func or an
// unsafe.Pointer, at the top level or inside a slice, array, map, pointer
// or exported struct field ("In.Jobs[].Done: chan int cannot cross a
// process boundary"). fn must not depend on state set up by main: a child
// runs it with only what package initialisation built, plus its argument.
//
// Arguments and results travel by value. Pointer-free types (numbers,
// arrays and structs of them) are copied as memory, unexported fields
// included; strings and byte slices use a length-prefixed form, and so do
// the strings and byte slices of a struct whose other fields are
// pointer-free (such a struct, too, carries its unexported fields); other
// types, and every type that implements gob.GobEncoder, use encoding/gob, which carries only exported fields: unexported
// ones arrive as zero values; a gob value that holds a pointer cycle (a
// list node pointing back at its list) cannot be sent, and the call fails
// with an error naming where the cycle closes. A type that encodes itself (gob.GobEncoder,
// encoding.BinaryMarshaler, such as time.Time) is not looked into. An
// interface-typed value cannot be checked here, since its concrete type is
// known only at run time: pass every concrete type it may hold to
// gob.Register in an init function or package-level var, before Main, so
// that every process knows it; otherwise the call fails with an error
// naming the interface and the missing concrete type.
//
// Resources travel too, wherever they are in the argument or the result
// (a field at any depth, slice and map elements, an interface-typed
// position such as a net.Listener field): *os.File, the net package's TCP,
// unix and UDP connections and listeners, and the project's shared memory
// (package shm) and later locks, queues and pipes. Their descriptors go
// beside the bytes (ExtraFiles to a Process, SCM_RIGHTS to a pool worker).
// Passing duplicates a descriptor: the sender keeps its own and may close
// it as soon as the call returns. A file, connection or listener (an ipc
// Conn too) that arrives belongs to the receiving code: a Process target
// must close it; in a pool task the worker closes it once the task's
// result is sent (as CPython's garbage collection would), so a task that
// keeps using it after returning (a goroutine) must not, and one that
// returns it in its result hands it back intact. An initializer's stay
// open for the worker's life. A resource
// with an identity (shared memory, locks) arrives in a pool worker once
// and is reused by every later task there; do not close it in a task, and
// do not use it after the task returns (the parent may release it); a
// task that closes it anyway makes its worker receive it afresh for the
// next task. One pool task (a Map chunk counts as one) carries at most
// 1024 descriptors (a *TooLargeError otherwise: lower Chunksize). A
// pool whose backend cannot carry descriptors (the cluster) refuses an
// argument holding one with an error matching [ErrNotTransferable] that
// names where it is ("main.Batch.Jobs[3].Out").
func Register[In, Out any](name string, fn func(context.Context, In) (Out, error)) Func[In, Out] {
	e, err := registry.Add(name, fn)
	if err != nil {
		panic(err)
	}
	return Func[In, Out]{e: e, in: wire.For[In](), out: wire.For[Out]()}
}

// Plain adapts a function with no context and no error for [Register].
func Plain[In, Out any](fn func(In) Out) func(context.Context, In) (Out, error) {
	return func(_ context.Context, x In) (Out, error) { return fn(x), nil }
}

// NoContext adapts a function that takes no context for [Register].
func NoContext[In, Out any](fn func(In) (Out, error)) func(context.Context, In) (Out, error) {
	return func(_ context.Context, x In) (Out, error) { return fn(x) }
}

// NoResult adapts a function that returns only an error (Python's target
// that returns None) for [Register]; its result type is struct{}.
func NoResult[In any](fn func(context.Context, In) error) func(context.Context, In) (struct{}, error) {
	return func(ctx context.Context, x In) (struct{}, error) { return struct{}{}, fn(ctx, x) }
}

// Runner is the process-subclass form, Go's version of Python's
// `class P(Process): def run(self)`: a struct type whose exported fields
// travel to the child and whose Run method runs there. Register the type
// with [RegisterProcess] and start it with [NewProcessOf].
type Runner interface {
	// Run runs in the child with the struct's exported fields as the parent
	// set them; what it leaves in them travels back after Join. A returned
	// error (or a panic) makes the child exit with code 1 and reaches the
	// parent's Join as a *RemoteError.
	Run(ctx context.Context) error
}

// ProcessType is the handle of a registered [Runner] type.
type ProcessType[T any] struct{ name string }

// Name returns the name the type was registered under.
func (t ProcessType[T]) Name() string { return t.name }

// RegisterProcess registers the Runner type T (whose Run method has a
// pointer receiver) under name. Like [Register], call it in a package-level
// var; it panics on a duplicate or late registration, and when an exported
// field of T cannot cross a process boundary (a chan, a func, an
// unsafe.Pointer, also inside containers). Exported fields travel to the
// child and back after Run; unexported ones keep the parent's values
// after Join (in the child they are zero, unless T is copied directly:
// pointer-free, or pointer-free but for strings and byte slices; see
// [Register] for the encodings):
//
//	var _ = multiproc.RegisterProcess[MyProcess]("my-process")
func RegisterProcess[T any, PT interface {
	*T
	Runner
}](name string) ProcessType[T] {
	if err := registry.AddType[T, PT](name); err != nil {
		panic(err)
	}
	return ProcessType[T]{name: name}
}
