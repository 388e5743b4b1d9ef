package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestCustomArgCount: a Call with too few or too many arguments fails
// with ErrArgType and does not run the method.
func TestCustomArgCount(t *testing.T) {
	modes(t, func(t *testing.T, m *Manager) {
		ctx := testCtx(t)
		o, err := Create(ctx, m, counterType.Name())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Call[int](ctx, o, "Add", 3); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			method string
			args   []any
		}{
			{"Add", nil},
			{"Add", []any{1, 2}},
			{"AddNote", nil},
			{"AddNote", []any{1}},
			{"AddNote", []any{1, "x", 3}},
			{"Get", []any{1}},
		} {
			if _, err := Call[any](ctx, o, tc.method, tc.args...); !errors.Is(err, ErrArgType) {
				t.Errorf("%s(%v) = %v, want ErrArgType", tc.method, tc.args, err)
			}
		}
		if n, err := Call[int](ctx, o, "Get"); err != nil || n != 3 {
			t.Fatalf("Get = %d, %v; want 3 (no failed call ran)", n, err)
		}
	})
}

type gobless struct{}

// TestRegisterTypeRefusesGobless: a method whose argument or result type
// gob cannot encode is refused at registration, naming the method.
func TestRegisterTypeRefusesGobless(t *testing.T) {
	ctor := func(context.Context) (*gobless, error) { return &gobless{}, nil }
	for i, m := range []MethodDef[gobless]{
		Method("In", func(ctx context.Context, o *gobless, c chan int) (int, error) { return 0, nil }),
		Method("In", func(ctx context.Context, o *gobless, f []func()) (int, error) { return 0, nil }),
		Method("In", func(ctx context.Context, o *gobless, f struct{ x int }) (int, error) { return 0, nil }),
		Method("Out", func(ctx context.Context, o *gobless, _ struct{}) (map[string]chan int, error) { return nil, nil }),
	} {
		_, err := RegisterType(fmt.Sprintf("test.gobless%d", i), ctor, m)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("method %q: its", m.name)) {
			t.Errorf("RegisterType with method %s(%v) %v = %v, want an error naming the method", m.name, m.in, m.out, err)
		}
	}
}

// TestCallErrorOp: a custom method's CallError names the type and method.
func TestCallErrorOp(t *testing.T) {
	modes(t, func(t *testing.T, m *Manager) {
		ctx := testCtx(t)
		o, err := Create(ctx, m, counterType.Name())
		if err != nil {
			t.Fatal(err)
		}
		_, err = Call[int](ctx, o, "Add", 1000)
		var ce *CallError
		if !errors.As(err, &ce) {
			t.Fatalf("Call error %v is not a *CallError", err)
		}
		if ce.Op != "test.Counter.Add" {
			t.Fatalf("Call error %v: Op %q, want test.Counter.Add", err, ce.Op)
		}
	})
}
