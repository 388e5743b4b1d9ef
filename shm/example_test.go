package shm_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/shm"
)

func ExampleNewValue() {
	num, err := shm.NewValue(0.0) // Python: Value('d', 0.0)
	if err != nil {
		log.Fatal(err)
	}
	defer num.Close()
	num.Store(3.1415927)
	fmt.Println(num.Load())
	// Output: 3.1415927
}

func ExampleArrayOf() {
	arr, err := shm.ArrayOf([]int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) // Python: Array('i', range(10))
	if err != nil {
		log.Fatal(err)
	}
	defer arr.Close() // after Close, s must not be touched
	s := arr.Slice()  // a plain Go slice over the shared memory
	for i := range s {
		s[i] = -s[i]
	}
	fmt.Println(s)
	// Output: [0 -1 -2 -3 -4 -5 -6 -7 -8 -9]
}

func ExampleAdd() {
	hits, err := shm.NewValue[int64](0)
	if err != nil {
		log.Fatal(err)
	}
	defer hits.Close()
	shm.Add(hits, 5)
	if shm.CompareAndSwap(hits, 5, 10) {
		fmt.Println("swapped")
	}
	fmt.Println(shm.Add(hits, -1))
	// Output:
	// swapped
	// 9
}

func ExampleNewValue_refused() {
	_, err := shm.NewValue(struct {
		ID   int
		Name string
	}{})
	fmt.Println(err)
	// Output: shm: type cannot live in shared memory: Value[struct { ID int; Name string }]: field Name is a string
}

func ExampleCreate() {
	// Without a name the segment is anonymous: only processes given its
	// descriptor can map it, and it cannot outlive them.
	m, err := shm.Create(1 << 20)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	n := copy(m.Buf(), "hello")
	fmt.Println(string(m.Buf()[:n]), m.Size(), m.Name() == "")
	// Output: hello 1048576 true
}

// shout runs in a child process that knows the segment by name only.
var shout = multiproc.Register("shm_test.example_shout", func(_ context.Context, name string) (struct{}, error) {
	m, err := shm.Open(name)
	if err != nil {
		return struct{}{}, err
	}
	defer m.Close()
	b := m.Buf()[:5]
	copy(b, strings.ToUpper(string(b)))
	return struct{}{}, nil
})

func ExampleOpen() {
	ctx := context.Background()
	m, err := shm.Create(4096, shm.GeneratedName()) // removed by Close
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	copy(m.Buf(), "hello")

	p := multiproc.NewProcess(shout, m.Name())
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	if err := p.Join(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(m.Buf()[:5]))
	// Output: HELLO
}

func ExampleSweep() {
	// Remove the segments left by programs that were killed before they
	// could close them. (The first named Create of a process does this
	// too.)
	if _, err := shm.Sweep(); err != nil {
		log.Print(err)
	}
}

// negate runs in a child process, which maps the parent's segments.
var negate = multiproc.Register("shm_test.example_negate", func(_ context.Context, s struct {
	Num *shm.Value[float64]
	Arr *shm.Array[int32]
}) (struct{}, error) {
	defer s.Num.Close() // the child's mappings are the child's to close
	defer s.Arr.Close()
	s.Num.Store(3.1415927)
	a := s.Arr.Slice()
	for i := range a {
		a[i] = -a[i]
	}
	return struct{}{}, nil
})

// A Value and an Array passed to a child process: the child maps the same
// memory (its descriptors are duplicated into the child), so the parent
// sees what the child stored. Python:
//
//	num = Value('d', 0.0)
//	arr = Array('i', range(10))
//	p = Process(target=f, args=(num, arr))
func Example_process() {
	ctx := context.Background()
	num, err := shm.NewValue(0.0)
	if err != nil {
		log.Fatal(err)
	}
	defer num.Close()
	arr, err := shm.ArrayOf([]int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	if err != nil {
		log.Fatal(err)
	}
	defer arr.Close()

	p := multiproc.NewProcess(negate, struct {
		Num *shm.Value[float64]
		Arr *shm.Array[int32]
	}{num, arr})
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	if err := p.Join(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(num.Load())
	fmt.Println(arr.Slice())
	// Output:
	// 3.1415927
	// [0 -1 -2 -3 -4 -5 -6 -7 -8 -9]
}
