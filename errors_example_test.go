package multiproc_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/multiproc-go/multiproc"
)

// ErrNoStock is a sentinel that keeps matching after crossing a process
// boundary, because it is registered in a package-level var.
var ErrNoStock = multiproc.RegisterError(errors.New("no stock"))

// NotFoundError is an error type whose values cross process boundaries
// with their fields, because the type is registered.
type NotFoundError struct {
	Key   string
	Shard int
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("key %q not found in shard %d", e.Key, e.Shard)
}

var (
	_ = multiproc.RegisterErrorType[*NotFoundError]()

	exOrder = multiproc.Register("example.order", func(_ context.Context, item string) (int, error) {
		return 0, fmt.Errorf("ordering %s: %w", item, ErrNoStock)
	})
	exLookup = multiproc.Register("example.lookup", func(_ context.Context, key string) (string, error) {
		return "", fmt.Errorf("lookup: %w", &NotFoundError{Key: key, Shard: 3})
	})
)

func ExampleRegisterError() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	_, err = multiproc.Apply(ctx, pool, exOrder, "widgets")
	var re *multiproc.RemoteError
	fmt.Println(errors.Is(err, ErrNoStock), errors.As(err, &re), re.Message)
	// Output: true true ordering widgets: no stock
}

func ExampleRegisterErrorType() {
	ctx := context.Background()
	pool, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	_, err = multiproc.Apply(ctx, pool, exLookup, "user:42")
	// Both the remote error (where it happened) and the value the child
	// returned (with its fields) are there for errors.As.
	var re *multiproc.RemoteError
	var nf *NotFoundError
	if errors.As(err, &re) && errors.As(err, &nf) {
		fmt.Println(re.Func, re.Type)
		fmt.Println(nf.Key, nf.Shard)
	}
	// Output:
	// example.lookup *fmt.wrapError
	// user:42 3
}
