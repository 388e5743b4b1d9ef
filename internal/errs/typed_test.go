package errs

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// codeError is a pointer-receiver error with a pointer field: gob path.
type codeError struct {
	Code  int
	Where *string
}

func (e *codeError) Error() string { return fmt.Sprintf("code %d", e.Code) }

// limitError is a pointer-free value type: raw path.
type limitError struct{ Limit, Used int64 }

func (e limitError) Error() string { return fmt.Sprintf("used %d of %d", e.Used, e.Limit) }

// opaqueError has no exported fields and holds a pointer, so gob cannot
// encode it.
type opaqueError struct{ _ *int }

func (e *opaqueError) Error() string { return "opaque" }

// unregisteredError is never registered.
type unregisteredError struct{ N int }

func (e *unregisteredError) Error() string { return "unregistered" }

func registerForTest[E error]() {
	c := wire.For[E]()
	err := RegisterType(reflect.TypeFor[E](),
		func(dst []byte, err error) ([]byte, error) { return c.Append(dst, err.(E)) },
		func(src []byte) (error, error) {
			v, err := c.Decode(src)
			if err != nil {
				return nil, err
			}
			return v, nil
		})
	if err != nil {
		panic(err)
	}
}

func init() {
	registerForTest[*codeError]()
	registerForTest[limitError]()
	registerForTest[*opaqueError]()
}

func TestRegisterTypeRefusals(t *testing.T) {
	enc := func(dst []byte, err error) ([]byte, error) { return dst, nil }
	dec := func([]byte) (error, error) { return nil, nil }
	if err := RegisterType(reflect.TypeFor[*codeError](), enc, dec); !errors.Is(err, ErrDuplicate) {
		t.Errorf("registering *codeError again: %v, want ErrDuplicate", err)
	}
	if err := RegisterType(reflect.TypeFor[error](), enc, dec); err == nil || !strings.Contains(err.Error(), "interface") {
		t.Errorf("registering an interface: %v, want a refusal", err)
	}
	if got, want := TypeName(reflect.TypeFor[*codeError]()), "*github.com/multiproc-go/multiproc/internal/errs.codeError"; got != want {
		t.Errorf("TypeName = %q, want %q", got, want)
	}
}

// TestTypedErrorsCross guards item 7: a registered error type in the
// chain arrives as a value errors.As finds, with its fields, however it
// was wrapped; an unregistered one leaves a plain RemoteError naming it.
func TestTypedErrorsCross(t *testing.T) {
	where := "disk"
	tests := []struct {
		name     string
		err      error
		panicked bool
		code     int   // want a *codeError with this Code, if not 0
		limit    int64 // want a limitError with this Limit, if not 0
	}{
		{"pointer type", &codeError{Code: 42, Where: &where}, false, 42, 0},
		{"value type", limitError{Limit: 10, Used: 11}, false, 0, 10},
		{"wrapped", fmt.Errorf("ctx: %w", &codeError{Code: 7}), false, 7, 0},
		{"joined", errors.Join(errOther, fmt.Errorf("a: %w", limitError{Limit: 3}), &codeError{Code: 5}), false, 5, 3},
		{"panic value", &PanicTest{Value: &codeError{Code: 9}}, true, 9, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re := roundTrip(t, "f", 3, tt.err, tt.panicked, "")
			var ce *codeError
			if got := errors.As(re, &ce); got != (tt.code != 0) || got && ce.Code != tt.code {
				t.Errorf("errors.As(*codeError) = %v %+v, want Code %d", got, ce, tt.code)
			}
			var le limitError
			if got := errors.As(re, &le); got != (tt.limit != 0) || got && le.Limit != tt.limit {
				t.Errorf("errors.As(limitError) = %v %+v, want Limit %d", got, le, tt.limit)
			}
			if tt.name == "pointer type" && (ce.Where == nil || *ce.Where != "disk") {
				t.Errorf("pointer field did not cross: %+v", ce)
			}
			if tt.name == "joined" && !errors.Is(re, errOther) {
				t.Errorf("sentinel lost beside typed errors")
			}
		})
	}

	re := roundTrip(t, "f", 3, fmt.Errorf("w: %w", &unregisteredError{1}), false, "")
	var ue *unregisteredError
	if errors.As(re, &ue) || len(re.typed) != 0 {
		t.Errorf("an unregistered type crossed as a value")
	}
	re = roundTrip(t, "f", 3, &unregisteredError{1}, false, "")
	if got, want := re.Error(), `multiproc: "f" in pid 3: *errs.unregisteredError: unregistered`; got != want {
		t.Errorf("Error() = %q, want %q (naming the remote type)", got, want)
	}
}

