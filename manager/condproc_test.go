package manager

import (
	"context"
	"fmt"
	"testing"

	"github.com/multiproc-go/multiproc"
)

type condArgs struct {
	C *Condition
	V *Value[int]
}

// condChild announces itself (V=1, NotifyAll), then waits on the
// condition for the parent's V=2.
var condChild = multiproc.Register("manager_test.condChild", multiproc.NoResult(func(ctx context.Context, a condArgs) error {
	defer a.C.Close()
	defer a.V.Close()
	if _, ok := a.C.Locker().(*Lock); !ok {
		return fmt.Errorf("the received condition's lock is a %T, want a *Lock", a.C.Locker())
	}
	if err := a.C.Lock(ctx); err != nil {
		return err
	}
	if err := a.V.Set(ctx, 1); err != nil {
		return err
	}
	if err := a.C.NotifyAll(ctx); err != nil {
		return err
	}
	var werr error
	if err := a.C.WaitFor(ctx, func() bool {
		v, err := a.V.Get(ctx)
		if err != nil {
			werr = err
			return true
		}
		return v == 2
	}); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	if err := a.V.Set(ctx, 3); err != nil {
		return err
	}
	return a.C.Unlock()
}))

// TestConditionToChild passes a Condition to a child process that
// notifies the parent and waits for it.
func TestConditionToChild(t *testing.T) {
	ctx := testCtx(t)
	m := startManager(t)
	l, err := NewLock(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCondition(ctx, m, l)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValue(ctx, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	p := multiproc.NewProcess(condChild, condArgs{C: c, V: v})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	is := func(want int) func() bool {
		return func() bool {
			got, err := v.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return got == want
		}
	}
	if err := c.WaitFor(ctx, is(1)); err != nil {
		t.Fatal(err)
	}
	if err := v.Set(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.NotifyAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.ExitCode(); code != 0 {
		_, err := multiproc.Result[struct{}](p)
		t.Fatalf("child exit %d: %v", code, err)
	}
	if !is(3)() {
		t.Fatal("the child did not finish its wait")
	}
}
