package errs

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/internal/wire"
)

func TestMain(m *testing.M) { testutil.Run(m) }

var (
	errSame1 = RegisterSentinel(errors.New("same message"))
	errSame2 = RegisterSentinel(errors.New("same message"))
	errOther = RegisterSentinel(errors.New("other"))
)

type customError struct{ N int }

func (e *customError) Error() string { return fmt.Sprintf("custom %d", e.N) }

func roundTrip(t *testing.T, fn string, pid int, err error, panicked bool, stack string) *RemoteError {
	t.Helper()
	re, derr := DecodeError(AppendError(nil, fn, pid, err, panicked, stack))
	if derr != nil {
		t.Fatalf("DecodeError(AppendError(%v)): %v", err, derr)
	}
	return re
}

func TestEnvelopeRoundTrip(t *testing.T) {
	err := fmt.Errorf("while working: %w", &customError{7})
	re := roundTrip(t, "fn", 1234, err, false, "")
	if re.Func != "fn" || re.Pid != 1234 || re.Type != "*fmt.wrapError" || re.Message != "while working: custom 7" || re.Panic || re.Stack != "" {
		t.Errorf("decoded %+v", re)
	}
	re = roundTrip(t, "fn", 1, &customError{1}, false, "")
	if re.Type != "*errs.customError" {
		t.Errorf("Type = %q, want *errs.customError", re.Type)
	}
	re = roundTrip(t, "p", 9, errors.New("boom"), true, "goroutine 1 [running]:\nmain.explode()")
	if !re.Panic || re.Type != "panic" || re.Message != "boom" || !strings.Contains(re.Stack, "main.explode") {
		t.Errorf("decoded panic %+v", re)
	}
	if got := re.Error(); got != `multiproc: panic in "p" in pid 9: boom` {
		t.Errorf("Error() = %q", got)
	}
	if got := roundTrip(t, "", 5, errors.New("x"), false, "").Error(); got != "multiproc: pid 5: x" {
		t.Errorf("Error() without a function = %q", got)
	}
}

func TestSentinelsAcrossEnvelope(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		is    []error
		isNot []error
	}{
		{"registered", fmt.Errorf("wrapped: %w", errOther), []error{errOther}, []error{errSame1, errSame2}},
		{"same message, first", errSame1, []error{errSame1}, []error{errSame2, errOther}},
		{"same message, second", fmt.Errorf("w: %w", errSame2), []error{errSame2}, []error{errSame1}},
		{"standard", fmt.Errorf("slow: %w", context.DeadlineExceeded), []error{context.DeadlineExceeded}, []error{context.Canceled}},
		{"several", errors.Join(errOther, context.Canceled), []error{errOther, context.Canceled}, []error{errSame1}},
		{"unregistered", errors.New("same message"), nil, []error{errSame1, errSame2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re := roundTrip(t, "f", 1, tt.err, false, "")
			for _, s := range tt.is {
				if !errors.Is(re, s) {
					t.Errorf("errors.Is(remote, %q) = false", s)
				}
			}
			for _, s := range tt.isNot {
				if errors.Is(re, s) {
					t.Errorf("errors.Is(remote, %q) = true", s)
				}
			}
		})
	}
	if RegisterSentinel(errOther) != errOther {
		t.Errorf("registering a sentinel again did not return it")
	}
	defer func() {
		if recover() == nil {
			t.Errorf("RegisterSentinel(nil) did not panic")
		}
	}()
	RegisterSentinel(nil)
}

// TestNestedEnvelope checks that a remote error passed on by a middle
// process keeps the innermost function, pid, type, message, stack and
// sentinels, and that wrapping it in the middle makes a new error that
// still matches the sentinels.
func TestNestedEnvelope(t *testing.T) {
	inner := roundTrip(t, "inner", 30, fmt.Errorf("deep: %w", errOther), true, "stack of inner")
	passed := roundTrip(t, "middle", 20, inner, false, "")
	if passed.Func != "inner" || passed.Pid != 30 || passed.Message != inner.Message || passed.Stack != "stack of inner" || !passed.Panic || !errors.Is(passed, errOther) {
		t.Errorf("passed-on remote error = %+v, want the inner one", passed)
	}
	wrapped := roundTrip(t, "middle", 20, fmt.Errorf("middle saw: %w", inner), false, "")
	if wrapped.Func != "middle" || wrapped.Pid != 20 || !strings.HasPrefix(wrapped.Message, "middle saw: ") || !errors.Is(wrapped, errOther) {
		t.Errorf("wrapped remote error = %+v, want the middle's with the inner's sentinels", wrapped)
	}
}

