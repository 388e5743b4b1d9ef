package multiproc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/shm"
)

// Resources as Process arguments and results: a file the child writes to,
// files in struct fields and slices, a listener in an interface position,
// and a file the child opens and returns.

type fileJob struct {
	Out   *os.File
	Extra []*os.File
	Note  string
}

var writeToFiles = multiproc.Register("test.write-to-files", func(_ context.Context, j fileJob) (int, error) {
	n := 0
	for _, f := range append([]*os.File{j.Out}, j.Extra...) {
		if _, err := fmt.Fprintf(f, "%s from %d;", j.Note, os.Getpid()); err != nil {
			return n, err
		}
		f.Close() // received resources belong to the receiver
		n++
	}
	return n, nil
})

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func TestProcessResourceArgument(t *testing.T) {
	ctx := context.Background()
	r1, w1 := pipe(t)
	r2, w2 := pipe(t)
	p := multiproc.NewProcess(writeToFiles, fileJob{Out: w1, Extra: []*os.File{w2}, Note: "hi"})
	// The caller may close its copies at once: the Process holds its own.
	w1.Close()
	w2.Close()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := multiproc.Result[int](p)
	if err != nil || n != 2 {
		t.Fatalf("Result = %d, %v", n, err)
	}
	want := fmt.Sprintf("hi from %d;", p.Pid())
	for _, r := range []*os.File{r1, r2} {
		b, err := io.ReadAll(r) // EOF: every write end is closed
		if err != nil || string(b) != want {
			t.Fatalf("read %q, %v; want %q", b, err, want)
		}
	}
}

var openPipe = multiproc.Register("test.open-pipe", func(_ context.Context, msg string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if _, err := io.WriteString(w, msg); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil // the parent gets its own copy; this one closes at exit
})

