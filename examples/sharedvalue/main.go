// Command sharedvalue shares numbers and arrays with child processes: the
// seeds' two Value/Array programs, and a counter incremented by four
// processes under the Value's own lock.
//
// The first (Python 2 in the seed):
//
//	def f(n, a):
//	    n.value = 3.14
//	    a[0] = 5
//
//	num = multiprocessing.Value('d', 0.0)
//	arr = multiprocessing.Array('i', range(10))
//	p = multiprocessing.Process(target=f, args=(num, arr))
//	p.start(); p.join()
//	print num.value   # 3.14
//	print arr[:]      # [5, 1, 2, 3, 4, 5, 6, 7, 8, 9]
//
// The second:
//
//	def worker(val, arr):
//	    val.value = 100
//	    for i in range(len(arr)):
//	        arr[i] = -arr[i]
//
//	val = Value('i', 0)
//	arr = Array('d', [1.0, 2.0, 3.0])
//	p = Process(target=worker, args=(val, arr))
//	p.start(); p.join()
//	print(val.value)  # 100
//	print(arr[:])     # [-1.0, -2.0, -3.0]
//
// The third is the seed's advice that "using shared objects like Value or
// Array can still lead to race conditions ... protect the operations using
// lock primitives", with the lock every Value carries:
//
//	def add(val, n):
//	    for _ in range(n):
//	        with val.get_lock():
//	            val.value += 1
//
//	counter = Value('i', 0)
//	ps = [Process(target=add, args=(counter, 1000)) for _ in range(4)]
//	for p in ps: p.start()
//	for p in ps: p.join()
//	print(counter.value)  # 4000
//
// Run it with
//
//	go run ./examples/sharedvalue
//
// The Values and Arrays live in shared memory. Passing them to the child
// passes their descriptors, so the child maps the same memory and the
// parent sees its stores once Join returns; nothing is copied back.
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/shm"
)

// fArgs is f's arguments: (n, a).
type fArgs struct {
	N *shm.Value[float64]
	A *shm.Array[int32]
}

// f runs in the child. Its Value and Array are the child's mappings of the
// parent's memory, the child's to close.
var f = multiproc.Register("sharedvalue.f", multiproc.NoResult(func(_ context.Context, x fArgs) error {
	defer x.N.Close()
	defer x.A.Close()
	x.N.Store(3.14)
	x.A.Slice()[0] = 5 // a plain Go slice over the shared memory
	return nil
}))

type workerArgs struct {
	Val *shm.Value[int32]
	Arr *shm.Array[float64]
}

var worker = multiproc.Register("sharedvalue.worker", multiproc.NoResult(func(_ context.Context, x workerArgs) error {
	defer x.Val.Close()
	defer x.Arr.Close()
	x.Val.Store(100)
	a := x.Arr.Slice()
	for i := range a {
		a[i] = -a[i]
	}
	return nil
}))

type addArgs struct {
	Val *shm.Value[int32]
	N   int
}

// add increments the counter n times, each time under its lock: the load
// and the store of one increment are not interleaved with another
// process's (the counter's lock is in its shared memory, so every process
// given the Value has it).
var add = multiproc.Register("sharedvalue.add", multiproc.NoResult(func(ctx context.Context, x addArgs) error {
	defer x.Val.Close()
	for range x.N {
		if err := x.Val.Do(ctx, func() { x.Val.Store(x.Val.Load() + 1) }); err != nil {
			return err
		}
	}
	return nil
}))

// run starts f(arg) in a child and waits for it, like p.start(); p.join().
func run[In any](ctx context.Context, f multiproc.Func[In, struct{}], arg In) {
	p := multiproc.NewProcess(f, arg)
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	if err := p.Join(ctx); err != nil {
		log.Fatal(err)
	}
}

func main() {
	multiproc.Main() // in a child: runs its target and exits
	ctx := context.Background()

	num, err := shm.NewValue(0.0) // Value('d', 0.0)
	if err != nil {
		log.Fatal(err)
	}
	defer num.Close()
	arr, err := shm.ArrayOf([]int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) // Array('i', range(10))
	if err != nil {
		log.Fatal(err)
	}
	defer arr.Close() // after Close, arr.Slice() must not be touched
	run(ctx, f, fArgs{N: num, A: arr})
	fmt.Println(num.Load())
	fmt.Println(arr.Slice())

	val, err := shm.NewValue[int32](0) // Value('i', 0)
	if err != nil {
		log.Fatal(err)
	}
	defer val.Close()
	darr, err := shm.ArrayOf([]float64{1.0, 2.0, 3.0}) // Array('d', [1.0, 2.0, 3.0])
	if err != nil {
		log.Fatal(err)
	}
	defer darr.Close()
	run(ctx, worker, workerArgs{Val: val, Arr: darr})
	fmt.Println(val.Load())
	fmt.Println(darr.Slice())

	counter, err := shm.NewValue[int32](0) // Value('i', 0), with its lock
	if err != nil {
		log.Fatal(err)
	}
	defer counter.Close()
	var ps []*multiproc.Process
	for range 4 {
		p := multiproc.NewProcess(add, addArgs{Val: counter, N: 1000})
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
		defer p.Close()
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			log.Fatal(err)
		}
		if _, err := multiproc.Result[struct{}](p); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(counter.Load())
}
