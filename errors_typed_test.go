package multiproc_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// quotaError has pointer receivers and a pointer field: it travels by gob.
type quotaError struct {
	User  string
	Limit int
	Tags  []string
}

func (e *quotaError) Error() string { return fmt.Sprintf("%s over quota %d", e.User, e.Limit) }

// rangeError is a pointer-free value type: it travels as memory.
type rangeError struct{ Lo, Hi, Got int }

func (e rangeError) Error() string { return fmt.Sprintf("%d not in [%d, %d]", e.Got, e.Lo, e.Hi) }

// hiddenError cannot be encoded: gob needs an exported field.
type hiddenError struct{ _ *string }

func (e *hiddenError) Error() string { return "hidden" }

// plainTypedError is never registered.
type plainTypedError struct{ N int }

func (e *plainTypedError) Error() string { return fmt.Sprintf("plain %d", e.N) }

type chanError struct{ C chan int }

func (chanError) Error() string { return "chan" }

var (
	_ = multiproc.RegisterErrorType[*quotaError]()
	_ = multiproc.RegisterErrorType[rangeError]()
	_ = multiproc.RegisterErrorType[*hiddenError]()

	dupErrorTypePanic       = recoverPanic(func() { multiproc.RegisterErrorType[*quotaError]() })
	interfaceErrorTypePanic = recoverPanic(func() { multiproc.RegisterErrorType[error]() })
	chanErrorTypePanic      = recoverPanic(func() { multiproc.RegisterErrorType[chanError]() })

	// typedFail fails with the error its argument names.
	typedFail = multiproc.Register("errors.typedFail", func(ctx context.Context, what string) (int, error) {
		q := &quotaError{User: "ann", Limit: 42, Tags: []string{"a", "b"}}
		switch what {
		case "pointer":
			return 0, q
		case "value":
			return 0, rangeError{Lo: 1, Hi: 9, Got: 12}
		case "wrapped":
			return 0, fmt.Errorf("saving: %w", q)
		case "joined":
			return 0, errors.Join(errOutOfStock, fmt.Errorf("check: %w", rangeError{Got: 3}), q)
		case "panic":
			panic(q)
		case "unencodable":
			return 0, fmt.Errorf("ctx: %w", &hiddenError{})
		case "unregistered":
			return 0, &plainTypedError{N: 5}
		}
		return 0, errors.New("unknown case")
	})
	// typedNested runs typedFail in a process of its own and returns its
	// error unchanged ("same-"), wrapped ("wrap-") or as the *RemoteError
	// errors.As finds in it ("as-").
	typedNested = multiproc.Register("errors.typedNested", func(ctx context.Context, what string) (int, error) {
		how, inner, _ := strings.Cut(what, "-")
		p := multiproc.NewProcess(typedFail, inner)
		if err := p.Start(ctx); err != nil {
			return 0, err
		}
		err := p.Join(ctx)
		switch how {
		case "wrap":
			return 0, fmt.Errorf("middle: %w", err)
		case "as": // the public copy errors.As gives, returned as is
			var re *multiproc.RemoteError
			if errors.As(err, &re) {
				return 0, re
			}
		}
		return 0, err
	})
)

