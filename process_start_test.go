package multiproc_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// stallEnv makes this binary's children stall in package initialisation,
// before Main, like a child whose start-up never reads its start message.
const stallEnv = "MULTIPROC_TEST_STALL"

func init() {
	if os.Getenv("MULTIPROC_CHILD") != "" && os.Getenv(stallEnv) != "" {
		time.Sleep(10 * time.Minute) // workload: the parent kills it
	}
}

// digest is what digestOf reports about its argument.
type digest struct {
	N   int
	Sum [sha256.Size]byte
}

var (
	digestOf = multiproc.Register("proc.digestOf", multiproc.Plain(func(b []byte) digest {
		return digest{len(b), sha256.Sum256(b)}
	}))

	// bigResult returns n zero bytes.
	bigResult = multiproc.Register("proc.bigResult", multiproc.Plain(func(n int) []byte { return make([]byte, n) }))

	// hugeError fails with an error message of n bytes.
	hugeError = multiproc.Register("proc.hugeError", func(_ context.Context, n int) (struct{}, error) {
		return struct{}{}, errors.New(strings.Repeat("x", n))
	})

	// startTwice starts a process, then returns the errors of starting it
	// again and of closing it while it runs, which must reach the parent
	// matching ErrAlreadyStarted and ErrStillRunning.
	startTwice = multiproc.Register("proc.startTwice", func(ctx context.Context, _ struct{}) (struct{}, error) {
		p := multiproc.NewProcess(blockForever, struct{}{})
		if err := p.Start(ctx); err != nil {
			return struct{}{}, err
		}
		defer func() {
			p.Kill()
			p.Join(ctx)
		}()
		return struct{}{}, errors.Join(p.Start(ctx), p.Close())
	})
)

// bigFields is a process type whose exported fields can be large.
type bigFields struct {
	Data []byte
	Grow int // bytes Run appends to Data
	N    int // len(Data) as Run saw it
}

func (b *bigFields) Run(context.Context) error {
	b.N = len(b.Data)
	b.Data = append(b.Data, make([]byte, b.Grow)...)
	return nil
}

var _ = multiproc.RegisterProcess[bigFields]("proc.bigFields")

// pattern returns n bytes that differ from one offset to the next.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i) ^ byte(i>>8)*31 ^ byte(i>>16)*101 ^ byte(i>>24)*7
	}
	return b
}

// startWithin runs p.Start and fails the test if it has not returned
// within the test's deadline: the bugs these tests guard are hangs.
func startWithin(t *testing.T, ctx context.Context, p *multiproc.Process) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- p.Start(ctx) }()
	select {
	case err := <-errc:
		if err == nil {
			t.Cleanup(func() {
				p.Kill()
				p.Join(context.Background())
			})
		}
		return err
	case <-time.After(procDeadline + 30*time.Second):
		t.Fatalf("Start did not return within %v", procDeadline+30*time.Second)
		return nil
	}
}

// TestLargeArgument guards Start with an argument larger than the socket
// buffer: it used to hang forever (the whole start message was written
// before the child existed). Each size must arrive intact.
func TestLargeArgument(t *testing.T) {
	for _, tt := range []struct {
		name string
		n    int
	}{
		{"64KiB minus 1KiB", 63 << 10},
		{"64KiB plus 1", 64<<10 + 1},
		{"208KiB minus 1", 208<<10 - 1},
		{"208KiB plus 1", 208<<10 + 1},
		{"1MiB", 1 << 20},
		{"64MiB", 64 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			arg := pattern(tt.n)
			p := multiproc.NewProcess(digestOf, arg)
			if err := startWithin(t, procCtx(t), p); err != nil {
				t.Fatal(err)
			}
			if err := p.Join(procCtx(t)); err != nil {
				t.Fatal(err)
			}
			got, err := multiproc.Result[digest](p)
			if want := (digest{tt.n, sha256.Sum256(arg)}); err != nil || got != want {
				t.Errorf("child saw %d bytes with SHA-256 %x, %v; want %d bytes with %x", got.N, got.Sum, err, want.N, want.Sum)
			}
		})
	}
}

// TestLargeFields is TestLargeArgument for NewProcessOf: a large exported
// field goes to the child, and a larger one comes back.
func TestLargeFields(t *testing.T) {
	b := &bigFields{Data: pattern(1 << 20), Grow: 1 << 20}
	p := multiproc.NewProcessOf(b)
	if err := startWithin(t, procCtx(t), p); err != nil {
		t.Fatal(err)
	}
	if err := p.Join(procCtx(t)); err != nil {
		t.Fatal(err)
	}
	if b.N != 1<<20 || len(b.Data) != 2<<20 {
		t.Errorf("after Join: N %d, len(Data) %d; want %d, %d", b.N, len(b.Data), 1<<20, 2<<20)
	}
}

