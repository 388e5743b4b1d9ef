package shm_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/shm"
)

// shared is the argument of the child below: Python's f(n, a).
type shared struct {
	Num *shm.Value[float64]
	Arr *shm.Array[int32]
	Mem *shm.SharedMemory
}

// changeShared runs in a child: it sets Num, negates Arr and writes into
// Mem, through its own mappings of the parent's segments.
var changeShared = multiproc.Register("shm_test.change_shared", func(_ context.Context, s shared) (string, error) {
	defer s.Num.Close()
	defer s.Arr.Close()
	s.Num.Store(3.1415927)
	a := s.Arr.Slice()
	for i := range a {
		a[i] = -a[i]
	}
	if s.Mem == nil {
		return "", nil
	}
	defer s.Mem.Close()
	copy(s.Mem.Buf(), "child")
	return s.Mem.Name(), nil
})

// makeArray runs in a child and returns an Array it made: resources travel
// back with results too.
var makeArray = multiproc.Register("shm_test.make_array", func(_ context.Context, n int) (*shm.Array[int64], error) {
	a, err := shm.NewArray[int64](n)
	if err != nil {
		return nil, err
	}
	for i := range a.Slice() {
		a.Slice()[i] = int64(i * i)
	}
	// The result is encoded (its descriptor duplicated) before the child
	// exits; the child's own mapping goes with the exit.
	return a, nil
})

func runChild[In, Out any](t *testing.T, f multiproc.Func[In, Out], arg In) Out {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	p := multiproc.NewProcess(f, arg)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := multiproc.Result[Out](p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestProcessChangesValueAndArray is the seeds' example for real: a child
// given a Value and an Array changes both, and the parent sees it.
func TestProcessChangesValueAndArray(t *testing.T) {
	num := must(shm.NewValue(0.0))
	arr := must(shm.ArrayOf([]int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}))
	defer closeAll(t, num, arr)
	runChild(t, changeShared, shared{Num: num, Arr: arr})
	if got := num.Load(); got != 3.1415927 {
		t.Errorf("num = %v after the child, want 3.1415927", got)
	}
	if want := []int32{0, -1, -2, -3, -4, -5, -6, -7, -8, -9}; !slices.Equal(arr.Slice(), want) {
		t.Errorf("arr = %v after the child, want %v", arr.Slice(), want)
	}
}

// TestProcessNamedSegmentByDescriptor: a named segment reaches the child
// by descriptor, even once its name is gone.
func TestProcessNamedSegmentByDescriptor(t *testing.T) {
	name := testName(t)
	mem := must(shm.Create(4096, shm.Name(name)))
	num := must(shm.NewValue(0.0))
	arr := must(shm.NewArray[int32](1))
	defer closeAll(t, mem, num, arr)
	if err := mem.Unlink(); err != nil {
		t.Fatal(err)
	}
	if got := runChild(t, changeShared, shared{Num: num, Arr: arr, Mem: mem}); got != name {
		t.Errorf("the child's segment is named %q, want %q", got, name)
	}
	if got := string(mem.Buf()[:5]); got != "child" {
		t.Errorf("parent reads %q, want the child's write", got)
	}
}

// TestProcessReturnsArray: a child returns an Array it made; the parent
// maps the same memory after the child is gone.
func TestProcessReturnsArray(t *testing.T) {
	a := runChild(t, makeArray, 1000)
	defer a.Close()
	if a.Len() != 1000 || a.Slice()[999] != 999*999 {
		t.Fatalf("returned Array of %d elements ending in %d, want 1000 ending in %d", a.Len(), a.Slice()[a.Len()-1], 999*999)
	}
}

// TestProcessClosedArgument: a closed segment fails NewProcess's argument
// with ErrClosed, at Start, before any child runs.
func TestProcessClosedArgument(t *testing.T) {
	num := must(shm.NewValue(0.0))
	arr := must(shm.NewArray[int32](1))
	defer arr.Close()
	num.Close()
	p := multiproc.NewProcess(changeShared, shared{Num: num, Arr: arr})
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	if err := p.Start(ctx); !errors.Is(err, shm.ErrClosed) {
		t.Fatalf("Start = %v, want an error matching shm.ErrClosed", err)
	}
}