// TestTypedErrorsCrossProcesses guards item 7: errors.As finds both the
// *RemoteError and the registered error value, with its fields, from a
// process and from a pool, however the child wrapped it.
func TestTypedErrorsCrossProcesses(t *testing.T) {
	pool := newPool(t, 1)
	type want struct {
		quota     bool
		rng       bool
		panicked  bool
		sentinel  bool
		remoteFn  string
		msgPrefix string
	}
	tests := []struct {
		what string
		f    multiproc.Func[string, int]
		want want
	}{
		{"pointer", typedFail, want{quota: true, remoteFn: "errors.typedFail", msgPrefix: "ann over quota 42"}},
		{"value", typedFail, want{rng: true, remoteFn: "errors.typedFail", msgPrefix: "12 not in [1, 9]"}},
		{"wrapped", typedFail, want{quota: true, remoteFn: "errors.typedFail", msgPrefix: "saving: ann over quota 42"}},
		{"joined", typedFail, want{quota: true, rng: true, sentinel: true, remoteFn: "errors.typedFail"}},
		{"panic", typedFail, want{quota: true, panicked: true, remoteFn: "errors.typedFail"}},
		{"same-wrapped", typedNested, want{quota: true, remoteFn: "errors.typedFail", msgPrefix: "saving: ann over quota 42"}},
		{"as-joined", typedNested, want{quota: true, rng: true, sentinel: true, remoteFn: "errors.typedFail"}},
		{"wrap-value", typedNested, want{rng: true, remoteFn: "errors.typedNested", msgPrefix: "middle: multiproc: "}},
	}
	for _, tt := range tests {
		for _, via := range []string{"process", "pool"} {
			t.Run(tt.f.Name()+"/"+tt.what+"/"+via, func(t *testing.T) {
				var err error
				if via == "process" {
					err = joinErr(t, multiproc.NewProcess(tt.f, tt.what))
				} else {
					_, err = multiproc.Apply(ctxT(t), pool, tt.f, tt.what)
				}
				var re *multiproc.RemoteError
				if !errors.As(err, &re) {
					t.Fatalf("err = %v (%T), want a *RemoteError", err, err)
				}
				if re.Func != tt.want.remoteFn || re.Panic != tt.want.panicked || re.Pid == 0 || !strings.HasPrefix(re.Message, tt.want.msgPrefix) {
					t.Errorf("RemoteError{Func %q, Panic %v, Pid %d, Message %q}, want {%q, %v, non-zero, %q...}",
						re.Func, re.Panic, re.Pid, re.Message, tt.want.remoteFn, tt.want.panicked, tt.want.msgPrefix)
				}
				var qe *quotaError
				if got := errors.As(err, &qe); got != tt.want.quota {
					t.Errorf("errors.As(*quotaError) = %v, want %v", got, tt.want.quota)
				} else if got && (qe.User != "ann" || qe.Limit != 42 || !reflect.DeepEqual(qe.Tags, []string{"a", "b"})) {
					t.Errorf("*quotaError = %+v, want the child's fields", qe)
				}
				var rge rangeError
				if got := errors.As(err, &rge); got != tt.want.rng {
					t.Errorf("errors.As(rangeError) = %v, want %v", got, tt.want.rng)
				} else if got && rge.Got == 0 {
					t.Errorf("rangeError = %+v, want the child's fields", rge)
				}
				if errors.Is(err, errOutOfStock) != tt.want.sentinel {
					t.Errorf("errors.Is(errOutOfStock) = %v, want %v", !tt.want.sentinel, tt.want.sentinel)
				}
				// The RemoteError found by errors.As unwraps to the same values.
				if tt.want.quota && !errors.As(re, &qe) {
					t.Errorf("the *RemoteError itself does not unwrap to the *quotaError")
				}
			})
		}
	}
}

// TestUntypedErrorsCross: an unregistered type arrives as a RemoteError
// whose Error names the remote type; a registered value that cannot be
// encoded arrives as a RemoteError whose message says it was not sent.
func TestUntypedErrorsCross(t *testing.T) {
	err := joinErr(t, multiproc.NewProcess(typedFail, "unregistered"))
	var re *multiproc.RemoteError
	var pe *plainTypedError
	if !errors.As(err, &re) || errors.As(err, &pe) || re.Type != "*multiproc_test.plainTypedError" {
		t.Fatalf("err = %v, want a *RemoteError of type *multiproc_test.plainTypedError and no value", err)
	}
	if !strings.Contains(err.Error(), "*multiproc_test.plainTypedError: plain 5") {
		t.Errorf("Error() = %q, want it to name the remote type", err)
	}
	err = joinErr(t, multiproc.NewProcess(typedFail, "unencodable"))
	var he *hiddenError
	if !errors.As(err, &re) || errors.As(err, &he) {
		t.Fatalf("err = %v, want a *RemoteError without the value", err)
	}
	if !strings.HasPrefix(re.Message, "ctx: hidden (multiproc: error type *github.com/multiproc-go/multiproc_test.hiddenError not sent: ") {
		t.Errorf("Message = %q, want the text and a note that the value was not sent", re.Message)
	}
}