// TestStartCancelDuringWrite starts a child that never reads its start
// message with an argument far over the socket buffer: Start must return
// when ctx ends, with an error wrapping ctx.Err(), and leave nothing
// behind (no child: the leak check at the end of the run sees one; no
// goroutine).
func TestStartCancelDuringWrite(t *testing.T) {
	t.Setenv(stallEnv, "1")
	p := multiproc.NewProcess(digestOf, make([]byte, 16<<20))
	before, _ := testutil.Children(os.Getpid())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the child exists: from then on Start writes (the child
	// never reads, and the argument is far over the socket buffer).
	var child int
	go func() {
		defer cancel()
		child = pollChild(ctx, before)
	}()
	started := time.Now()
	err := startWithin(t, ctx, p)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "writing the start message") {
		t.Fatalf("Start = %v, want an error wrapping context.Canceled while writing the start message", err)
	}
	t.Logf("Start returned %v after it began: %v", time.Since(started).Round(time.Millisecond), err)
	select {
	case <-p.Exited():
	default:
		t.Errorf("Exited() not closed after a failed Start")
	}
	if err := p.Join(procCtx(t)); !errors.Is(err, multiproc.ErrNotStarted) || !errors.Is(err, context.Canceled) {
		t.Errorf("Join after a cancelled Start = %v, want ErrNotStarted wrapping context.Canceled", err)
	}
	if n := len(multiproc.ActiveChildren()); n != 0 {
		t.Errorf("%d active children after a cancelled Start", n)
	}
	if testutil.ProcessAlive(child) {
		t.Errorf("child %d still exists after a cancelled Start", child)
	}
}

// pollChild waits for a child of this process that is not in before and
// returns its pid, or 0 if ctx ends or the deadline passes first.
func pollChild(ctx context.Context, before []int) int {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(procDeadline)
	for {
		if pid := newChild(before); pid != 0 {
			return pid
		}
		select {
		case <-tick.C:
		case <-deadline:
			return 0
		case <-ctx.Done():
			return 0
		}
	}
}

// newChild returns a child of this process that is not in before, or 0.
func newChild(before []int) int {
	kids, _ := testutil.Children(os.Getpid())
	for _, pid := range kids {
		if !slices.Contains(before, pid) {
			return pid
		}
	}
	return 0
}

