// Command isolation shows a leaky task contained by a memory cap: each
// worker of the pool lives in a cgroup of its own with a hard memory limit
// (multiproc.Limits), so the task that leaks is killed by the kernel's OOM
// killer alone, its caller gets an error that says so (matching
// multiproc.ErrOutOfMemory), and the pool replaces the worker and carries
// on with the next tasks.
//
// Python's Pool has maxtasksperchild and nothing else: a leaking task takes
// the machine's memory, or the whole container, with it.
//
// Run it with
//
//	go run ./examples/isolation
//
// It needs cgroups (v1, or v2 with a delegated subtree: see
// docs/ISOLATION.md); without them it says so and exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/multiproc-go/multiproc"
)

// leaky keeps everything it allocates, as a task with a leak does: a
// megabyte per item, never freed.
var leaky = multiproc.Register("leaky", multiproc.Plain(func(mb int) int {
	var kept [][]byte
	for range mb {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1 // touch every page: untouched pages cost nothing
		}
		kept = append(kept, b)
	}
	return len(kept)
}))

// square is a well-behaved task.
var square = multiproc.Register("square", multiproc.Plain(func(x int) int { return x * x }))

func main() {
	multiproc.Main()
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 2, multiproc.WorkerLimits(multiproc.Limits{
		Memory: 256 << 20, // a hard cap per worker, enforced by its cgroup
	}))
	if err != nil && strings.Contains(err.Error(), "no usable cgroup") {
		fmt.Println("cgroups are not available here:", err)
		os.Exit(0)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	fmt.Println("small leak (64 MiB):")
	n, err := multiproc.Apply(ctx, pool, leaky, 64)
	fmt.Printf("  kept %d MiB, err = %v\n", n, err)

	fmt.Println("big leak (4 GiB):")
	_, err = multiproc.Apply(ctx, pool, leaky, 4096)
	var exit *multiproc.ExitError
	if errors.As(err, &exit) {
		fmt.Printf("  the worker died: %v\n", exit.Cause)
	}
	fmt.Printf("  errors.Is(err, ErrWorkerDied): %v\n", errors.Is(err, multiproc.ErrWorkerDied))
	fmt.Printf("  errors.Is(err, ErrOutOfMemory): %v\n", errors.Is(err, multiproc.ErrOutOfMemory))
	fmt.Fprintln(os.Stderr, err) // the whole message: pid, signal, task, cap

	fmt.Println("the pool carries on:")
	squares, err := multiproc.Map(ctx, pool, square, []int{1, 2, 3, 4})
	fmt.Printf("  %v %v\n", squares, err)
	fmt.Printf("  workers restarted: %d\n", pool.Stats().Restarts)
}
