package multiproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
)

// Functions of the review-r2 tests.
var (
	// r2Nested runs a grandchild chosen by mode and returns its failure.
	r2Nested = multiproc.Register("r2.nested", func(ctx context.Context, mode string) (struct{}, error) {
		switch mode {
		case "exit": // a grandchild that exits with code 3, its ExitError wrapped
			p := multiproc.NewProcess(r2Exit, 3)
			if err := p.Start(ctx); err != nil {
				return struct{}{}, err
			}
			return struct{}{}, fmt.Errorf("grandchild: %w", p.Join(ctx))
		case "toolarge": // a grandchild's argument over its MaxMessageSize
			p := multiproc.NewProcess(r2Exit, 0)
			p.MaxMessageSize = 1
			return struct{}{}, p.Start(ctx)
		}
		return struct{}{}, fmt.Errorf("unknown mode %q", mode)
	})
	r2Exit = multiproc.Register("r2.exit", func(_ context.Context, code int) (struct{}, error) {
		os.Exit(code)
		return struct{}{}, nil
	})
	r2BigResult = multiproc.Register("r2.bigResult", multiproc.Plain(func(n int) []byte { return make([]byte, n) }))
)

// TestReviewLibraryErrorsCrossProcesses: the package's own error types,
// which its docs say to get with errors.As, are lost when they cross a
// process boundary. A child whose result is over MaxMessageSize, or that
// returns a grandchild's *ExitError or *TooLargeError, reaches the parent
// as a *RemoteError in which errors.As finds neither *ExitError nor
// *TooLargeError (only errors.Is(ErrTooLarge) holds), and whose Type
// names an internal package ("*errs.TooLargeError"), not one the user
// can name.
func TestReviewLibraryErrorsCrossProcesses(t *testing.T) {
	join := func(t *testing.T, p *multiproc.Process) (*multiproc.RemoteError, error) {
		t.Helper()
		if err := startWithin(t, procCtx(t), p); err != nil {
			t.Fatal(err)
		}
		err := p.Join(procCtx(t))
		var re *multiproc.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("Join = %v, want a *RemoteError", err)
		}
		if strings.Contains(re.Type, "errs.") || strings.Contains(err.Error(), "errs.") {
			t.Errorf("RemoteError.Type = %q, Error() = %q: names an internal type", re.Type, err)
		}
		return re, err
	}
	t.Run("result over MaxMessageSize", func(t *testing.T) {
		p := multiproc.NewProcess(r2BigResult, 10000)
		p.MaxMessageSize = 1000
		_, err := join(t, p)
		var tl *multiproc.TooLargeError
		if !errors.As(err, &tl) || tl.What != "result" || tl.Func != "r2.bigResult" || tl.Limit != 1000 {
			t.Errorf("errors.As(%v, *TooLargeError) = %v, %+v; want the result's sizes", err, errors.As(err, &tl), tl)
		}
	})
	t.Run("grandchild argument too large", func(t *testing.T) {
		_, err := join(t, multiproc.NewProcess(r2Nested, "toolarge"))
		var tl *multiproc.TooLargeError
		if !errors.Is(err, multiproc.ErrTooLarge) || !errors.As(err, &tl) || tl.What != "argument" || tl.Func != "r2.exit" || tl.Limit != 1 {
			t.Errorf("errors.As(%v, *TooLargeError) = %+v; want the grandchild's argument sizes", err, tl)
		}
	})
	t.Run("grandchild exit code", func(t *testing.T) {
		_, err := join(t, multiproc.NewProcess(r2Nested, "exit"))
		var ee *multiproc.ExitError
		if !errors.As(err, &ee) || ee.Code != 3 || ee.Pid == 0 {
			t.Errorf("errors.As(%v, *ExitError) = %+v; want the grandchild's exit code 3", err, ee)
		}
	})
}

// TestReviewSmallLimitResult: Process.MaxMessageSize documents that a
// result over the limit makes Join return a *RemoteError matching
// ErrTooLarge (exit code 1). With a small limit (here 100 bytes) the
// child's own error report does not fit either, the parent's reader
// refuses it, and Join returns "reading the result ...: header announces
// 271 bytes, limit 100": no RemoteError, and a size that is neither the
// result's nor the user's.
func TestReviewSmallLimitResult(t *testing.T) {
	p := multiproc.NewProcess(r2BigResult, 1000)
	p.MaxMessageSize = 100
	if err := startWithin(t, procCtx(t), p); err != nil {
		t.Fatal(err)
	}
	err := p.Join(procCtx(t))
	var re *multiproc.RemoteError
	if !errors.Is(err, multiproc.ErrTooLarge) || !errors.As(err, &re) || !strings.Contains(re.Message, "result") {
		t.Errorf("Join = %v; want a *RemoteError matching ErrTooLarge that says the result was too large", err)
	}
	if code, ok := p.ExitCode(); !ok || code != 1 {
		t.Errorf("ExitCode() = %d, %v; want 1, true", code, ok)
	}
}

// r2Node is a recursive type: a value of it may hold a cycle.
type r2Node struct {
	V    int
	Next *r2Node
}

var r2Len = multiproc.Register("r2.len", multiproc.Plain(func(n r2Node) int {
	c := 0
	for p := &n; p != nil; p = p.Next {
		c++
	}
	return c
}))

func init() {
	helpers["r2-cycle"] = func() int {
		n := &r2Node{V: 1}
		n.Next = n
		p := multiproc.NewProcess(r2Len, *n)
		err := p.Start(context.Background())
		fmt.Printf("start: %v\n", err)
		if err == nil {
			p.Kill()
			p.Join(context.Background())
		}
		return 0
	}
}

