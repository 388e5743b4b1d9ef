// Command sharedvalue shares a number and an array with a child process:
// the seeds' Value/Array example.
//
// Python (the seed's version, in Python 3; Python's documentation has the
// same program with n.value = 3.1415927 and every element negated, which
// is what this one does):
//
//	def f(n, a):
//	    n.value = 3.14
//	    a[0] = 5
//
//	num = multiprocessing.Value('d', 0.0)
//	arr = multiprocessing.Array('i', range(10))
//	p = multiprocessing.Process(target=f, args=(num, arr))
//	p.start()
//	p.join()
//	print(num.value)
//	print(arr[:])
//
// Run it with
//
//	go run ./examples/sharedvalue
//
// It prints
//
//	3.1415927
//	[0 -1 -2 -3 -4 -5 -6 -7 -8 -9]
//
// The Value and the Array live in shared memory. Passing them to the
// child passes their descriptors, so the child maps the same memory and
// the parent sees its stores once Join returns; nothing is copied back.
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/shm"
)

// shared is f's arguments: (n, a).
type shared struct {
	Num *shm.Value[float64]
	Arr *shm.Array[int32]
}

// f runs in the child. Its Value and Array are the child's mappings of the
// parent's memory, the child's to close.
var f = multiproc.Register("sharedvalue.f", multiproc.NoResult(func(_ context.Context, s shared) error {
	defer s.Num.Close()
	defer s.Arr.Close()
	s.Num.Store(3.1415927)
	a := s.Arr.Slice() // a plain Go slice over the shared memory
	for i := range a {
		a[i] = -a[i]
	}
	return nil
}))

func main() {
	multiproc.Main() // in the child: runs f and exits

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

	ctx := context.Background()
	p := multiproc.NewProcess(f, shared{Num: num, Arr: arr})
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	if err := p.Join(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(num.Load())
	fmt.Println(arr.Slice())
}
