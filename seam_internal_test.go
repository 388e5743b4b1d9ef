package multiproc

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	eng "github.com/multiproc-go/multiproc/internal/engine"
)

// fakeEngine is an engine from outside internal/core, plugged in through
// Config.New as the cluster backend will be: it runs tasks in-process by
// echoing their payload, and cannot carry descriptors.
type fakeEngine struct {
	cfg eng.Config

	mu        sync.Mutex
	submitted int
	closed    bool
}

func (f *fakeEngine) Submit(ts ...*eng.Task) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrPoolClosed
	}
	f.submitted += len(ts)
	f.mu.Unlock()
	for _, t := range ts {
		go t.Settle(eng.Result{Data: t.Payload, Outcome: eng.Done})
	}
	return nil
}
func (f *fakeEngine) Cancel(t *eng.Task, err error) bool {
	return t.Settle(eng.Result{Err: err, Outcome: eng.Cancelled})
}
func (f *fakeEngine) CancelPending(error)         {}
func (f *fakeEngine) Running(*eng.Task) bool      { return false }
func (f *fakeEngine) StartClose()                 { f.mu.Lock(); f.closed = true; f.mu.Unlock() }
func (f *fakeEngine) Close(context.Context) error { f.StartClose(); return nil }
func (f *fakeEngine) Terminate() error            { f.StartClose(); return nil }
func (f *fakeEngine) Join(context.Context) error  { return nil }
func (f *fakeEngine) Stats() eng.Stats {
	return eng.Stats{Duplicates: 3, PerHost: []eng.HostStats{{Host: "h1", Done: 1}}}
}
func (f *fakeEngine) Size() int         { return f.cfg.Workers }
func (f *fakeEngine) CanTransfer() bool { return false }
func (f *fakeEngine) count() int        { f.mu.Lock(); defer f.mu.Unlock(); return f.submitted }
func fakeBackend(got **fakeEngine) PoolOption {
	return func(c *eng.Config) error {
		c.New = func(_ context.Context, cfg eng.Config) (eng.Engine, error) {
			*got = &fakeEngine{cfg: cfg}
			return *got, nil
		}
		return nil
	}
}

// withFD is a resource: it declares that it needs descriptors.
type withFD struct{ FD int }

func (withFD) NeedsDescriptors() bool { return true }

var (
	seamEcho     = Register("seam.echo", Plain(func(s string) string { return s }))
	seamResource = Register("seam.resource", Plain(func(w withFD) int { return w.FD }))
)

// TestEngineSeam guards item 15: an engine built outside internal/core
// receives the root's pool options through Config, serves the typed API
// unchanged, reports remote-only stats, and an argument holding a resource
// is refused with ErrNotTransferable before it reaches an engine that
// cannot carry descriptors.
func TestEngineSeam(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var fe *fakeEngine
	p, err := NewPool(ctx, 3, fakeBackend(&fe), Retries(2), TaskTimeout(time.Second), MaxMessageSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if fe.cfg.Workers != 3 || fe.cfg.Retries != 2 || fe.cfg.TaskTimeout != time.Second || fe.cfg.MaxMessageSize != 1<<20 || fe.cfg.Logger == nil {
		t.Errorf("the engine got Config %+v; want the pool's options and a logger", fe.cfg)
	}
	if got, err := Apply(ctx, p, seamEcho, "hi"); err != nil || got != "hi" {
		t.Errorf("Apply through the fake engine = %q, %v", got, err)
	}
	if got, err := Map(ctx, p, seamEcho, []string{"a", "b", "c"}); err != nil || len(got) != 3 || got[2] != "c" {
		t.Errorf("Map through the fake engine = %q, %v", got, err)
	}
	before := fe.count()
	for name, err := range map[string]error{
		"Apply":    func() error { _, err := Apply(ctx, p, seamResource, withFD{7}); return err }(),
		"Submit":   Submit(ctx, p, seamResource, withFD{7}).Exception(ctx),
		"MapAsync": func() error { _, err := Map(ctx, p, seamResource, []withFD{{1}}); return err }(),
		"Imap": func() error {
			for _, err := range Imap(ctx, p, seamResource, func(yield func(withFD) bool) { yield(withFD{1}) }) {
				return err
			}
			return nil
		}(),
	} {
		if !errors.Is(err, ErrNotTransferable) {
			t.Errorf("%s of a resource argument: %v, want ErrNotTransferable", name, err)
		}
	}
	if fe.count() != before {
		t.Errorf("resource arguments reached the engine (%d submissions)", fe.count()-before)
	}
	if s := p.Stats(); s.Duplicates != 3 || len(s.PerHost) != 1 || s.PerHost[0].Host != "h1" {
		t.Errorf("Stats = %+v, want the engine's remote counts", s)
	}
}

// batch holds a file deep inside, behind an interface-typed position that
// no static check can see into.
type batch struct {
	Jobs []struct{ Out any }
}

var seamBatch = Register("seam.batch", Plain(func(b batch) int { return len(b.Jobs) }))

// TestEngineSeamDynamicResource: an argument whose resource is visible
// only at run time (a file in an interface field) is refused by an engine
// that cannot carry descriptors, with its path, before submitting.
func TestEngineSeamDynamicResource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var fe *fakeEngine
	p, err := NewPool(ctx, 1, fakeBackend(&fe))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b batch
	b.Jobs = make([]struct{ Out any }, 3)
	b.Jobs[2].Out = f
	before := fe.count()
	_, err = Apply(ctx, p, seamBatch, b)
	if !errors.Is(err, ErrNotTransferable) || !strings.Contains(err.Error(), "batch.Jobs[2].Out") {
		t.Fatalf("got %v, want ErrNotTransferable naming batch.Jobs[2].Out", err)
	}
	if _, err := Map(ctx, p, seamBatch, []batch{{}, b}); !errors.Is(err, ErrNotTransferable) {
		t.Fatalf("Map: %v", err)
	}
	if fe.count() != before {
		t.Fatal("the argument reached the engine")
	}
	// Without the file, the same type goes through (the fake engine
	// echoes the payload as the result, so only the error is checked).
	b.Jobs[2].Out = 7
	if err := ApplyAsync(ctx, p, seamBatch, b).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if fe.count() != before+1 {
		t.Fatal("the argument without a resource did not reach the engine")
	}
}
