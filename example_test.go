package multiproc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/multiproc-go/multiproc"
)

// Functions that run in other processes are registered in package-level
// vars, so every process of the program has them.
var (
	exSquare = multiproc.Register("example.square", func(_ context.Context, x int) (int, error) {
		return x * x, nil
	})
	exGreet = multiproc.Register("example.greet", multiproc.Plain(func(name string) string {
		return "hello, " + name + " from " + multiproc.CurrentProcess().Name
	}))
	errOdd = multiproc.RegisterError(errors.New("odd number"))
	exEven = multiproc.Register("example.even", func(_ context.Context, x int) (int, error) {
		if x%2 == 1 {
			return 0, fmt.Errorf("%d: %w", x, errOdd)
		}
		return x / 2, nil
	})
)

// In a program, main starts with multiproc.Main(); this package's TestMain
// does it for its examples.
func ExampleNewProcess() {
	ctx := context.Background()
	p := multiproc.NewProcess(exGreet, "world")
	p.Name = "Greeter"
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Join(ctx); err != nil {
		fmt.Println(err)
		return
	}
	code, _ := p.ExitCode()
	msg, err := multiproc.Result[string](p)
	fmt.Println(code, msg, err)
	// Output: 0 hello, world from Greeter <nil>
}

func ExampleMap() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	fmt.Println(multiproc.Map(ctx, pool, exSquare, []int{1, 2, 3, 4, 5}))
	// Output: [1 4 9 16 25] <nil>
}

func ExampleApplyAsync() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	var got []int // callbacks run one at a time: no lock needed
	for i := range 4 {
		multiproc.ApplyAsync(ctx, pool, exSquare, i).OnResult(func(v int) { got = append(got, v) })
	}
	pool.Close() // waits for the tasks and their callbacks
	sort.Ints(got)
	fmt.Println(got)
	// Output: [0 1 4 9]
}

func ExampleImap() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	for v, err := range multiproc.Imap(ctx, pool, exSquare, slices.Values([]int{3, 4, 5})) {
		fmt.Println(v, err)
	}
	// Output:
	// 9 <nil>
	// 16 <nil>
	// 25 <nil>
}

func ExampleSubmit() {
	ctx := context.Background()
	ex, err := multiproc.NewExecutor(ctx, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(true, false)
	var fs []*multiproc.Future[int]
	for _, x := range []int{2, 3, 4} {
		fs = append(fs, multiproc.Submit(ctx, ex, exEven, x))
	}
	for _, f := range fs {
		v, err := f.Result(ctx)
		fmt.Println(v, errors.Is(err, errOdd))
	}
	// Output:
	// 1 false
	// 0 true
	// 2 false
}

func ExampleAsCompleted() {
	ctx := context.Background()
	ex, err := multiproc.NewExecutor(ctx, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(true, false)
	fs := []*multiproc.Future[int]{
		multiproc.Submit(ctx, ex, exSquare, 6),
		multiproc.Submit(ctx, ex, exSquare, 7),
	}
	sum := 0
	for f, err := range multiproc.AsCompleted(ctx, fs...) {
		if err != nil {
			fmt.Println(err)
			return
		}
		v, _ := f.Result(ctx)
		sum += v
	}
	fmt.Println(sum)
	// Output: 85
}

func ExampleRemoteError() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	_, err = multiproc.Apply(ctx, pool, exEven, 5)
	var re *multiproc.RemoteError
	fmt.Println(errors.As(err, &re), re.Func, re.Message, errors.Is(err, errOdd))
	// Output: true example.even 5: odd number true
}
