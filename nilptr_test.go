package multiproc_test

import (
	"context"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
)

var isNil = multiproc.Register("test.is-nil", multiproc.Plain(func(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p + 1
	return &v
}))

// A nil pointer as the whole argument or result crosses as nil (it failed
// to decode with "EOF" in the worker).
func TestNilPointerArgument(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got, err := multiproc.Apply(ctx, p, isNil, nil); err != nil || got != nil {
		t.Fatalf("Apply(nil) = %v, %v; want nil, nil", got, err)
	}
	x := 41
	if got, err := multiproc.Apply(ctx, p, isNil, &x); err != nil || got == nil || *got != 42 {
		t.Fatalf("Apply(&41) = %v, %v; want &42", got, err)
	}
}
