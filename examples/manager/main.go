// Command manager runs the seeds' three Manager programs: shared objects
// that live in a manager process and are changed by children through
// proxies.
//
// The first:
//
//	def f(x, arr, l):
//	    x.value = 3.14
//	    arr[0] = 5
//	    l.append('Hello')
//
//	server = multiprocessing.Manager()
//	x = server.Value('d', 0.0)
//	arr = server.Array('i', range(10))
//	l = server.list()
//	proc = multiprocessing.Process(target=f, args=(x, arr, l))
//	proc.start(); proc.join()
//	print(x.value); print(arr); print(l)
//
// The second:
//
//	def worker_function(shared_list, i):
//	    shared_list.append(i)
//
//	with Manager() as manager:
//	    shared_list = manager.list()
//	    processes = [Process(target=worker_function, args=(shared_list, i)) for i in range(4)]
//	    for p in processes: p.start()
//	    for p in processes: p.join()
//	    print(shared_list)  # [0, 1, 2, 3]
//
// The third:
//
//	def worker(l, d):
//	    l[1] = 100
//	    d["b"] = "Updated"
//
//	with Manager() as manager:
//	    l = manager.list([1, 2, 3])
//	    d = manager.dict({"a": "Initial", "b": "Original"})
//	    p = Process(target=worker, args=(l, d))
//	    p.start(); p.join()
//	    print(l)  # [1, 100, 3]
//	    print(d)  # {'a': 'Initial', 'b': 'Updated'}
//
// Run it with
//
//	go run ./examples/manager
//
// manager.Start is `Manager()`: a child process owns the objects; the
// proxies passed to the children connect to it (the key travels in a
// descriptor, never in the bytes), and Shutdown is the end of the `with`.
// The second program's four children append in whatever order they run,
// so it sorts before printing what Python's comment shows.
package main

import (
	"context"
	"fmt"
	"log"
	"slices"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/manager"
)

type fArgs struct {
	X   *manager.Value[float64]
	Arr *manager.Array[int32]
	L   *manager.List[string]
}

var f = multiproc.Register("manager.f", multiproc.NoResult(func(ctx context.Context, a fArgs) error {
	if err := a.X.Set(ctx, 3.14); err != nil {
		return err
	}
	if err := a.Arr.Set(ctx, 0, 5); err != nil {
		return err
	}
	return a.L.Append(ctx, "Hello")
}))

type appendArgs struct {
	List *manager.List[int]
	I    int
}

var workerFunction = multiproc.Register("manager.worker_function", multiproc.NoResult(func(ctx context.Context, a appendArgs) error {
	return a.List.Append(ctx, a.I)
}))

type workerArgs struct {
	L *manager.List[int]
	D *manager.Dict[string, string]
}

var worker = multiproc.Register("manager.worker", multiproc.NoResult(func(ctx context.Context, a workerArgs) error {
	if err := a.L.Set(ctx, 1, 100); err != nil {
		return err
	}
	return a.D.Set(ctx, "b", "Updated")
}))

func run[In any](ctx context.Context, f multiproc.Func[In, struct{}], arg In) *multiproc.Process {
	p := multiproc.NewProcess(f, arg)
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	return p
}

func join(ctx context.Context, p *multiproc.Process) {
	if err := p.Join(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := multiproc.Result[struct{}](p); err != nil {
		log.Fatal(err)
	}
	p.Close()
}

func check[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}

func main() {
	multiproc.Main() // in a child: runs its target (or serves as the manager) and exits
	ctx := context.Background()

	// The first program.
	server := check(manager.Start(ctx))
	x := check(manager.NewValue(ctx, server, 0.0))
	arr := check(manager.NewArray(ctx, server, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}))
	l := check(manager.NewList[string](ctx, server, nil))
	join(ctx, run(ctx, f, fArgs{X: x, Arr: arr, L: l}))
	fmt.Println(check(x.Get(ctx)))
	fmt.Println(check(arr.All(ctx)))
	fmt.Println(check(l.All(ctx)))
	if err := server.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}

	// The second: `with Manager() as manager:`.
	func() {
		m := check(manager.Start(ctx))
		defer m.Shutdown(ctx)
		shared := check(manager.NewList[int](ctx, m, nil))
		var ps []*multiproc.Process
		for i := range 4 {
			ps = append(ps, run(ctx, workerFunction, appendArgs{List: shared, I: i}))
		}
		for _, p := range ps {
			join(ctx, p)
		}
		got := check(shared.All(ctx))
		slices.Sort(got)
		fmt.Println(got)
	}()

	// The third.
	func() {
		m := check(manager.Start(ctx))
		defer m.Shutdown(ctx)
		l := check(manager.NewList(ctx, m, []int{1, 2, 3}))
		d := check(manager.NewDict[string, string](ctx, m))
		if err := d.SetMany(ctx, map[string]string{"a": "Initial", "b": "Original"}); err != nil {
			log.Fatal(err)
		}
		join(ctx, run(ctx, worker, workerArgs{L: l, D: d}))
		fmt.Println(check(l.All(ctx)))
		fmt.Println(check(d.Map(ctx)))
	}()
}
