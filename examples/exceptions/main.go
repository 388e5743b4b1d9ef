// Command exceptions shows how failures in pool workers reach the caller,
// porting the seed articles' advice that "if a worker process raises an
// exception, that error is propagated back to the main process when
// retrieving the results", and going beyond Python when a worker dies.
//
//	def sqrt(x):
//	    if x < 0:
//	        raise ValueError(f'negative number: {x}')
//	    return math.sqrt(x)
//
//	with Pool(2) as pool:
//	    try:
//	        pool.apply(sqrt, (-4,))
//	    except ValueError as e:      # the remote traceback is e.__cause__
//	        print('caught', e)
//
// An error a task returns reaches the caller as a *multiproc.RemoteError
// that carries the remote type, message and pid, and for a panic the remote
// stack; errors.Is matches sentinels registered with multiproc.RegisterError,
// as `except ValueError` matches the exception's class.
//
// Better than Python: when a worker process dies in the middle of a task
// (here os.Exit; a segfault, an OOM kill or SIGKILL are the same), CPython's
// Pool replaces the worker but loses the task, so its get() waits forever,
// and a ProcessPoolExecutor breaks for good (BrokenProcessPool for every
// pending future). A multiproc pool fails only that task, with an error
// matching multiproc.ErrWorkerDied that carries the exit code, starts a new
// worker and carries on with every other task.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"os"
	"strings"

	"github.com/multiproc-go/multiproc"
)

// ErrNegative is a sentinel error that keeps its identity across the
// process boundary because it is registered, like Register, in a
// package-level var.
var ErrNegative = multiproc.RegisterError(errors.New("negative number"))

var (
	sqrt = multiproc.Register("exceptions.sqrt", multiproc.NoContext(func(x float64) (float64, error) {
		if x < 0 {
			return 0, fmt.Errorf("sqrt(%g): %w", x, ErrNegative)
		}
		return math.Sqrt(x), nil
	}))
	// third panics on a short slice: a bug in the task's code.
	third = multiproc.Register("exceptions.third", multiproc.Plain(func(xs []int) int {
		return xs[2]
	}))
	// work squares x, except that -1 makes the worker process exit at once
	// with status 3, as a crash would.
	work = multiproc.Register("exceptions.work", multiproc.Plain(func(x int) int {
		if x == -1 {
			os.Exit(3)
		}
		return x * x
	}))
)

func main() {
	multiproc.Main() // Go's `if __name__ == "__main__":`; must come first
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	pool, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	for _, step := range []func(context.Context, *multiproc.Pool) error{returned, panicked, mapFails, errorCallback, workerDies} {
		if err := step(ctx, pool); err != nil {
			return err
		}
	}
	return pool.Close()
}

// returned: an error returned by the task, matched with errors.Is and
// inspected with errors.As.
func returned(ctx context.Context, pool *multiproc.Pool) error {
	fmt.Println("== pool.apply(sqrt, (-4,)): the task returns an error")
	_, err := multiproc.Apply(ctx, pool, sqrt, -4)
	fmt.Println("caught:", err)
	fmt.Println("errors.Is(err, ErrNegative):", errors.Is(err, ErrNegative))
	var re *multiproc.RemoteError
	if !errors.As(err, &re) {
		return fmt.Errorf("want a *multiproc.RemoteError, got %T: %w", err, err)
	}
	fmt.Println("remote function:", re.Func)
	fmt.Println("remote type:", re.Type)
	fmt.Println("remote message:", re.Message)
	fmt.Println("raised in another process:", re.Pid != os.Getpid())
	return nil
}

// panicked: a panic in the task reaches the caller with the worker's stack,
// Python's remote traceback.
func panicked(ctx context.Context, pool *multiproc.Pool) error {
	fmt.Println("== pool.apply(third, ([1, 2],)): the task panics")
	_, err := multiproc.Apply(ctx, pool, third, []int{1, 2})
	fmt.Println("caught:", err)
	var re *multiproc.RemoteError
	if !errors.As(err, &re) {
		return fmt.Errorf("want a *multiproc.RemoteError, got %T: %w", err, err)
	}
	fmt.Println("panic:", re.Panic)
	fmt.Println("remote stack, from the panic to the task:")
	for _, line := range taskFrames(re.Stack) {
		fmt.Println("   ", line)
	}
	return nil
}

// taskFrames returns the lines of a goroutine stack from the panic down to
// the first frame in this file, leaving out the recovery's frames above and
// the worker's own frames below.
func taskFrames(stack string) []string {
	lines := strings.Split(strings.TrimSpace(stack), "\n")
	from := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "panic(") && from == 0 {
			from = i
		}
		if strings.Contains(l, "examples/exceptions/main.go") {
			return lines[from : i+1]
		}
	}
	return lines
}

// mapFails: map raises the first error among its items, as Python's does.
func mapFails(ctx context.Context, pool *multiproc.Pool) error {
	fmt.Println("== pool.map(sqrt, [4, 1, -9, 16])")
	_, err := multiproc.Map(ctx, pool, sqrt, []float64{4, 1, -9, 16})
	fmt.Println("caught:", err)
	fmt.Println("errors.Is(err, ErrNegative):", errors.Is(err, ErrNegative))
	return nil
}

// errorCallback: apply_async(sqrt, (-1,), error_callback=print).
func errorCallback(ctx context.Context, pool *multiproc.Pool) error {
	fmt.Println("== pool.apply_async(sqrt, (-1,), callback=..., error_callback=...)")
	done := make(chan struct{})
	multiproc.ApplyAsync(ctx, pool, sqrt, -1).
		OnResult(func(v float64) { fmt.Println("callback:", v); close(done) }).
		OnError(func(err error) { fmt.Println("error_callback:", err); close(done) })
	<-done
	return nil
}

// workerDies: one task makes its worker exit while nine others run. Only
// that task fails; the pool replaces the worker and goes on.
func workerDies(ctx context.Context, pool *multiproc.Pool) error {
	fmt.Println("== apply_async(work, (x,)) for x in [0..4, -1, 5..8]: -1 makes the worker exit(3)")
	xs := []int{0, 1, 2, 3, 4, -1, 5, 6, 7, 8}
	var results []*multiproc.AsyncResult[int]
	for _, x := range xs {
		results = append(results, multiproc.ApplyAsync(ctx, pool, work, x))
	}
	var squares []int
	for i, r := range results {
		v, err := r.Get(ctx)
		switch {
		case err == nil:
			squares = append(squares, v)
		case errors.Is(err, multiproc.ErrWorkerDied):
			fmt.Printf("work(%d): %v\n", xs[i], err)
			var ee *multiproc.ExitError
			if errors.As(err, &ee) {
				fmt.Println("exit code:", ee.Code)
			}
		default:
			return err
		}
	}
	fmt.Println("the other tasks:", squares)
	// In CPython the pool is now stuck (Pool) or broken (executor); here it
	// has a new worker and takes more work.
	again, err := multiproc.Map(ctx, pool, work, []int{10, 11, 12})
	if err != nil {
		return err
	}
	fmt.Println("the pool keeps working: map(work, [10, 11, 12]) =", again)
	s := pool.Stats()
	fmt.Printf("stats: %d task died with its worker, %d worker restarted\n", s.Died, s.Restarts)
	return nil
}
