package multiproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/multiproc-go/multiproc"
)

// openMany opens /dev/null n times and closes them all again.
var openMany = multiproc.Register("example.openMany", func(_ context.Context, n int) (int, error) {
	var fs []*os.File
	defer func() {
		for _, f := range fs {
			f.Close()
		}
	}()
	for range n {
		f, err := os.Open("/dev/null")
		if err != nil {
			return len(fs), err
		}
		fs = append(fs, f)
	}
	return n, nil
})

var exitWith = multiproc.Register("example.exitWith", multiproc.Plain(func(code int) int {
	os.Exit(code)
	return 0
}))

// A pool whose workers may hold at most 64 descriptors: a task that opens
// more gets EMFILE, which its caller recognises with errors.Is (both as
// ErrFDLimit and as syscall.EMFILE), and the worker lives on.
func ExampleWorkerLimits() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 1, multiproc.WorkerLimits(multiproc.Limits{OpenFiles: 64}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	_, err = multiproc.Apply(ctx, pool, openMany, 1000)
	fmt.Println("ErrFDLimit:", errors.Is(err, multiproc.ErrFDLimit))
	fmt.Println("EMFILE:", errors.Is(err, syscall.EMFILE))
	fmt.Println("worker died:", errors.Is(err, multiproc.ErrWorkerDied))
	n, err := multiproc.Apply(ctx, pool, openMany, 10)
	fmt.Println(n, err, pool.Stats().Restarts)
	// Output:
	// ErrFDLimit: true
	// EMFILE: true
	// worker died: false
	// 10 <nil> 0
}

// A task that calls os.Exit kills its worker; the task's error says so,
// with the exact code, even where it is one the library uses itself.
func ExampleExitError_cause() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	_, err = multiproc.Apply(ctx, pool, exitWith, 3)
	var exit *multiproc.ExitError
	if errors.As(err, &exit) {
		fmt.Printf("cause: %v, code %d\n", exit.Cause, exit.Code)
	}
	fmt.Println("ErrExit:", errors.Is(err, multiproc.ErrExit))
	// Output:
	// cause: os.Exit, code 3
	// ErrExit: true
}

// Limits are checked when the pool is made: a value that cannot work
// fails NewPool with an error that names the field and matches
// ErrInvalidLimits, before any worker starts.
func ExampleWorkerLimits_invalid() {
	ctx := context.Background()
	_, err := multiproc.NewPool(ctx, 1, multiproc.WorkerLimits(multiproc.Limits{
		Memory:     64 << 20,
		GoMemLimit: 128 << 20, // the garbage collector would never get to work before the cap kills
	}))
	fmt.Println("ErrInvalidLimits:", errors.Is(err, multiproc.ErrInvalidLimits))
	fmt.Println(err)
	// Output:
	// ErrInvalidLimits: true
	// multiproc: Limits.GoMemLimit: 134217728 is above Memory 67108864: the kernel would kill the worker before the garbage collector worked harder
}