// TestReviewCyclicArgument: an argument holding a pointer cycle (Python's
// pickle carries those) kills the whole parent program with "fatal error:
// stack overflow" after growing a 1 GB stack inside encoding/gob, in
// NewProcess (the same holds for pool tasks). It cannot be recovered.
// Start should fail with an error that names the type and the cycle.
func TestReviewCyclicArgument(t *testing.T) {
	stdout, stderr, err := runHelperProgram(t, "r2-cycle")
	if err != nil || !strings.Contains(stdout, "start: ") || !strings.Contains(stdout, "cycl") || !strings.Contains(stdout, "r2Node") {
		if len(stderr) > 300 {
			stderr = stderr[:300] + "…"
		}
		t.Fatalf("helper: %v; stdout %q; stderr %q; want Start to fail with an error naming the cycle", err, stdout, stderr)
	}
}

// r2NilError is an error type with a pointer receiver that a function
// returns as a typed nil: Go's classic "nil error that is not nil".
type r2NilError struct{ Code int }

func (e *r2NilError) Error() string { return fmt.Sprintf("r2 error %d", e.Code) }

// r2PanicError's Error method panics.
type r2PanicError struct{}

func (r2PanicError) Error() string { panic("Error method exploded") }

var r2BadError = multiproc.Register("r2.badError", func(_ context.Context, mode string) (int, error) {
	if mode == "typed-nil" {
		var e *r2NilError
		return 0, e
	}
	return 0, r2PanicError{}
})

// TestReviewErrorMethodPanics: a target that returns a typed nil error
// (or an error whose Error method panics) makes the child's error
// reporting itself panic: the child dies with Go's exit status 2 and a
// trace on stderr, and the parent gets only "process N exited with code
// 2", an *ExitError with no word of the function or its error; a pool
// worker dies the same way (ErrWorkerDied). Expected: a *RemoteError
// (exit code 1) naming the type, as fmt would print the value.
func TestReviewErrorMethodPanics(t *testing.T) {
	for _, mode := range []string{"typed-nil", "panics"} {
		t.Run("Process "+mode, func(t *testing.T) {
			p := multiproc.NewProcess(r2BadError, mode)
			if err := startWithin(t, procCtx(t), p); err != nil {
				t.Fatal(err)
			}
			err := p.Join(procCtx(t))
			var re *multiproc.RemoteError
			if !errors.As(err, &re) || re.Func != "r2.badError" || !strings.Contains(re.Type, "r2") {
				t.Errorf("Join = %v; want a *RemoteError from r2.badError naming the error type", err)
			}
			if code, _ := p.ExitCode(); code != 1 {
				t.Errorf("ExitCode = %d, want 1", code)
			}
		})
		t.Run("Pool "+mode, func(t *testing.T) {
			pool, err := multiproc.NewPool(ctxT(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			_, err = multiproc.Apply(ctxT(t), pool, r2BadError, mode)
			var re *multiproc.RemoteError
			if !errors.As(err, &re) || errors.Is(err, multiproc.ErrWorkerDied) {
				t.Errorf("Apply = %v; want a *RemoteError, not a dead worker", err)
			}
		})
	}
}

// r2Upper encodes itself: gob would send its text upper-cased and mark it
// decoded.
type r2Upper struct{ S string }

func (u r2Upper) GobEncode() ([]byte, error) { return []byte(strings.ToUpper(u.S)), nil }
func (u *r2Upper) GobDecode(b []byte) error  { u.S = string(b) + "!"; return nil }

var r2EchoUpper = multiproc.Register("r2.echoUpper", multiproc.Plain(func(u r2Upper) string { return u.S }))

// TestReviewGobEncoderHonoured: a struct of strings that implements
// gob.GobEncoder/GobDecoder is sent with the record codec, which copies
// its fields and never calls them: the child gets "abc", not "ABC!". A
// type's own encoding (there to redact, normalise or carry unexported
// state) is silently bypassed; Register's doc says such types are "not
// looked into", so they should travel through their own methods.
func TestReviewGobEncoderHonoured(t *testing.T) {
	p := multiproc.NewProcess(r2EchoUpper, r2Upper{"abc"})
	if err := startWithin(t, procCtx(t), p); err != nil {
		t.Fatal(err)
	}
	if err := p.Join(procCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got, err := multiproc.Result[string](p); err != nil || got != "ABC!" {
		t.Errorf("child saw %q, %v; want %q (the type's GobEncode and GobDecode)", got, err, "ABC!")
	}
}

// r2Job is a Runner made of strings, sent with the record codec.
type r2Job struct {
	Name   string
	secret string
	Seen   string
}

func (j *r2Job) Run(context.Context) error { j.Seen = j.secret; return nil }

var _ = multiproc.RegisterProcess[r2Job]("r2.job")

// TestReviewRecordUnexportedDocumented pins what RegisterProcess's doc now
// says: it used to say the child sees unexported fields as zero unless T
// is pointer-free, but a struct of strings (the record codec) carries them
// too.
func TestReviewRecordUnexportedDocumented(t *testing.T) {
	j := &r2Job{Name: "a", secret: "s"}
	p := multiproc.NewProcessOf(j)
	if err := startWithin(t, procCtx(t), p); err != nil {
		t.Fatal(err)
	}
	if err := p.Join(procCtx(t)); err != nil {
		t.Fatal(err)
	}
	if j.Seen != "s" || j.secret != "s" {
		t.Errorf("after Join %+v; want the child to have seen the unexported field and the parent to keep it", *j)
	}
}
