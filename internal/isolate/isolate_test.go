package isolate

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/internal/wire"
)

func TestMain(m *testing.M) { testutil.Run(m) }

func TestClassify(t *testing.T) {
	tests := []struct {
		name, report string
		want         Crash
	}{
		{"empty", "", NoCrash},
		{"fault in Go", "unexpected fault address 0xdead0000\nfatal error: fault\n[signal SIGSEGV: segmentation violation code=0x1 addr=0xdead0000 pc=0x6a5765]\n\ngoroutine 1 [running]:\n", Fatal},
		{"concurrent map writes", "fatal error: concurrent map writes\n\ngoroutine 7 [running]:\n", Fatal},
		{"goroutine panic", "panic: boom\n\ngoroutine 18 [running]:\nmain.f()\n", GoroutinePanic},
		{"panic during panic is fatal", "panic: a\n\tpanic: b\nfatal error: panic during panic\n", Fatal},
		{"cgo", "SIGSEGV: segmentation violation\nPC=0x820de0 m=0 sigcode=1 addr=0x0\nsignal arrived during cgo execution\n\ngoroutine 1 [syscall]:\nruntime.cgocall(0x820de0, 0xc000)\n", CgoFault},
		{"runtime oom", "fatal error: runtime: out of memory\n\nruntime stack:\n", OutOfMemory},
		{"runtime oom as SetCrashOutput writes it", "\ngoroutine 1 gp=0x2 m=0 mp=0xd3 [running]:\nruntime.throw({0x927ca9?, 0x1?})\n\t/usr/local/go/src/runtime/panic.go:1229 +0x48 fp=0x2 sp=0x2 pc=0x4\nruntime.(*mcache).allocLarge(0x860180?, 0x40000000, 0x1)\n\t/usr/local/go/src/runtime/mcache.go:259 +0x18d\n", OutOfMemory},
		{"no thread, without cgo", "\nruntime stack:\nruntime.throw({0xa7fee1?, 0x3435b858fd88?})\n\t/usr/local/go/src/runtime/panic.go:1229 +0x48 fp=0x1 sp=0x1 pc=0x4873e8\nruntime.newosproc(0x3435b87e7808)\n\t/usr/local/go/src/runtime/os_linux.go:199 +0x165\nruntime.newm1(0x3435b87e7808)\n", ThreadLimit},
		{"no thread, stderr's line", "runtime: failed to create new OS thread (have 25 already; errno=11)\nfatal error: newosproc\n", ThreadLimit},
		{"cgo abort alone is fatal", "SIGABRT: abort\nPC=0x7f0ad9111eec m=2 sigcode=18446744073709551610\n\ngoroutine 0 gp=0x1 m=2 mp=0x1 [idle]:\n", Fatal},
		{"a throw elsewhere is fatal", "\ngoroutine 1 [running]:\nruntime.throw({0x9?, 0x4?})\n\t/usr/local/go/src/runtime/panic.go:1229 +0x48\nruntime.sigpanic()\n\t/usr/local/go/src/runtime/signal_unix.go:945\n", Fatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.report); got != tt.want {
				t.Errorf("Classify = %d, want %d", got, tt.want)
			}
		})
	}
	if h := Headline("\nfatal error: fault\n[signal]"); h != "fatal error: fault" {
		t.Errorf("Headline = %q", h)
	}
	if h := Headline(tests[len(tests)-1].report); h != "runtime.throw called by runtime.sigpanic" {
		t.Errorf("Headline of a report starting at a stack = %q", h)
	}
	if !Aborted("SIGABRT: abort\nPC=0x1") || Aborted("fatal error: fault") {
		t.Error("Aborted")
	}
	if !ThreadLimitText("x\nruntime/cgo: pthread_create failed: Resource temporarily unavailable\n") || ThreadLimitText("hello") {
		t.Error("ThreadLimitText")
	}
}