// PanicTest stands in for registry.PanicError, which this package cannot
// import: a panic whose value is an error unwraps to it.
type PanicTest struct{ Value error }

func (p *PanicTest) Error() string { return p.Value.Error() }
func (p *PanicTest) Unwrap() error { return p.Value }

// TestTypedErrorNotEncodable: a registered value that cannot be encoded
// leaves a plain RemoteError whose message says so; the error is not lost.
func TestTypedErrorNotEncodable(t *testing.T) {
	re := roundTrip(t, "f", 3, fmt.Errorf("ctx: %w", &opaqueError{}), false, "")
	var oe *opaqueError
	if errors.As(re, &oe) {
		t.Errorf("an unencodable value crossed")
	}
	if !strings.HasPrefix(re.Message, "ctx: opaque (multiproc: error type *github.com/multiproc-go/multiproc/internal/errs.opaqueError not sent: ") {
		t.Errorf("Message = %q, want the error's text and a note that the value was not sent", re.Message)
	}
}

// TestNestedTypedErrors: a middle process passing a remote error on, or
// wrapping it, keeps the typed errors, also of types it does not know.
func TestNestedTypedErrors(t *testing.T) {
	inner := roundTrip(t, "inner", 30, fmt.Errorf("deep: %w", &codeError{Code: 1}), false, "")
	// A type only the innermost process knows: an entry this process
	// cannot rebuild.
	inner.typed = append(inner.typed, typedEntry{name: "example.com/other.Error", data: []byte{1, 2}})
	for _, err := range []error{inner, fmt.Errorf("middle: %w", inner), errors.Join(errOther, inner)} {
		got := roundTrip(t, "middle", 20, err, false, "")
		var ce *codeError
		if !errors.As(got, &ce) || ce.Code != 1 {
			t.Errorf("%v: typed error lost: %+v", err, ce)
		}
		if len(got.typed) != 2 || got.typed[1].name != "example.com/other.Error" {
			t.Errorf("%v: typed entries %+v, want the inner's two", err, got.typed)
		}
	}
}

// TestTypedSectionDegrades: a damaged or unknown typed section never fails
// the envelope; the error arrives as a plain RemoteError.
func TestTypedSectionDegrades(t *testing.T) {
	good := AppendError(nil, "fn", 42, fmt.Errorf("x: %w", &codeError{Code: 3}), false, "")
	base := AppendError(nil, "fn", 42, fmt.Errorf("x: %w", errors.New("code 3")), false, "")
	base[0] |= flagTyped // same fields; the section starts here
	if !bytes.HasPrefix(good[1:], base[1:]) {
		t.Fatalf("typed envelope does not extend the plain one")
	}
	check := func(name string, b []byte, wantTyped bool) {
		t.Helper()
		re, err := DecodeError(b)
		if err != nil {
			t.Fatalf("%s: DecodeError = %v, want a plain RemoteError", name, err)
		}
		if re.Func != "fn" || re.Pid != 42 || re.Message != "x: code 3" {
			t.Errorf("%s: decoded %+v", name, re)
		}
		var ce *codeError
		if errors.As(re, &ce) != wantTyped {
			t.Errorf("%s: typed error found = %v, want %v", name, !wantTyped, wantTyped)
		}
	}
	check("intact", good, true)
	for n := len(base); n < len(good); n++ {
		check(fmt.Sprintf("truncated to %d of %d", n, len(good)), good[:n], false)
	}
	check("trailing byte", append(bytes.Clone(good), 0), false)
	other := bytes.Clone(good)
	other[len(base)] = typedVersion + 1
	check("unknown version", other, false)
	huge := append(bytes.Clone(base), typedVersion, 0xff, 0xff, 0xff, 0xff, 0x0f)
	check("2^32 entries", huge, false)
	// Bytes that do not decode as the named type: kept, not rebuilt.
	bad := append(bytes.Clone(base), typedVersion, 1)
	bad = wire.AppendString(bad, TypeName(reflect.TypeFor[*codeError]()))
	bad = wire.AppendBytes(bad, []byte("not gob"))
	check("bad encoding", bad, false)
	re, _ := DecodeError(bad)
	if len(re.typed) != 1 {
		t.Errorf("an undecodable entry was dropped: %+v, want it kept for passing on", re.typed)
	}
	raw := append(bytes.Clone(base), typedVersion, 1)
	raw = wire.AppendString(raw, TypeName(reflect.TypeFor[limitError]()))
	raw = wire.AppendBytes(raw, []byte{1, 2, 3})
	check("short raw value", raw, false)
}
