package isolate

import (
	"os"
	"runtime/debug"
	"strings"
)

// SetCrashOutput makes the Go runtime write its crash reports (an
// unrecovered panic, a fatal error, a fault) to f as well as to stderr. f
// is a descriptor the parent owns (a memory file it reads after the
// child's death), so the report survives whatever the child's stderr is.
// The runtime keeps its own duplicate; the caller may close f.
func SetCrashOutput(f *os.File) error { return debug.SetCrashOutput(f, debug.CrashOptions{}) }

// Crash is the kind of crash a report shows.
type Crash uint8

// The kinds of crash [Classify] tells apart.
const (
	NoCrash        Crash = iota // no report: the process did not crash in Go
	Fatal                       // a Go runtime fatal error (a fault in Go code, a concurrent map write, a deadlock...)
	GoroutinePanic              // an unrecovered panic (tasks' own panics are recovered: this one was in a goroutine a task started)
	CgoFault                    // a signal (SIGSEGV, SIGBUS...) while running C code through cgo
	OutOfMemory                 // the runtime could not get memory from the system ("runtime: out of memory")
)

// Classify names the kind of crash report (what the runtime wrote through
// [SetCrashOutput]); an empty report is NoCrash.
func Classify(report string) Crash {
	report = strings.TrimLeft(report, "\n")
	switch {
	case report == "":
		return NoCrash
	case strings.Contains(report, "runtime: out of memory"), thrownByAllocator(report):
		return OutOfMemory
	case strings.HasPrefix(report, "panic: ") && !strings.Contains(report, "fatal error:"):
		return GoroutinePanic
	case strings.Contains(report, "signal arrived during cgo execution"),
		strings.Contains(report, "[signal ") && strings.Contains(report, "runtime.cgocall"):
		// The runtime says so when the signal interrupted C code it
		// called; a fault in a C thread of its own shows runtime.cgocall
		// in the trace.
		return CgoFault
	}
	return Fatal
}

// oomThrowers are the runtime functions that throw "out of memory" when
// the system refuses memory. The report written through SetCrashOutput
// starts at the traceback: the lines "runtime: out of memory: cannot
// allocate..." and "fatal error: out of memory" are printed on stderr
// before it (measured with Go 1.26), so the frame that threw is what the
// report shows of an allocation failure.
var oomThrowers = []string{
	"runtime.(*mcache).allocLarge(", "runtime.(*mcache).refill(", "runtime.(*mheap).alloc(",
	"runtime.(*mheap).grow(", "runtime.sysMap(", "runtime.sysMapOS(", "runtime.sysAlloc(",
	"runtime.persistentalloc1(", "runtime.(*mheap).sysAlloc(", "runtime.largeAlloc(",
}

// thrownByAllocator reports whether the first frame below runtime.throw
// in report is one of the allocator's.
func thrownByAllocator(report string) bool {
	_, after, ok := strings.Cut(report, "runtime.throw(")
	if !ok {
		return false
	}
	lines := strings.SplitN(after, "\n", 4)
	if len(lines) < 3 {
		return false
	}
	for _, f := range oomThrowers {
		if strings.HasPrefix(lines[2], f) {
			return true
		}
	}
	return false
}

// Headline is the first line of a crash report ("fatal error: fault",
// "panic: boom"), for an error message.
func Headline(report string) string {
	report = strings.TrimLeft(report, "\n")
	line, _, _ := strings.Cut(report, "\n")
	return strings.TrimSpace(line)
}