func TestProcessResourceResult(t *testing.T) {
	ctx := context.Background()
	p := multiproc.NewProcess(openPipe, "from the child")
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := multiproc.Result[*os.File](p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "from the child" {
		t.Fatalf("read %q, %v", b, err)
	}
}

// serveOne accepts one connection on the listener it was given, in a
// position of interface type, and answers with its pid.
var serveOne = multiproc.Register("test.serve-one", func(_ context.Context, ln net.Listener) (string, error) {
	defer ln.Close()
	c, err := ln.Accept()
	if err != nil {
		return "", err
	}
	defer c.Close()
	_, err = fmt.Fprintf(c, "pid %d", os.Getpid())
	return fmt.Sprintf("%T", ln), err
})

func TestProcessListener(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	p := multiproc.NewProcess(serveOne, ln)
	ln.Close() // the child has its own listening socket
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(b) != fmt.Sprintf("pid %d", p.Pid()) {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if typ, _ := multiproc.Result[string](p); typ != "*net.TCPListener" {
		t.Fatalf("child saw a %s", typ)
	}
}

func TestProcessResourceNotStarted(t *testing.T) {
	// A Process closed without starting releases its duplicates (the leak
	// check at the end of the package's tests counts descriptors).
	_, w := pipe(t)
	p := multiproc.NewProcess(writeToFiles, fileJob{Out: w})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); !errors.Is(err, multiproc.ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}

// Resources as pool task arguments and results (CPython cannot pass its
// queues and locks this way: only through inheritance).

func TestPoolResourceArgument(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := multiproc.NewPool(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r, w := pipe(t)
	jobs := make([]fileJob, 20)
	for i := range jobs {
		jobs[i] = fileJob{Out: w, Note: "m"}
	}
	// Map: each item's file travels with its chunk.
	got, err := multiproc.Map(ctx, p, writeToFiles, jobs, multiproc.Chunksize(3))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range got {
		if n != 1 {
			t.Fatalf("item %d wrote to %d files", i, n)
		}
	}
	// Apply, and the caller closing its file while the task is queued.
	res := multiproc.ApplyAsync(ctx, p, writeToFiles, fileJob{Out: w, Note: "a"})
	w.Close()
	if n, err := res.Get(ctx); err != nil || n != 1 {
		t.Fatalf("ApplyAsync = %d, %v", n, err)
	}
	b := make([]byte, 0, 1024)
	for !bytes.Contains(b, []byte("a from")) {
		chunk := make([]byte, 256)
		k, err := r.Read(chunk)
		if err != nil {
			t.Fatalf("read: %v (so far %q)", err, b)
		}
		b = append(b, chunk[:k]...)
	}
	if c := bytes.Count(b, []byte("m from")); c != 20 {
		t.Fatalf("%d map writes arrived, want 20: %q", c, b)
	}
}

func TestPoolResourceResult(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ex, err := multiproc.NewExecutor(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Shutdown(true, false)
	f, err := multiproc.Submit(ctx, ex, openPipe, "via the executor").Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil || string(b) != "via the executor" {
		t.Fatalf("read %q, %v", b, err)
	}
}

// acceptOne serves one connection on the listener its worker's
// initializer received: the pre-fork server pattern.
var (
	workerListener net.Listener
	keepListener   = multiproc.Register("test.keep-listener", func(_ context.Context, ln net.Listener) (struct{}, error) {
		workerListener = ln
		return struct{}{}, nil
	})
	acceptOne = multiproc.Register("test.accept-one", func(_ context.Context, _ struct{}) (int, error) {
		c, err := workerListener.Accept()
		if err != nil {
			return 0, err
		}
		defer c.Close()
		_, err = fmt.Fprintf(c, "%d", os.Getpid())
		return os.Getpid(), err
	})
)

func TestPoolListenerInitializer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	p, err := multiproc.NewPool(ctx, 2, multiproc.Initializer(keepListener, ln))
	ln.Close() // each worker has its own
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 6
	results := make([]*multiproc.AsyncResult[int], n)
	for i := range results {
		results[i] = multiproc.ApplyAsync(ctx, p, acceptOne, struct{}{})
	}
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(b) == 0 {
			t.Fatalf("connection %d: %q, %v", i, b, err)
		}
	}
	for _, r := range results {
		if _, err := r.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// fileWriter is the subclass form with a resource field: Run writes to the
// file it was given and reports back in a plain field.
type fileWriter struct {
	Out  *os.File
	Said string
}

func (w *fileWriter) Run(context.Context) error {
	w.Said = fmt.Sprintf("pid %d", os.Getpid())
	_, err := io.WriteString(w.Out, w.Said)
	return err
}

var _ = multiproc.RegisterProcess[fileWriter]("test.file-writer")

func TestProcessOfResourceField(t *testing.T) {
	ctx := context.Background()
	r, w := pipe(t)
	fw := &fileWriter{Out: w}
	p := multiproc.NewProcessOf(fw)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	// The field came back: a copy of the child's file, the pipe's last
	// write end; closing it lets the read see the end.
	if fw.Out == w {
		t.Fatal("the field still holds the parent's file")
	}
	fw.Out.Close()
	b, err := io.ReadAll(r)
	if err != nil || string(b) != fw.Said || fw.Said != fmt.Sprintf("pid %d", p.Pid()) {
		t.Fatalf("read %q (%v); Said %q", b, err, fw.Said)
	}
}

var (
	loadValue = multiproc.Register("test.load-value", multiproc.Plain(func(v *shm.Value[int64]) int64 {
		if v == nil {
			return -1
		}
		return v.Load()
	}))
	closeValue = multiproc.Register("test.close-value", multiproc.Plain(func(v *shm.Value[int64]) int64 {
		x := v.Load()
		v.Close() // misuse: the worker keeps it for later tasks
		return x
	}))
)

// TestPoolNilResource: a nil resource as the whole argument arrives nil
// (it used to panic in the caller, on the no-reflection path).
func TestPoolNilResource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got, err := multiproc.Apply(ctx, p, loadValue, nil); err != nil || got != -1 {
		t.Fatalf("Apply(nil) = %d, %v; want -1 (nil arrived)", got, err)
	}
	pr := multiproc.NewProcess(loadValue, nil)
	if err := pr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pr.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := multiproc.Result[int64](pr); err != nil || got != -1 {
		t.Fatalf("Process(nil) = %d, %v", got, err)
	}
}

// TestPoolTaskClosesKeptValue: a task that closes the Value its worker
// keeps does not fail the later tasks given the same Value: the worker
// finds it closed and the parent sends it again.
func TestPoolTaskClosesKeptValue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	v, err := shm.NewValue[int64](42)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for i := range 6 {
		got, err := multiproc.Apply(ctx, p, closeValue, v)
		if err != nil || got != 42 {
			t.Fatalf("task %d: %d, %v", i, got, err)
		}
	}
}

// A closed file as an argument is the caller's error, matching os.ErrClosed
// (it said "use of closed file", which matched nothing), and nothing runs.
func TestClosedFileArgument(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, w := pipe(t)
	w.Close()
	p := multiproc.NewProcess(writeToFiles, fileJob{Out: w, Note: "x"})
	if err := p.Start(ctx); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Process.Start with a closed file = %v, want an error matching os.ErrClosed", err)
	}
	pool, err := multiproc.NewPool(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := multiproc.Apply(ctx, pool, writeToFiles, fileJob{Out: w, Note: "x"}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Apply with a closed file = %v, want an error matching os.ErrClosed", err)
	}
}
