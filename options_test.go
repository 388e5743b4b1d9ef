package multiproc_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
)

// TestInvalidPoolArguments guards the hardening issue's item 8: a negative
// size or an out-of-range option is an error from NewPool and NewExecutor,
// not a panic and not silently accepted.
func TestInvalidPoolArguments(t *testing.T) {
	ctx := ctxT(t)
	type invalidCase struct {
		name string
		n    int
		opts []multiproc.PoolOption
		want string
	}
	cases := []invalidCase{
		{"negative size", -1, nil, "pool size -1"},
		{"negative MaxTasksPerChild", 1, []multiproc.PoolOption{multiproc.MaxTasksPerChild(-1)}, "MaxTasksPerChild(-1)"},
		{"negative MaxAge", 1, []multiproc.PoolOption{multiproc.MaxAge(-time.Second)}, "MaxAge(-1s)"},
		{"negative TaskTimeout", 1, []multiproc.PoolOption{multiproc.TaskTimeout(-time.Second)}, "TaskTimeout(-1s)"},
		{"zero Grace", 1, []multiproc.PoolOption{multiproc.Grace(0)}, "Grace(0s)"},
		{"negative Retries", 1, []multiproc.PoolOption{multiproc.Retries(-2)}, "Retries(-2)"},
		{"zero RestartIntensity", 1, []multiproc.PoolOption{multiproc.RestartIntensity(0, time.Second)}, "RestartIntensity(0, 1s)"},
		{"negative WorkerMaxProcs", 1, []multiproc.PoolOption{multiproc.WorkerMaxProcs(-1)}, "WorkerMaxProcs(-1)"},
		{"empty WorkerName", 1, []multiproc.PoolOption{multiproc.WorkerName("")}, "WorkerName"},
		{"nil ProgressTo", 1, []multiproc.PoolOption{multiproc.ProgressTo(nil)}, "ProgressTo(nil)"},
		{"nil Logger", 1, []multiproc.PoolOption{multiproc.Logger(nil)}, "Logger(nil)"},
		{"zero MaxMessageSize", 1, []multiproc.PoolOption{multiproc.MaxMessageSize(0)}, "MaxMessageSize(0)"},
	}
	if over := int64(1) << 33; strconv.IntSize == 64 { // a 32-bit int cannot say more than the header
		cases = append(cases, invalidCase{"MaxMessageSize over the header", 1, []multiproc.PoolOption{multiproc.MaxMessageSize(int(over))}, "MaxMessageSize(8589934592)"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := multiproc.NewPool(ctx, c.n, c.opts...)
			if err == nil {
				p.Terminate()
				t.Fatalf("NewPool succeeded, want an error mentioning %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("NewPool error %q, want it to mention %q", err, c.want)
			}
			x, err := multiproc.NewExecutor(ctx, c.n, c.opts...)
			if err == nil {
				x.Shutdown(true, false)
				t.Fatalf("NewExecutor succeeded, want an error")
			}
		})
	}
}

// TestNilContextAndOptionPanic: programmer misuse panics with a message
// that says what was nil.
func TestNilContextAndOptionPanic(t *testing.T) {
	for _, c := range []struct {
		name string
		call func()
		want string
	}{
		//lint:ignore SA1012 a nil context is the point of the test
		{"nil ctx", func() { multiproc.NewPool(nil, 1) }, "nil context"},
		{"nil PoolOption", func() { multiproc.NewPool(context.Background(), 1, nil) }, "nil PoolOption"},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(r.(string), c.want) {
					t.Errorf("panic %v, want one mentioning %q", r, c.want)
				}
			}()
			c.call()
		})
	}
}

// TestInvalidCallOptions guards item 8 for call options: Map and Apply
// return the error; the asynchronous forms return an already-failed
// result; nothing is submitted.
func TestInvalidCallOptions(t *testing.T) {
	p := newPool(t, 1)
	ctx := ctxT(t)
	bad := []struct {
		opt  multiproc.CallOption
		want string
	}{
		{multiproc.Chunksize(-1), "Chunksize(-1)"},
		{multiproc.Prefetch(-1), "Prefetch(-1)"},
		{multiproc.Timeout(-time.Second), "Timeout(-1s)"},
	}
	for _, b := range bad {
		t.Run(b.want, func(t *testing.T) {
			check := func(what string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), b.want) {
					t.Errorf("%s: error %v, want one mentioning %q", what, err, b.want)
				}
			}
			_, err := multiproc.Map(ctx, p, square, []int{1, 2}, b.opt)
			check("Map", err)
			_, err = multiproc.Apply(ctx, p, square, 3, b.opt)
			check("Apply", err)
			r := multiproc.ApplyAsync(ctx, p, square, 3, b.opt)
			if !r.Ready() {
				t.Errorf("ApplyAsync with %s: result not failed at once", b.want)
			}
			_, err = r.Get(ctx)
			check("ApplyAsync", err)
			m := multiproc.MapAsync(ctx, p, square, []int{1}, b.opt)
			if !m.Ready() {
				t.Errorf("MapAsync with %s: result not failed at once", b.want)
			}
			_, err = m.Get(ctx)
			check("MapAsync", err)
			f := multiproc.Submit(ctx, p, square, 3, b.opt)
			if !f.Done() {
				t.Errorf("Submit with %s: future not failed at once", b.want)
			}
			check("Submit", f.Exception(ctx))
			for _, err := range multiproc.Imap(ctx, p, square, func(yield func(int) bool) { yield(1) }, b.opt) {
				check("Imap", err)
			}
		})
	}
	if s := p.Stats(); s.Done+s.Failed != 0 {
		t.Errorf("stats after invalid calls: %+v, want nothing submitted", s)
	}
}

// TestArgumentTooLarge guards item 3: an argument over MaxMessageSize fails
// the call synchronously with ErrTooLarge, naming the function and sizes,
// and submits nothing.
func TestArgumentTooLarge(t *testing.T) {
	p := newPool(t, 1, multiproc.MaxMessageSize(1000))
	ctx := ctxT(t)
	big := strings.Repeat("x", 1001)
	r := multiproc.ApplyAsync(ctx, p, echoString, big)
	if !r.Ready() {
		t.Fatal("ApplyAsync of an oversized argument did not fail at once")
	}
	_, err := r.Get(ctx)
	if !errors.Is(err, multiproc.ErrTooLarge) || !strings.Contains(err.Error(), "1001 bytes") || !strings.Contains(err.Error(), "test.echoString") {
		t.Errorf("error %v, want ErrTooLarge naming the function and the size", err)
	}
	items := make([]string, 10)
	for i := range items {
		items[i] = strings.Repeat("y", 200)
	}
	_, err = multiproc.Map(ctx, p, echoString, items, multiproc.Chunksize(10))
	if !errors.Is(err, multiproc.ErrTooLarge) {
		t.Errorf("Map of an oversized chunk: %v, want ErrTooLarge", err)
	}
	if got, err := multiproc.Apply(ctx, p, echoString, "small"); err != nil || got != "small" {
		t.Errorf("Apply after the refusals = %q, %v", got, err)
	}
	if s := p.Stats(); s.Done != 1 || s.Failed != 0 {
		t.Errorf("stats %+v: the oversized calls must not have been submitted", s)
	}
}

var echoString = multiproc.Register("test.echoString", multiproc.Plain(func(s string) string { return s }))
