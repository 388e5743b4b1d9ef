package multiproc

import "context"

// Args2 holds the two arguments of a function registered with [Register2]:
// the Go form of the argument tuples Python's starmap takes.
type Args2[A, B any] struct {
	V1 A
	V2 B
}

// Args3 holds the three arguments of a function registered with [Register3].
type Args3[A, B, C any] struct {
	V1 A
	V2 B
	V3 C
}

// Pack2 returns Args2{a, b}, inferring the types.
func Pack2[A, B any](a A, b B) Args2[A, B] { return Args2[A, B]{a, b} }

// Pack3 returns Args3{a, b, c}, inferring the types.
func Pack3[A, B, C any](a A, b B, c C) Args3[A, B, C] { return Args3[A, B, C]{a, b, c} }

// Register2 registers a two-argument function; call it with [Starmap] (or
// any call that takes a Func) and [Args2] values.
func Register2[A, B, Out any](name string, fn func(context.Context, A, B) (Out, error)) Func[Args2[A, B], Out] {
	return Register(name, func(ctx context.Context, a Args2[A, B]) (Out, error) { return fn(ctx, a.V1, a.V2) })
}

// Register3 registers a three-argument function taking [Args3].
func Register3[A, B, C, Out any](name string, fn func(context.Context, A, B, C) (Out, error)) Func[Args3[A, B, C], Out] {
	return Register(name, func(ctx context.Context, a Args3[A, B, C]) (Out, error) { return fn(ctx, a.V1, a.V2, a.V3) })
}
