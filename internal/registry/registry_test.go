package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/wire"
)

var errOdd = errors.New("odd")

// seq makes names unique, so the tests can run more than once (-count) in
// one process whose registry keeps every name.
var seq atomic.Int64

func unique(name string) string { return fmt.Sprintf("%s.%d", name, seq.Add(1)) }

func half(_ context.Context, x int) (int, error) {
	if x%2 == 1 {
		return 0, errOdd
	}
	if x < 0 {
		panic("negative")
	}
	return x / 2, nil
}

func TestAddLookupAndDuplicates(t *testing.T) {
	name := unique("registry.half")
	e, err := Add(name, half)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Lookup(name); err != nil || got != e {
		t.Fatalf("Lookup: %v, %v", got, err)
	}
	if _, err := Add(name, half); !errors.Is(err, errs.ErrDuplicate) {
		t.Fatalf("duplicate: got %v, want ErrDuplicate", err)
	}
	if _, err := Lookup("registry.nope"); !errors.Is(err, errs.ErrNotRegistered) {
		t.Fatalf("unknown: got %v, want ErrNotRegistered", err)
	}
}

// TestCallChunk checks the chunk contract the worker relies on: results
// before the first failure are encoded, n counts them, and a panic is
// reported as a *PanicError at its item.
func TestCallChunk(t *testing.T) {
	e, err := Add(unique("registry.half2"), half)
	if err != nil {
		t.Fatal(err)
	}
	c := wire.For[int]()
	// Large enough (over internal/pages' Min) for the result buffers to be
	// made and populated rather than grown by append.
	large := make([]int, 40000)
	for i := range large {
		large[i] = 2 * i
	}
	for _, tc := range []struct {
		name    string
		in      []int
		wantN   int
		wantErr func(error) bool
	}{
		{"all ok", []int{2, 4, 6}, 3, func(err error) bool { return err == nil }},
		{"error at 2", []int{2, 4, 5, 8}, 2, func(err error) bool { return errors.Is(err, errOdd) }},
		{"panic at 1", []int{2, -2, 4}, 1, func(err error) bool { var pe *PanicError; return errors.As(err, &pe) && pe.Stack != "" }},
		{"large", large, len(large), func(err error) bool { return err == nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, _ := c.AppendSlice(nil, tc.in)
			out, n, err := e.CallChunk(context.Background(), args, []byte("prefix"))
			if n != tc.wantN || !tc.wantErr(err) {
				t.Fatalf("n=%d err=%v, want n=%d", n, err, tc.wantN)
			}
			if string(out[:6]) != "prefix" {
				t.Fatalf("CallChunk did not append to dst: %q", out[:6])
			}
			got, derr := c.DecodeSlice(nil, out[6:])
			if derr != nil || len(got) != n {
				t.Fatalf("decoded %v, %v; want %d results", got, derr, n)
			}
			for i, v := range got {
				if v != tc.in[i]/2 {
					t.Fatalf("result %d = %d, want %d", i, v, tc.in[i]/2)
				}
			}
		})
	}
}

func TestFrozen(t *testing.T) {
	Freeze()
	defer frozen.Store(false)
	if _, err := Add(unique("registry.late"), half); !errors.Is(err, errs.ErrLateRegistration) {
		t.Fatalf("got %v, want ErrLateRegistration", err)
	}
}

type task struct {
	ID   int
	Jobs []struct{ Done chan int }
}

type file struct{ _ int }

func (*file) NeedsDescriptors() bool { return true }

type withFile struct {
	Name string
	F    *file
}

type chanRunner struct {
	N    int
	Done chan struct{}
}

func (*chanRunner) Run(context.Context) error { return nil }

type fileRunner struct{ Log *file }

func (*fileRunner) Run(context.Context) error { return nil }

// TestAddRefusesUncrossableTypes guards item 14: a function or process type
// whose values no codec can carry is refused at registration, naming the
// field, instead of failing at the first call; a resource is accepted and
// flagged.
func TestAddRefusesUncrossableTypes(t *testing.T) {
	var te *wire.TypeError
	_, err := Add(unique("registry.chanArg"), func(_ context.Context, x task) (int, error) { return 0, nil })
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "In.Jobs[].Done: chan int cannot cross a process boundary") {
		t.Errorf("argument with a chan field: %v, want a *wire.TypeError naming In.Jobs[].Done", err)
	}
	_, err = Add(unique("registry.funcResult"), func(_ context.Context, x int) (func(), error) { return nil, nil })
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "Out: func() cannot cross") {
		t.Errorf("func result: %v, want a *wire.TypeError naming Out", err)
	}
	err = AddType[chanRunner](unique("registry.chanRunner"))
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "registry.chanRunner.Done: chan struct {} cannot cross") {
		t.Errorf("Runner with a chan field: %v, want a *wire.TypeError naming registry.chanRunner.Done", err)
	}

	e, err := Add(unique("registry.fileArg"), func(_ context.Context, x withFile) (int, error) { return 0, nil })
	if err != nil || !e.InHasResource || e.OutHasResource {
		t.Fatalf("resource argument: %+v, %v; want accepted with InHasResource only", e, err)
	}
	name := unique("registry.fileRunner")
	if err := AddType[fileRunner](name); err != nil {
		t.Fatal(err)
	}
	if rt, err := LookupType(name); err != nil || !rt.HasResource {
		t.Errorf("Runner with a resource field: %+v, %v; want HasResource", rt, err)
	}
}
