package psync_test

import (
	"context"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/memfd"
)

// testCtx is a generous deadline for a loaded 2-core machine.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// must returns v, panicking (which fails the test) on err: for set-up
// calls that do not fail on a working system.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// counter is shared memory outside psync (a memfd page) that children map
// from the file they are given: a plain uint64 guarded by a lock under
// test.
type counter struct {
	f   *os.File
	mem []byte
}

func newCounter(t *testing.T) *counter {
	f := must(memfd.New("multiproc-psync-test", 4096))
	c := &counter{f: f, mem: must(memfd.Map(f, 0, 4096))}
	t.Cleanup(func() { memfd.Unmap(c.mem); f.Close() })
	return c
}

func (c *counter) p() *uint64 { return (*uint64)(unsafe.Pointer(&c.mem[0])) }

func mapCounter(f *os.File) (*uint64, func(), error) {
	mem, err := memfd.Map(f, 0, 4096)
	f.Close()
	if err != nil {
		return nil, nil, err
	}
	return (*uint64)(unsafe.Pointer(&mem[0])), func() { memfd.Unmap(mem) }, nil
}

func start(t *testing.T, p *multiproc.Process) *multiproc.Process {
	t.Helper()
	if err := p.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill(); p.Join(context.Background()); p.Close() })
	return p
}

func join(t *testing.T, p *multiproc.Process) {
	t.Helper()
	if err := p.Join(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.ExitCode(); code != 0 {
		t.Fatalf("child exit code %d", code)
	}
}