func TestRegisterErrorTypeRefusals(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    any
		is   error
		want string
	}{
		{"duplicate", dupErrorTypePanic, multiproc.ErrDuplicate, "*multiproc_test.quotaError"},
		{"interface", interfaceErrorTypePanic, nil, "interface"},
		{"chan field", chanErrorTypePanic, nil, "multiproc_test.chanError.C: chan int cannot cross a process boundary"},
		{"after Main", recoverPanic(func() { multiproc.RegisterErrorType[*plainTypedError]() }), multiproc.ErrLateRegistration, "*multiproc_test.plainTypedError"},
	} {
		err, ok := tt.v.(error)
		if !ok || (tt.is != nil && !errors.Is(err, tt.is)) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: panic value %v, want an error matching %v containing %q", tt.name, tt.v, tt.is, tt.want)
		}
	}
}

// sentinelsToCross lists every sentinel this package exports, and the
// standard ones the brief requires, in an order shared by parent and child.
var sentinelsToCross = []error{
	multiproc.ErrNoMain, multiproc.ErrNotRegistered, multiproc.ErrDuplicate, multiproc.ErrLateRegistration,
	multiproc.ErrBuildMismatch, multiproc.ErrHandshake, multiproc.ErrNotStarted, multiproc.ErrAlreadyStarted,
	multiproc.ErrClosed, multiproc.ErrStillRunning, multiproc.ErrDaemonChildren, multiproc.ErrWorkerDied,
	multiproc.ErrTimeout, multiproc.ErrPoolClosed, multiproc.ErrPoolBroken, multiproc.ErrResultType,
	multiproc.ErrTooLarge, multiproc.ErrNotTransferable, multiproc.ErrOwnerDead, multiproc.ErrFDLimit,
	errors.ErrUnsupported, context.Canceled,
}

var (
	failWithSentinel = multiproc.Register("errors.sentinel", func(_ context.Context, i int) (int, error) {
		return 0, fmt.Errorf("child: %w", sentinelsToCross[i])
	})
	// realSentinels makes the library itself report ErrAlreadyStarted and
	// ErrStillRunning in a child.
	realSentinels = multiproc.Register("errors.realSentinels", func(ctx context.Context, _ int) (int, error) {
		p := multiproc.NewProcess(block, blockArg{Stubborn: true})
		if err := p.Start(ctx); err != nil {
			return 0, err
		}
		again := p.Start(ctx)
		_, running := multiproc.Result[int](p)
		p.Kill()
		p.Join(ctx)
		return 0, errors.Join(again, running)
	})
)

// TestEverySentinelCrosses: each exported sentinel, wrapped in a child,
// matches with errors.Is in the parent, and none matches another.
func TestEverySentinelCrosses(t *testing.T) {
	pool := newPool(t, 1)
	for i, s := range sentinelsToCross {
		_, err := multiproc.Apply(ctxT(t), pool, failWithSentinel, i)
		if !errors.Is(err, s) {
			t.Errorf("%q: errors.Is after crossing = false (err %v)", s, err)
		}
		for j, other := range sentinelsToCross {
			if j != i && errors.Is(err, other) && !errors.Is(s, other) {
				t.Errorf("%q crossed and also matches %q", s, other)
			}
		}
	}
	_, err := multiproc.Apply(ctxT(t), pool, realSentinels, 0)
	if !errors.Is(err, multiproc.ErrAlreadyStarted) || !errors.Is(err, multiproc.ErrStillRunning) {
		t.Errorf("a child's own ErrAlreadyStarted and ErrStillRunning: %v, want both to match", err)
	}
}

