package multiproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/wire"
)

var (
	// errOutOfStock is registered, so errors.Is finds it across processes.
	errOutOfStock = multiproc.RegisterError(errors.New("out of stock"))
	// errUnregistered is not: across a process boundary only its message
	// survives.
	errUnregistered = errors.New("unregistered sentinel")
)

// stockError is a custom error type whose name the parent should see.
type stockError struct{ Item string }

func (e *stockError) Error() string { return "no " + e.Item + " left" }
func (e *stockError) Unwrap() error { return errOutOfStock }

var (
	// failWith returns an error chosen by its argument.
	failWith = multiproc.Register("proc.fail", func(ctx context.Context, what string) (int, error) {
		switch what {
		case "sentinel":
			return 0, &stockError{Item: "widgets"}
		case "unregistered":
			return 0, fmt.Errorf("wrapped: %w", errUnregistered)
		case "deadline":
			ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			defer cancel()
			<-ctx.Done()
			return 0, fmt.Errorf("waiting for the warehouse: %w", ctx.Err())
		case "panic":
			explodeInChild()
		}
		return 0, errors.New("plain failure")
	})

	// nested runs failWith in a process of its own and returns that process's
	// error unchanged.
	nested = multiproc.Register("proc.nested", func(ctx context.Context, what string) (int, error) {
		p := multiproc.NewProcess(failWith, what)
		if err := p.Start(ctx); err != nil {
			return 0, err
		}
		return 0, p.Join(ctx)
	})

	// parentOnly is registered only in the program the user started: a
	// child does not have it, as when registration depends on run-time
	// state. (Children see MULTIPROC_CHILD during initialisation.)
	parentOnly = func() multiproc.Func[int, int] {
		if os.Getenv("MULTIPROC_CHILD") != "" {
			return multiproc.Func[int, int]{}
		}
		return multiproc.Register("proc.parentOnly", multiproc.Plain(func(x int) int { return x }))
	}()

	// dupPanic and dupTypePanic record what registering a name a second
	// time during initialisation panics with. Their initialisers refer to
	// the first registrations, so Go runs them after those.
	dupFunc  = multiproc.Register("proc.dup", multiproc.Plain(func(x int) int { return x }))
	dupPanic = recoverPanic(func() {
		multiproc.Register(dupFunc.Name(), multiproc.Plain(func(x string) string { return x }))
	})
	dupTypePanic = recoverPanic(func() {
		multiproc.RegisterProcess[otherRunner](counterType.Name())
	})
)

type otherRunner struct{}

func (*otherRunner) Run(context.Context) error { return nil }

// explodeInChild panics; its name must appear in the stack the parent sees.
func explodeInChild() {
	panic(fmt.Sprintf("boom in pid %d", os.Getpid()))
}

func recoverPanic(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

func joinErr(t *testing.T, p *multiproc.Process) error {
	t.Helper()
	startProc(t, p)
	return p.Join(procCtx(t))
}

func TestRemoteErrorKeepsTypeAndMessage(t *testing.T) {
	p := multiproc.NewProcess(failWith, "sentinel")
	err := joinErr(t, p)
	var re *multiproc.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("Join = %v (%T), want a *RemoteError", err, err)
	}
	if re.Type != "*multiproc_test.stockError" || re.Message != "no widgets left" || re.Func != "proc.fail" || re.Pid != p.Pid() || re.Panic {
		t.Errorf("RemoteError = {Type %q, Message %q, Func %q, Pid %d, Panic %v}; want {*multiproc_test.stockError, no widgets left, proc.fail, %d, false}",
			re.Type, re.Message, re.Func, re.Pid, re.Panic, p.Pid())
	}
	if !errors.Is(err, errOutOfStock) {
		t.Errorf("errors.Is(err, registered sentinel) = false")
	}
	if errors.Is(err, multiproc.ErrNotRegistered) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("remote error matches sentinels it did not match in the child")
	}
	if !strings.Contains(err.Error(), "no widgets left") || !strings.Contains(err.Error(), "proc.fail") {
		t.Errorf("Error() = %q, want the function's name and the remote message", err)
	}
}

func TestRemoteErrorUnregisteredSentinel(t *testing.T) {
	err := joinErr(t, multiproc.NewProcess(failWith, "unregistered"))
	if errors.Is(err, errUnregistered) {
		t.Errorf("an unregistered sentinel matched across processes")
	}
	if !strings.Contains(err.Error(), "wrapped: unregistered sentinel") {
		t.Errorf("Error() = %q, want the remote message", err)
	}
}

func TestRemoteErrorDeadlineExceeded(t *testing.T) {
	err := joinErr(t, multiproc.NewProcess(failWith, "deadline"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Join = %v, want it to match context.DeadlineExceeded", err)
	}
}

func TestRemoteErrorPanicStack(t *testing.T) {
	p := multiproc.NewProcess(failWith, "panic")
	err := joinErr(t, p)
	var re *multiproc.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("Join = %v (%T), want a *RemoteError", err, err)
	}
	if !re.Panic || re.Type != "panic" {
		t.Errorf("RemoteError{Panic: %v, Type: %q}, want a panic", re.Panic, re.Type)
	}
	if want := fmt.Sprintf("boom in pid %d", p.Pid()); re.Message != want {
		t.Errorf("Message = %q, want %q", re.Message, want)
	}
	if !strings.Contains(re.Stack, "explodeInChild") {
		t.Errorf("Stack lacks the panicking function explodeInChild:\n%s", re.Stack)
	}
	if !strings.Contains(err.Error(), "panic") {
		t.Errorf("Error() = %q, want it to say panic", err)
	}
}

