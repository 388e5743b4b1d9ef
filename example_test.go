package multiproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

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
	exWords = multiproc.Register("example.words", multiproc.Plain(func(s string) int {
		return len(strings.Fields(s))
	}))
	exPow = multiproc.Register2("example.pow", func(_ context.Context, base, exp int) (int, error) {
		n := 1
		for range exp {
			n *= base
		}
		return n, nil
	})
	// exWait runs until its context is cancelled, or for at most d.
	exWait = multiproc.Register("example.wait", func(ctx context.Context, d time.Duration) (string, error) {
		select {
		case <-time.After(d):
			return "finished", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	// exFlaky ends its worker process the first time it runs (when the
	// marker file is missing) and succeeds the second time.
	exFlaky = multiproc.Register("example.flaky", func(_ context.Context, marker string) (string, error) {
		if _, err := os.Stat(marker); err != nil {
			os.WriteFile(marker, nil, 0o600)
			os.Exit(3)
		}
		return "second attempt", nil
	})
	// greeting is set in each worker by its initializer.
	greeting   string
	exSetGreet = multiproc.Register("example.setGreeting", multiproc.NoResult(func(_ context.Context, g string) error {
		greeting = g
		return nil
	}))
	exGreeting = multiproc.Register("example.greeting", multiproc.Plain(func(name string) string {
		return greeting + ", " + name
	}))
	exPid = multiproc.Register("example.pid", multiproc.Plain(func(int) int { return os.Getpid() }))
	_     = multiproc.RegisterProcess[exSummer]("example.summer")
)

// exSummer is the process-subclass form: its exported fields travel to the
// child, Run runs there, and the fields come back after Join.
type exSummer struct {
	From, To int
	Sum      int
}

func (s *exSummer) Run(context.Context) error {
	for i := s.From; i <= s.To; i++ {
		s.Sum += i
	}
	return nil
}

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

// Register is called in a package-level var (exWords above), so the parent
// and every child register the same function before Main runs; here a child
// runs it.
func ExampleRegister() {
	ctx := context.Background()
	p := multiproc.NewProcess(exWords, "to be or not to be")
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Join(ctx); err != nil {
		fmt.Println(err)
		return
	}
	n, err := multiproc.Result[int](p)
	fmt.Println(exWords.Name(), n, err)
	// Output: example.words 6 <nil>
}

func ExampleNewPool() {
	ctx := context.Background()
	// Two worker processes (0: CPUCount()), started at once and ready
	// when NewPool returns.
	pool, err := multiproc.NewPool(ctx, 2, multiproc.WorkerName("Worker"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close() // waits for the work, then the workers
	fmt.Println(pool.Size())
	fmt.Println(multiproc.Map(ctx, pool, exWords, []string{"one", "two words", "and three words"}))
	// Output:
	// 2
	// [1 2 3] <nil>
}

func ExampleApply() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	fmt.Println(multiproc.Apply(ctx, pool, exSquare, 7))
	// Output: 49 <nil>
}

func ExampleStarmap() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	args := []multiproc.Args2[int, int]{{V1: 2, V2: 3}, multiproc.Pack2(3, 2), multiproc.Pack2(10, 0)}
	fmt.Println(multiproc.Starmap(ctx, pool, exPow, args))
	// Output: [8 9 1] <nil>
}

func ExampleNewProcessOf() {
	ctx := context.Background()
	s := &exSummer{From: 1, To: 10}
	p := multiproc.NewProcessOf(s)
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Join(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Sum) // computed in the child
	// Output: 55
}

func ExampleWait() {
	ctx := context.Background()
	ex, err := multiproc.NewExecutor(ctx, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(true, true)
	slow, stop := context.WithCancel(ctx)
	defer stop()
	fs := []*multiproc.Future[string]{
		multiproc.Submit(ctx, ex, exWait, 0),
		multiproc.Submit(slow, ex, exWait, time.Hour),
	}
	done, notDone, err := multiproc.Wait(ctx, fs, multiproc.FirstCompleted)
	fmt.Println(len(done), len(notDone), err, done[0] == fs[0])
	stop()
	done, notDone, err = multiproc.Wait(ctx, fs, multiproc.AllCompleted)
	fmt.Println(len(done), len(notDone), err, fs[1].Cancelled())
	// Output:
	// 1 1 <nil> true
	// 2 0 <nil> true
}

func ExampleExecutor_Shutdown() {
	ctx := context.Background()
	ex, err := multiproc.NewExecutor(ctx, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	f := multiproc.Submit(ctx, ex, exSquare, 9)
	// Waits for the submitted work and the workers; cancels nothing.
	if err := ex.Shutdown(true, false); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Done(), f.Exception(ctx))
	err = multiproc.Submit(ctx, ex, exSquare, 10).Exception(ctx)
	fmt.Println(err, errors.Is(err, multiproc.ErrPoolClosed))
	// Output:
	// true <nil>
	// multiproc: executor shut down true
}

func ExampleFuture_Cancel() {
	ctx := context.Background()
	ex, err := multiproc.NewExecutor(ctx, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(true, false)
	running := multiproc.Submit(ctx, ex, exWait, time.Hour)
	queued := multiproc.Submit(ctx, ex, exSquare, 3) // one worker: waits behind running
	fmt.Println(queued.Cancel(), queued.Cancelled())
	// Unlike Python's, Cancel stops a running task too: its context in the
	// worker is cancelled (and the worker killed if it does not stop).
	fmt.Println(running.Cancel())
	_, err = running.Result(ctx)
	fmt.Println(errors.Is(err, context.Canceled))
	// Output:
	// true true
	// true
	// true
}

func ExampleTaskTimeout() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 1, multiproc.TaskTimeout(500*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	_, err = multiproc.Apply(ctx, pool, exWait, time.Hour)
	fmt.Println(errors.Is(err, multiproc.ErrTimeout))
	// The worker was replaced; the pool goes on.
	fmt.Println(multiproc.Apply(ctx, pool, exWait, 0))
	// Output:
	// true
	// finished <nil>
}

func ExampleRetries() {
	dir, err := os.MkdirTemp("", "example-retries")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 1, multiproc.Retries(1, multiproc.ErrWorkerDied))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	// The first attempt kills its worker; the retry runs on its replacement.
	fmt.Println(multiproc.Apply(ctx, pool, exFlaky, filepath.Join(dir, "marker")))
	// Output: second attempt <nil>
}

func ExampleInitializer() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 2, multiproc.Initializer(exSetGreet, "bonjour"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	fmt.Println(multiproc.Map(ctx, pool, exGreeting, []string{"ann", "bob", "cy"}))
	fmt.Printf("%q\n", greeting) // the initializer ran in the workers, not here
	// Output:
	// [bonjour, ann bonjour, bob bonjour, cy] <nil>
	// ""
}

func ExampleMaxTasksPerChild() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 1, multiproc.MaxTasksPerChild(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	tasks := map[int]int{} // tasks per worker pid
	for i := range 6 {
		pid, err := multiproc.Apply(ctx, pool, exPid, i)
		if err != nil {
			fmt.Println(err)
			return
		}
		tasks[pid]++
	}
	most := 0
	for _, n := range tasks {
		most = max(most, n)
	}
	fmt.Println(len(tasks) >= 3, most <= 2)
	// Output: true true
}
