package manager

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

type stubborn struct{}

var (
	stubbornIn      = make(chan struct{}, 1)
	stubbornRelease atomic.Pointer[chan struct{}] // one per test run
)

var stubbornType = MustRegisterType("test.Stubborn", func(context.Context) (*stubborn, error) { return &stubborn{}, nil },
	Method("Hold", func(ctx context.Context, _ *stubborn, _ struct{}) (int, error) {
		stubbornIn <- struct{}{}
		<-*stubbornRelease.Load() // ignores ctx
		return 0, nil
	}))

// TestServerShutdownBounded: Shutdown's ctx bounds the wait for a custom
// method that ignores its ctx.
func TestServerShutdownBounded(t *testing.T) {
	release := make(chan struct{})
	stubbornRelease.Store(&release)
	srv, _ := serveTCP(t)
	ctx := testCtx(t)
	m := connect(t, srv.Addr().String())
	o, err := Create(ctx, m, stubbornType.Name())
	if err != nil {
		t.Fatal(err)
	}
	called := make(chan error, 1)
	go func() { _, err := Call[int](ctx, o, "Hold"); called <- err }()
	<-stubbornIn
	sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a method holding on = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	if err := <-called; !errors.Is(err, ErrConnLost) {
		t.Fatalf("the call during shutdown = %v, want ErrConnLost", err)
	}
	close(release)
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown once the method returned = %v", err)
	}
}