func TestSpecRoundTrip(t *testing.T) {
	s := Spec{Memory: 1 << 30, CPUTime: 1500 * time.Millisecond, CPUTimeTotal: time.Minute, OpenFiles: 128, NoCoreDumps: true, Nice: -3, GoMaxProcs: 2}
	got, err := Decode(wire.NewBuf(s.Append(nil)))
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{CPUTime: s.CPUTime, CPUTimeTotal: s.CPUTimeTotal, OpenFiles: 128, NoCoreDumps: true, Nice: -3, GoMaxProcs: 2, GoMemLimit: 1 << 30 / 10 * 9}
	if got != want {
		t.Errorf("decoded %+v, want %+v (the child's part, GOMEMLIMIT resolved)", got, want)
	}
	if s.CPUSeconds() != 2 {
		t.Errorf("CPUSeconds() = %d, want 2 (rounded up)", s.CPUSeconds())
	}
	if _, err := Decode(wire.NewBuf([]byte{9})); err == nil {
		t.Error("a spec of an unknown version decoded")
	}
}

func TestValidate(t *testing.T) {
	if err := (Spec{}).Validate(1); err != nil {
		t.Errorf("zero Spec: %v", err)
	}
	for _, s := range []Spec{{Processes: 16}, {Memory: 1}, {CPUs: 0.001}, {Nice: -21}, {CPUTimeTotal: time.Millisecond}} {
		if err := s.Validate(1); err == nil || !errors.Is(err, ErrInvalidLimits) || !strings.HasPrefix(err.Error(), "multiproc: Limits.") {
			t.Errorf("Validate(%+v) = %v, want an error naming the field", s, err)
		}
	}
	// The floor is 16 + GOMAXPROCS: 17 passes with one P, not with two.
	if err := (Spec{Processes: 17}).Validate(1); err != nil {
		t.Errorf("Processes 17 with GOMAXPROCS 1: %v", err)
	}
	if err := (Spec{Processes: 17}).Validate(2); err == nil {
		t.Error("Processes 17 with GOMAXPROCS 2 accepted, below the floor of 18")
	}
}

// TestExplainCapturedOOM: an OOM kill of a task that printed a large part
// of its cap into the output capture says that the capture counts against
// the cap (the review found the bare "OOM killer killed it" misleading).
func TestExplainCapturedOOM(t *testing.T) {
	f := Facts{Sig: 9, Runs: "task", Grouped: true, OOMKills: 1, Limits: Spec{Memory: 64 << 20}}
	if _, why := Explain(f); strings.Contains(why, "output capture") {
		t.Errorf("no capture, but the reason mentions it: %q", why)
	}
	f.Captured = 60 << 20
	cause, why := Explain(f)
	if cause != errs.CauseOutOfMemory || !strings.Contains(why, "62914560 bytes into the output capture") {
		t.Errorf("Explain = %v, %q; want out of memory naming the captured bytes", cause, why)
	}
}

// TestExplainCPULimitSignals: the kernel ends a task past its CPUTime with
// SIGXCPU (a pool worker's as well as a Process's target), and a child
// that reached CPUTimeTotal alone with SIGKILL; each reason names the limit
// that was crossed.
func TestExplainCPULimitSignals(t *testing.T) {
	for _, c := range []struct {
		f    Facts
		want string
	}{
		{Facts{Sig: syscall.SIGXCPU, Runs: "task", Limits: Spec{CPUTime: time.Second}}, "the task used more than its 1s of CPU time"},
		{Facts{Sig: syscall.SIGXCPU, Runs: "target", Limits: Spec{CPUTime: 2 * time.Second}}, "the target used more than its 2s of CPU time"},
		{Facts{Sig: syscall.SIGXCPU, Runs: "task", Limits: Spec{CPUTime: time.Second, CPUTimeTotal: time.Minute}}, "the task used more than its 1s of CPU time"},
		{Facts{Sig: syscall.SIGKILL, Runs: "task", Limits: Spec{CPUTimeTotal: 3 * time.Second}, CPUUsed: 3 * time.Second}, "lifetime CPU limit of 3s"},
	} {
		cause, why := Explain(c.f)
		if cause != errs.CauseCPULimit || !strings.Contains(why, c.want) {
			t.Errorf("Explain(%+v) = %v, %q; want the CPU limit, %q", c.f, cause, why, c.want)
		}
	}
}
