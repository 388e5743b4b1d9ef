// Command pool ports the multiprocessing.Pool examples of the seed articles
// to multiproc: Pool(5).map of x*x over 1..10, Pool(4).map, apply_async with
// a callback (print_result), apply, apply_async with two arguments and
// get(), starmap over argument tuples and map_async with a callback.
//
// The Python it mirrors, in short:
//
//	def f(x): return x**2
//	pool = Pool(5)
//	print(pool.map(f, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))
//
//	with Pool(4) as p:
//	    print(p.map(square, [1, 2, 3, 4]))
//	with Pool(4) as p:
//	    for i in range(4):
//	        p.apply_async(square, args=(i,), callback=print_result)
//	    p.close(); p.join()
//
//	async_result = pool.apply_async(func, args=(arg1, arg2))
//	print("task submitted, running in the background...")
//	result = async_result.get()
//
// Run it with `go run ./examples/pool`.
package main

import (
	"context"
	"fmt"
	"log"
	"math"

	"github.com/multiproc-go/multiproc"
)

// Functions that workers run are registered in package-level vars, so that
// every process of the program (this one and each re-executed worker) has
// them.
var (
	square = multiproc.Register("pool.square", multiproc.Plain(func(x int) int {
		return x * x
	}))
	// power takes two arguments: the apply_async(func, args=(arg1, arg2))
	// and starmap examples call it with multiproc.Args2 tuples.
	power = multiproc.Register2("pool.power", func(_ context.Context, base, exp int) (int, error) {
		if exp < 0 {
			return 0, fmt.Errorf("negative exponent %d", exp)
		}
		return int(math.Pow(float64(base), float64(exp))), nil
	})
)

func main() {
	multiproc.Main() // Go's `if __name__ == "__main__":`; must come first
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	for _, step := range []func(context.Context) error{mapPool5, mapPool4, applyAsyncCallback, mapRange, apply, applyAsyncGet, starmap, mapAsync} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// mapPool5: pool = Pool(5); print(pool.map(f, [1, ..., 10])).
func mapPool5(ctx context.Context) error {
	fmt.Println("== Pool(5).map(f, [1..10])")
	pool, err := multiproc.NewPool(ctx, 5)
	if err != nil {
		return err
	}
	defer pool.Close()
	rel, err := multiproc.Map(ctx, pool, square, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	if err != nil {
		return err
	}
	fmt.Println(rel)
	return pool.Close()
}

// mapPool4: with Pool(4) as p: print(p.map(square, [1, 2, 3, 4])).
func mapPool4(ctx context.Context) error {
	fmt.Println("== Pool(4).map(square, [1 2 3 4])")
	p, err := multiproc.NewPool(ctx, 4)
	if err != nil {
		return err
	}
	defer p.Close()
	result, err := multiproc.Map(ctx, p, square, []int{1, 2, 3, 4})
	if err != nil {
		return err
	}
	fmt.Println(result)
	return p.Close()
}

// applyAsyncCallback: apply_async(square, args=(i,), callback=print_result)
// for i in range(4), then close() and join(). The callbacks print in the
// order the results arrive, which varies from run to run, as in Python.
func applyAsyncCallback(ctx context.Context) error {
	fmt.Println("== Pool(4).apply_async(square, (i,), callback=print_result) for i in range(4)")
	p, err := multiproc.NewPool(ctx, 4)
	if err != nil {
		return err
	}
	defer p.Close()
	printResult := func(result int) { fmt.Printf("Result: %d\n", result) }
	for i := range 4 {
		multiproc.ApplyAsync(ctx, p, square, i).
			OnResult(printResult).
			OnError(func(err error) { fmt.Printf("Error: %v\n", err) })
	}
	// Close is Python's close() plus join(): it waits for the tasks and
	// for their callbacks.
	return p.Close()
}

// mapRange: with Pool(4) as p: print(p.map(worker_function, range(10))).
func mapRange(ctx context.Context) error {
	fmt.Println("== Pool(4).map(worker_function, range(10))")
	p, err := multiproc.NewPool(ctx, 4)
	if err != nil {
		return err
	}
	defer p.Close()
	result, err := multiproc.Map(ctx, p, square, pyRange(10))
	if err != nil {
		return err
	}
	fmt.Println(result)
	return p.Close()
}

// apply: pool.apply(square, (7,)) blocks until the result is there.
func apply(ctx context.Context) error {
	fmt.Println("== Pool(4).apply(square, (7,))")
	pool, err := multiproc.NewPool(ctx, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	result, err := multiproc.Apply(ctx, pool, square, 7)
	if err != nil {
		return err
	}
	fmt.Println(result)
	return pool.Close()
}

// applyAsyncGet: async_result = pool.apply_async(func, args=(arg1, arg2));
// the main process goes on; async_result.get() waits for the result.
func applyAsyncGet(ctx context.Context) error {
	fmt.Println("== Pool(4).apply_async(power, args=(2, 10)).get()")
	pool, err := multiproc.NewPool(ctx, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	asyncResult := multiproc.ApplyAsync(ctx, pool, power, multiproc.Pack2(2, 10))
	fmt.Println("task submitted, running in the background...")
	result, err := asyncResult.Get(ctx)
	if err != nil {
		return err
	}
	fmt.Println(result)
	return pool.Close()
}

// starmap: pool.starmap(power, [(2, 3), (3, 2), (10, 3)]).
func starmap(ctx context.Context) error {
	fmt.Println("== Pool(4).starmap(power, [(2, 3), (3, 2), (10, 3)])")
	pool, err := multiproc.NewPool(ctx, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	args := []multiproc.Args2[int, int]{{V1: 2, V2: 3}, {V1: 3, V2: 2}, {V1: 10, V2: 3}}
	result, err := multiproc.Starmap(ctx, pool, power, args)
	if err != nil {
		return err
	}
	fmt.Println(result)
	return pool.Close()
}

// mapAsync: r = pool.map_async(square, range(10), callback=...); the main
// process goes on; r.get() returns the list.
func mapAsync(ctx context.Context) error {
	fmt.Println("== Pool(4).map_async(square, range(10), callback=print)")
	pool, err := multiproc.NewPool(ctx, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	r := multiproc.MapAsync(ctx, pool, square, pyRange(10)).
		OnResult(func(result []int) { fmt.Println("callback:", result) })
	fmt.Println("map_async returned at once; the main process goes on")
	// Close waits for the map and its callback, so "callback:" is printed
	// before "get:".
	if err := pool.Close(); err != nil {
		return err
	}
	result, err := r.Get(ctx)
	if err != nil {
		return err
	}
	fmt.Println("get:", result)
	return nil
}

// pyRange returns [0, 1, ..., n-1], Python's range(n).
func pyRange(n int) []int {
	xs := make([]int, n)
	for i := range xs {
		xs[i] = i
	}
	return xs
}
