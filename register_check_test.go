package multiproc_test

import (
	"context"
	"encoding/gob"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/wire"
)

type jobBatch struct {
	Name string
	Jobs []struct {
		ID   int
		Done chan int
	}
}

type chanRunner struct {
	Count int
	Done  chan struct{}
}

func (*chanRunner) Run(context.Context) error { return nil }

// Registrations that must be refused. They run during initialisation, as
// real registrations do, and record the panic value.
var (
	chanArgPanic = recoverPanic(func() {
		multiproc.Register("register.chanArg", func(_ context.Context, c chan int) (int, error) { return 0, nil })
	})
	funcArgPanic = recoverPanic(func() {
		multiproc.Register("register.funcArg", func(_ context.Context, f func()) (int, error) { return 0, nil })
	})
	nestedChanPanic = recoverPanic(func() {
		multiproc.Register("register.nestedChan", func(_ context.Context, b jobBatch) (int, error) { return 0, nil })
	})
	chanResultPanic = recoverPanic(func() {
		multiproc.Register("register.chanResult", func(_ context.Context, x int) (map[string]chan int, error) { return nil, nil })
	})
	chanRunnerPanic = recoverPanic(func() {
		multiproc.RegisterProcess[chanRunner]("register.chanRunner")
	})
	// The refused name stays free.
	chanArgRetry = multiproc.Register("register.chanArg", multiproc.Plain(func(x int) int { return x }))
)

// TestRegisterRefusesUncrossableTypes guards item 14: Register and
// RegisterProcess panic at initialisation on a type no codec can carry,
// naming the part of the type, instead of failing at the first call.
func TestRegisterRefusesUncrossableTypes(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{"chan argument", chanArgPanic, `Register("register.chanArg"): argument type chan int: In: chan int cannot cross a process boundary`},
		{"func argument", funcArgPanic, `In: func() cannot cross a process boundary`},
		{"chan in a slice of structs", nestedChanPanic, `In.Jobs[].Done: chan int cannot cross a process boundary`},
		{"chan in a map result", chanResultPanic, `Out[]: chan int cannot cross a process boundary`},
		{"process type with a chan field", chanRunnerPanic, `RegisterProcess("register.chanRunner"): multiproc_test.chanRunner.Done: chan struct {} cannot cross a process boundary`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err, ok := tt.v.(error)
			var te *wire.TypeError
			if !ok || !errors.As(err, &te) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("panic value %v, want an error containing %q", tt.v, tt.want)
			}
		})
	}
	if chanArgRetry.Name() != "register.chanArg" {
		t.Errorf("a refused name could not be registered afterwards")
	}
}

// parentOnlyValue is passed to gob.Register only in the program the user
// started, as when gob.Register is called in main after Main: children do
// not know it.
type parentOnlyValue struct{ N int }

func init() {
	if os.Getenv("MULTIPROC_CHILD") == "" {
		gob.Register(parentOnlyValue{})
	}
}

// TestInterfaceTypeMissingInChild: an interface value whose concrete type
// the child never registered fails in the child with an error that names
// the interface field and the missing type, and says what to do.
func TestInterfaceTypeMissingInChild(t *testing.T) {
	err := joinErr(t, multiproc.NewProcess(takesHolder, holder{V: parentOnlyValue{N: 1}}))
	var re *multiproc.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("Join = %v, want a *RemoteError from the child", err)
	}
	for _, want := range []string{`"proc.takesHolder": decoding argument`, "multiproc_test.holder.V (interface {})", "multiproc_test.parentOnlyValue", "gob.Register", "before multiproc.Main"} {
		if !strings.Contains(re.Message, want) {
			t.Errorf("Message %q lacks %q", re.Message, want)
		}
	}
}