func TestDecodeErrorCorrupt(t *testing.T) {
	good := AppendError(nil, "fn", 42, fmt.Errorf("x: %w", errOther), true, "stack")
	for n := range len(good) {
		if _, err := DecodeError(good[:n]); err == nil {
			t.Errorf("DecodeError of %d of %d bytes succeeded", n, len(good))
		}
	}
	if _, err := DecodeError(append(good, 0)); !errors.Is(err, wire.ErrCorrupt) {
		t.Errorf("trailing byte: %v, want ErrCorrupt", err)
	}
	// Flags, empty func, pid 0, type, message, stack, then 2^40 keys.
	huge := []byte{0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20}
	if _, err := DecodeError(huge); !errors.Is(err, wire.ErrCorrupt) {
		t.Errorf("2^40 keys: %v, want ErrCorrupt", err)
	}
	// A key this binary never registered (another build) is ignored.
	b := wire.AppendString([]byte{0}, "fn")
	b = append(b, 1)
	b = wire.AppendString(b, "T")
	b = wire.AppendString(b, "msg")
	b = wire.AppendString(b, "")
	b = append(b, 1)
	b = wire.AppendString(b, "never registered#0")
	re, err := DecodeError(b)
	if err != nil || re.Message != "msg" || len(re.Unwrap()) != 0 {
		t.Errorf("unknown key: %+v, %v; want a plain remote error", re, err)
	}
}

func TestExitError(t *testing.T) {
	tests := []struct {
		err    *ExitError
		msg    string
		worker bool
	}{
		{&ExitError{Pid: 12, Code: 3}, "multiproc: process 12 exited with code 3", false},
		{&ExitError{Pid: 12, Code: -9, Signal: syscall.SIGKILL}, "multiproc: process 12 was killed by signal 9 (killed)", false},
		{&ExitError{Pid: 7, Code: -15, Signal: syscall.SIGTERM, Worker: true}, "multiproc: worker 7 was killed by signal 15 (terminated)", true},
		{&ExitError{Pid: 7, Code: 2, Worker: true, Reason: "out of memory"}, "multiproc: worker 7 exited with code 2: out of memory", true},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.msg {
			t.Errorf("Error() = %q, want %q", got, tt.msg)
		}
		if got := errors.Is(tt.err, ErrWorkerDied); got != tt.worker {
			t.Errorf("%q: errors.Is(ErrWorkerDied) = %v, want %v", tt.msg, got, tt.worker)
		}
		if errors.Is(tt.err, ErrTimeout) {
			t.Errorf("%q matches ErrTimeout", tt.msg)
		}
	}
	wrapped := fmt.Errorf("task 3: %w", &ExitError{Pid: 1, Code: 1, Worker: true})
	if !errors.Is(wrapped, ErrWorkerDied) {
		t.Errorf("wrapped worker ExitError does not match ErrWorkerDied")
	}
}

// FuzzDecodeError feeds the error envelope decoder arbitrary bytes. It must
// never panic, and what it decodes must survive being passed on (the
// nested-process path) unchanged, typed errors included, except that a
// panic's type is "panic".
func FuzzDecodeError(f *testing.F) {
	f.Add(AppendError(nil, "fn", 42, fmt.Errorf("x: %w", errOther), false, ""))
	f.Add(AppendError(nil, "p", 1, errors.New("boom"), true, "goroutine 1 [running]:"))
	f.Add(AppendError(nil, "", 0, errors.Join(errSame1, errSame2, context.Canceled), false, ""))
	f.Add([]byte{})
	f.Add(AppendError(nil, "typed", 7, fmt.Errorf("ctx: %w", &codeError{Code: 42}), false, ""))
	f.Add(AppendError(nil, "typed", 7, errors.Join(limitError{Limit: 1}, &codeError{Code: 2}, errOther), false, ""))
	f.Fuzz(func(t *testing.T, b []byte) {
		re, err := DecodeError(b)
		if err != nil {
			return
		}
		again, err := DecodeError(AppendError(nil, "other", 99, re, false, ""))
		if err != nil {
			t.Fatalf("passing on a decoded error: %v", err)
		}
		want := *re
		if want.Panic {
			want.Type = "panic"
		}
		if !reflect.DeepEqual(again, &want) {
			t.Fatalf("passed on:\n%+v\nwant\n%+v", again, &want)
		}
	})
}