// TestMaxMessageSize covers the limit in both directions and its
// validation.
func TestMaxMessageSize(t *testing.T) {
	const limit = 64 << 10
	t.Run("argument over the limit", func(t *testing.T) {
		p := multiproc.NewProcess(digestOf, make([]byte, limit+1))
		p.MaxMessageSize = limit
		err := p.Start(procCtx(t))
		var tl *errs.TooLargeError
		if !errors.Is(err, errs.ErrTooLarge) || !errors.As(err, &tl) || tl.What != "argument" || tl.Func != "proc.digestOf" || tl.Limit != limit {
			t.Fatalf("Start = %v, want a *TooLargeError for the argument of proc.digestOf, limit %d", err, limit)
		}
		if p.Pid() != 0 {
			t.Errorf("a child was started: pid %d", p.Pid())
		}
	})
	t.Run("argument at the limit", func(t *testing.T) {
		p := multiproc.NewProcess(digestOf, make([]byte, limit)) // a []byte travels as itself
		p.MaxMessageSize = limit
		if err := startWithin(t, procCtx(t), p); err != nil {
			t.Fatal(err)
		}
		if err := p.Join(procCtx(t)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("result at the limit", func(t *testing.T) {
		p := multiproc.NewProcess(bigResult, limit)
		p.MaxMessageSize = limit
		if err := startWithin(t, procCtx(t), p); err != nil {
			t.Fatal(err)
		}
		if err := p.Join(procCtx(t)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fields over the limit", func(t *testing.T) {
		p := multiproc.NewProcessOf(&bigFields{Data: make([]byte, limit)})
		p.MaxMessageSize = limit
		var tl *errs.TooLargeError
		if err := p.Start(procCtx(t)); !errors.As(err, &tl) || tl.What != "fields" || tl.Func != "proc.bigFields" {
			t.Fatalf("Start = %v, want a *TooLargeError for the fields of proc.bigFields", err)
		}
	})
	t.Run("result over the limit", func(t *testing.T) {
		p := multiproc.NewProcess(bigResult, limit+1)
		p.MaxMessageSize = limit
		if err := startWithin(t, procCtx(t), p); err != nil {
			t.Fatal(err)
		}
		wantTooLarge(t, p, "proc.bigResult", "result")
	})
	t.Run("fields after Run over the limit", func(t *testing.T) {
		p := multiproc.NewProcessOf(&bigFields{Grow: limit})
		p.MaxMessageSize = limit
		if err := startWithin(t, procCtx(t), p); err != nil {
			t.Fatal(err)
		}
		wantTooLarge(t, p, "proc.bigFields", "fields after Run")
	})
	t.Run("error report over the limit", func(t *testing.T) {
		p := multiproc.NewProcess(hugeError, limit)
		p.MaxMessageSize = limit
		if err := startWithin(t, procCtx(t), p); err != nil {
			t.Fatal(err)
		}
		wantTooLarge(t, p, "proc.hugeError", "error report")
	})
	t.Run("invalid", func(t *testing.T) {
		bads := []int{-1}
		if over := int64(1) << 32; strconv.IntSize == 64 { // a 32-bit int cannot say more than the header
			bads = append(bads, int(over))
		}
		for _, n := range bads {
			p := multiproc.NewProcess(digestOf, nil)
			p.MaxMessageSize = n
			if err := p.Start(procCtx(t)); err == nil || !strings.Contains(err.Error(), "MaxMessageSize") {
				t.Errorf("Start with MaxMessageSize %d = %v, want an error naming MaxMessageSize", n, err)
			}
		}
	})
	t.Run("raised", func(t *testing.T) {
		p := multiproc.NewProcess(bigResult, 1<<20)
		p.MaxMessageSize = int(min(int64(1)<<32-1, math.MaxInt)) // the most the header can say
		if err := startWithin(t, procCtx(t), p); err != nil {
			t.Fatal(err)
		}
		if err := p.Join(procCtx(t)); err != nil {
			t.Fatal(err)
		}
		if got, err := multiproc.Result[[]byte](p); err != nil || len(got) != 1<<20 {
			t.Errorf("Result = %d bytes, %v; want %d bytes", len(got), err, 1<<20)
		}
	})
}

// TestResultOverDefaultLimit guards the default limit: a result over
// 256 MiB used to be refused by the parent's reader and ignored, so Join
// returned nil and the exit code was 0.
func TestResultOverDefaultLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates over 512 MiB")
	}
	p := multiproc.NewProcess(bigResult, 256<<20+1)
	if err := startWithin(t, procCtx(t), p); err != nil {
		t.Fatal(err)
	}
	wantTooLarge(t, p, "proc.bigResult", "result")
}

// wantTooLarge checks that p failed with a remote error matching
// ErrTooLarge that names fn and what, with exit code 1.
func wantTooLarge(t *testing.T, p *multiproc.Process, fn, what string) {
	t.Helper()
	err := p.Join(procCtx(t))
	var re *multiproc.RemoteError
	if !errors.Is(err, errs.ErrTooLarge) || !errors.As(err, &re) {
		t.Fatalf("Join = %v, want a *RemoteError matching ErrTooLarge", err)
	}
	for _, want := range []string{what, fn, "bytes", "limit"} {
		if !strings.Contains(re.Message, want) {
			t.Errorf("remote message %q lacks %q", re.Message, want)
		}
	}
	if code, ok := p.ExitCode(); !ok || code != 1 {
		t.Errorf("ExitCode() = %d, %v; want 1, true", code, ok)
	}
}

// fdProbe names a descriptor number and the file the parent has there.
type fdProbe struct {
	FD       int
	Dev, Ino uint64
}

// fdOpen reports whether the probe's descriptor is open in the child on
// the probe's file.
var fdOpen = multiproc.Register("proc.fdOpen", multiproc.Plain(func(pr fdProbe) bool {
	var st syscall.Stat_t
	if syscall.Fstat(pr.FD, &st) != nil {
		return false
	}
	return uint64(st.Dev) == pr.Dev && uint64(st.Ino) == pr.Ino
}))

// TestInheritedFDClosed guards a child's descriptor table: a file the
// parent opened without close-on-exec used to leak into every child.
func TestInheritedFDClosed(t *testing.T) {
	fd, err := syscall.Open(t.TempDir(), syscall.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	p := multiproc.NewProcess(fdOpen, fdProbe{fd, uint64(st.Dev), uint64(st.Ino)})
	startProc(t, p)
	if err := p.Join(procCtx(t)); err != nil {
		t.Fatal(err)
	}
	if open, err := multiproc.Result[bool](p); err != nil || open {
		t.Errorf("fd %d (opened without O_CLOEXEC) open in the child: %v, %v; want false", fd, open, err)
	}
}

// TestFailedStartIsFinal checks what a failed Start leaves: a finished
// process that will not start.
func TestFailedStartIsFinal(t *testing.T) {
	p := multiproc.NewProcess(digestOf, make([]byte, 100))
	if p.Exited() != nil {
		t.Errorf("Exited() before Start is not nil")
	}
	p.MaxMessageSize = 10
	startErr := p.Start(procCtx(t))
	if !errors.Is(startErr, errs.ErrTooLarge) {
		t.Fatalf("Start = %v, want ErrTooLarge", startErr)
	}
	select {
	case <-p.Exited():
	default:
		t.Errorf("Exited() not closed after a failed Start")
	}
	p.MaxMessageSize = 0
	if err := p.Start(procCtx(t)); !errors.Is(err, multiproc.ErrAlreadyStarted) || !errors.Is(err, errs.ErrTooLarge) {
		t.Errorf("Start after a failed Start = %v, want ErrAlreadyStarted wrapping the first failure", err)
	}
	if err := p.Join(procCtx(t)); !errors.Is(err, multiproc.ErrNotStarted) || !errors.Is(err, errs.ErrTooLarge) {
		t.Errorf("Join after a failed Start = %v, want ErrNotStarted wrapping Start's error", err)
	}
	if _, err := multiproc.Result[digest](p); !errors.Is(err, multiproc.ErrNotStarted) {
		t.Errorf("Result after a failed Start = %v, want ErrNotStarted", err)
	}
	if code, ok := p.ExitCode(); ok {
		t.Errorf("ExitCode() after a failed Start = %d, true; want ok false", code)
	}
	if p.IsAlive() || p.Pid() != 0 {
		t.Errorf("IsAlive %v, Pid %d after a failed Start", p.IsAlive(), p.Pid())
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close after a failed Start: %v", err)
	}
}

// TestStartTwiceInChild checks that the misuse errors of a Process cross
// the process boundary: a child's second Start and its Close of a running
// process fail, and the parent's Join matches both sentinels.
func TestStartTwiceInChild(t *testing.T) {
	p := multiproc.NewProcess(startTwice, struct{}{})
	startProc(t, p)
	err := p.Join(procCtx(t))
	var re *multiproc.RemoteError
	if !errors.As(err, &re) || !errors.Is(err, multiproc.ErrAlreadyStarted) || !errors.Is(err, multiproc.ErrStillRunning) {
		t.Errorf("Join = %v, want a *RemoteError matching ErrAlreadyStarted and ErrStillRunning", err)
	}
}

// TestExitedSelect waits for several processes with one select loop: each
// Exited channel closes when its own process ends, in whatever order, while
// the channel of a process that runs on stays open.
func TestExitedSelect(t *testing.T) {
	ctx := procCtx(t)
	procs := []*multiproc.Process{
		multiproc.NewProcess(exitHow, "ok"),
		multiproc.NewProcess(exitHow, "error"),
		multiproc.NewProcess(exitHow, "exit7"),
	}
	slow := multiproc.NewProcess(blockForever, struct{}{})
	for _, p := range append(procs, slow) {
		startProc(t, p)
	}
	exited := make([]<-chan struct{}, len(procs))
	for i, p := range procs {
		if exited[i] = p.Exited(); exited[i] == nil {
			t.Fatalf("Exited() of started %s is nil", p.Name)
		}
	}
	for left := len(procs); left > 0; left-- {
		var i int
		select {
		case <-exited[0]:
			i = 0
		case <-exited[1]:
			i = 1
		case <-exited[2]:
			i = 2
		case <-slow.Exited():
			t.Fatal("the blocked process exited")
		case <-ctx.Done():
			t.Fatalf("%d processes still running", left)
		}
		exited[i] = nil // a nil channel never becomes ready again
		if _, ok := procs[i].ExitCode(); !ok {
			t.Errorf("%s: Exited closed but ExitCode not ok", procs[i].Name)
		}
	}
	for i, want := range []int{0, 1, 7} {
		if code, _ := procs[i].ExitCode(); code != want {
			t.Errorf("%s: exit code %d, want %d", procs[i].Name, code, want)
		}
	}
	select {
	case <-slow.Exited():
		t.Errorf("Exited of a running process is closed")
	default:
	}
}