// TestExitErrorAs checks that errors.As to the root's *ExitError works on
// a real pool worker death, also wrapped the way the pool wraps timeouts,
// and that the value is the one the engine made (one pointer, not a copy).
func TestExitErrorAs(t *testing.T) {
	pool := newPool(t, 1)
	_, err := multiproc.Apply(ctxT(t), pool, die, "exit")
	var ee *multiproc.ExitError
	if !errors.As(err, &ee) || ee.Code != 7 || !ee.Worker || ee.Pid == 0 || !errors.Is(err, multiproc.ErrWorkerDied) {
		t.Fatalf("err = %v, want an *ExitError of a worker with code 7 matching ErrWorkerDied", err)
	}
	if !errors.Is(ee, multiproc.ErrWorkerDied) || ee.Error() != err.Error() && !strings.Contains(err.Error(), ee.Error()) {
		t.Errorf("*ExitError %q does not match ErrWorkerDied or differs from %q", ee, err)
	}
	wrapped := fmt.Errorf("%w: task: %w", multiproc.ErrTimeout, err)
	var ee2 *multiproc.ExitError
	if !errors.As(wrapped, &ee2) || ee2 != ee || !errors.Is(wrapped, multiproc.ErrTimeout) {
		t.Errorf("errors.As through a double %%w: %v, %p; want the same *ExitError %p", ee2, ee2, ee)
	}
	var ie *errs.ExitError
	if !errors.As(err, &ie) || (*multiproc.ExitError)(ie) != ee {
		t.Errorf("the internal and the public ExitError are not one value")
	}

	// A process's abnormal exit: made by the root itself.
	p := multiproc.NewProcess(die, "exit")
	err = joinErr(t, p)
	if !errors.As(err, &ee) || ee.Code != 7 || ee.Worker || ee.Pid != p.Pid() || errors.Is(err, multiproc.ErrWorkerDied) {
		t.Errorf("process exit: %v, want an *ExitError with code 7, not a worker's", err)
	}
}

// TestOneValuePerCondition: a condition reported by several packages is
// one value, so errors.Is needs no list of look-alikes.
func TestOneValuePerCondition(t *testing.T) {
	if multiproc.ErrTooLarge != wire.ErrFrameTooLarge || multiproc.ErrTooLarge != errs.ErrTooLarge {
		t.Errorf("ErrTooLarge is not wire's frame error")
	}
	internal := &errs.TooLargeError{What: "argument", Size: 10, Limit: 5}
	wrapped := fmt.Errorf("submitting: %w", internal)
	var tl *multiproc.TooLargeError
	if !errors.Is(wrapped, multiproc.ErrTooLarge) || !errors.As(wrapped, &tl) || tl.Size != 10 || (*errs.TooLargeError)(tl) != internal {
		t.Errorf("a wrapped internal *TooLargeError: Is %v, As %v %+v; want both, one value", errors.Is(wrapped, multiproc.ErrTooLarge), tl != nil, tl)
	}
	if !errors.Is(&multiproc.TooLargeError{}, multiproc.ErrTooLarge) {
		t.Errorf("the public *TooLargeError does not match ErrTooLarge")
	}
}

// TestPublicErrorTypesMirrorInternal guards the bridge: the root's types
// must have the internal ones' exported fields, in order.
func TestPublicErrorTypesMirrorInternal(t *testing.T) {
	for _, pair := range [][2]reflect.Type{
		{reflect.TypeFor[multiproc.RemoteError](), reflect.TypeFor[errs.RemoteError]()},
		{reflect.TypeFor[multiproc.ExitError](), reflect.TypeFor[errs.ExitError]()},
		{reflect.TypeFor[multiproc.TooLargeError](), reflect.TypeFor[errs.TooLargeError]()},
	} {
		var pub, in []string
		for _, x := range []struct {
			t   reflect.Type
			out *[]string
		}{{pair[0], &pub}, {pair[1], &in}} {
			for i := range x.t.NumField() {
				if f := x.t.Field(i); f.IsExported() {
					*x.out = append(*x.out, f.Name+" "+f.Type.String())
				}
			}
		}
		if !reflect.DeepEqual(pub, in) {
			t.Errorf("%v fields %v, %v fields %v; want the same", pair[0], pub, pair[1], in)
		}
	}
}