// TestNestedRemoteError checks that a grandchild's failure reaches the
// grandparent as the grandchild's: its function, pid, message, stack and
// sentinels, not the middle process's.
func TestNestedRemoteError(t *testing.T) {
	for _, what := range []string{"sentinel", "panic"} {
		t.Run(what, func(t *testing.T) {
			p := multiproc.NewProcess(nested, what)
			err := joinErr(t, p)
			var re *multiproc.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("Join = %v (%T), want a *RemoteError", err, err)
			}
			if re.Func != "proc.fail" || re.Pid == p.Pid() || re.Pid == 0 {
				t.Errorf("RemoteError{Func %q, Pid %d}; want the innermost proc.fail in a pid other than the middle %d", re.Func, re.Pid, p.Pid())
			}
			switch what {
			case "sentinel":
				if re.Message != "no widgets left" || !errors.Is(err, errOutOfStock) {
					t.Errorf("Message %q, matches sentinel %v; want the innermost message and sentinel", re.Message, errors.Is(err, errOutOfStock))
				}
			case "panic":
				if !re.Panic || !strings.Contains(re.Stack, "explodeInChild") || re.Message != fmt.Sprintf("boom in pid %d", re.Pid) {
					t.Errorf("nested panic: Panic %v, Message %q, stack has explodeInChild %v", re.Panic, re.Message, strings.Contains(re.Stack, "explodeInChild"))
				}
			}
			if code, _ := p.ExitCode(); code != 1 {
				t.Errorf("middle process exit code %d, want 1", code)
			}
		})
	}
}

func TestUnregisteredInChild(t *testing.T) {
	if parentOnly.Name() != "proc.parentOnly" {
		t.Fatalf("parentOnly not registered in the parent")
	}
	p := multiproc.NewProcess(parentOnly, 1)
	err := joinErr(t, p)
	if !errors.Is(err, multiproc.ErrNotRegistered) || !strings.Contains(err.Error(), `"proc.parentOnly"`) {
		t.Errorf("Join = %v, want ErrNotRegistered naming proc.parentOnly", err)
	}
	if code, _ := p.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
}

func TestZeroFunc(t *testing.T) {
	p := multiproc.NewProcess(multiproc.Func[int, int]{}, 1)
	if err := p.Start(procCtx(t)); !errors.Is(err, multiproc.ErrNotRegistered) {
		t.Errorf("Start with a zero Func = %v, want ErrNotRegistered", err)
	}
	if p.Pid() != 0 {
		t.Errorf("a child was started: pid %d", p.Pid())
	}
}

func TestDuplicateRegistration(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{"function", dupPanic, `"proc.dup"`},
		{"process type", dupTypePanic, `"proc.counter"`},
	} {
		err, ok := tt.v.(error)
		if !ok || !errors.Is(err, multiproc.ErrDuplicate) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s registered twice: panic value %v, want an error wrapping ErrDuplicate naming %s", tt.name, tt.v, tt.want)
		}
	}
}

func TestLateRegistration(t *testing.T) {
	for _, tt := range []struct {
		name string
		f    func()
	}{
		{"Register", func() { multiproc.Register("proc.late", multiproc.Plain(func(x int) int { return x })) }},
		{"RegisterProcess", func() { multiproc.RegisterProcess[lateRunner]("proc.late") }},
	} {
		v := recoverPanic(tt.f)
		err, ok := v.(error)
		if !ok || !errors.Is(err, multiproc.ErrLateRegistration) || !strings.Contains(err.Error(), `"proc.late"`) {
			t.Errorf("%s after Main: panic value %v, want an error wrapping ErrLateRegistration naming proc.late", tt.name, v)
		}
	}
}

type lateRunner struct{}

func (*lateRunner) Run(context.Context) error { return nil }

// holder's interface field accepts any value at Register; one whose type
// was never passed to gob.Register cannot be encoded.
type holder struct{ V any }

type unregisteredValue struct{ N int }

var takesHolder = multiproc.Register("proc.takesHolder", func(_ context.Context, h holder) (int, error) { return 0, nil })

// TestUnencodableArgument checks that an argument that cannot be encoded
// fails in Start, in the caller's goroutine, naming the type, and that no
// child was started. (Types that can never be encoded, such as a chan, are
// refused by Register itself: see TestRegisterRefusesUncrossableTypes.)
func TestUnencodableArgument(t *testing.T) {
	p := multiproc.NewProcess(takesHolder, holder{V: unregisteredValue{1}})
	err := p.Start(procCtx(t))
	var ee *wire.EncodeError
	var ie *wire.InterfaceError
	if !errors.As(err, &ee) || !errors.As(err, &ie) || !strings.Contains(err.Error(), "multiproc_test.unregisteredValue") || !strings.Contains(err.Error(), "multiproc_test.holder.V") {
		t.Fatalf("Start = %v, want an encoding error naming multiproc_test.holder.V and multiproc_test.unregisteredValue", err)
	}
	if p.Pid() != 0 || p.IsAlive() {
		t.Errorf("a child was started: pid %d", p.Pid())
	}
	if err := p.Join(procCtx(t)); !errors.Is(err, multiproc.ErrNotStarted) {
		t.Errorf("Join after a failed Start = %v, want ErrNotStarted", err)
	}
	if n := len(multiproc.ActiveChildren()); n != 0 {
		t.Errorf("%d active children", n)
	}
}
