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
	ThreadLimit                 // the runtime could not create a thread ("fatal error: newosproc"; with cgo, SIGABRT after "pthread_create failed")
)

// Classify names the kind of crash report (what the runtime wrote through
// [SetCrashOutput]); an empty report is NoCrash.
func Classify(report string) Crash {
	report = strings.TrimLeft(report, "\n")
	switch {
	case report == "":
		return NoCrash
	case strings.Contains(report, "runtime: out of memory"), thrownBy(report, oomThrowers):
		return OutOfMemory
	case strings.Contains(report, "fatal error: newosproc"), strings.Contains(report, "failed to create new OS thread"),
		strings.Contains(report, "pthread_create failed"), thrownBy(report, threadThrowers):
		return ThreadLimit
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

// threadThrowers are the runtime functions that throw when the system
// refuses a new thread (EAGAIN from clone: pids.max, RLIMIT_NPROC,
// threads-max). As for memory, the "runtime: failed to create new OS
// thread" and "fatal error: newosproc" lines go to stderr only; the report
// shows runtime.throw called by newosproc (measured with Go 1.26, no cgo).
// With cgo the thread is made by pthread_create, whose failure the cgo
// runtime prints on stderr before abort(): the report then only says
// "SIGABRT: abort" (see [ThreadLimitText] and the pids counter).
var threadThrowers = []string{"runtime.newosproc(", "runtime.newosproc0(", "runtime.newm1("}

// ThreadLimitText reports whether text (a task's captured output, which
// holds the worker's stderr) shows the runtime failing to create a thread:
// the lines the Go runtime and its cgo part print before they die.
func ThreadLimitText(text string) bool {
	return strings.Contains(text, "runtime/cgo: pthread_create failed") ||
		strings.Contains(text, "runtime: failed to create new OS thread") ||
		strings.Contains(text, "fatal error: newosproc")
}

// Aborted reports whether report is that of a SIGABRT (as the cgo runtime
// raises when pthread_create fails).
func Aborted(report string) bool {
	return strings.HasPrefix(strings.TrimLeft(report, "\n"), "SIGABRT")
}

// thrownBy reports whether the first frame below runtime.throw in report
// is one of fns.
func thrownBy(report string, fns []string) bool {
	_, after, ok := strings.Cut(report, "runtime.throw(")
	if !ok {
		return false
	}
	lines := strings.SplitN(after, "\n", 4)
	if len(lines) < 3 {
		return false
	}
	for _, f := range fns {
		if strings.HasPrefix(lines[2], f) {
			return true
		}
	}
	return false
}

// Headline is the first line of a crash report ("fatal error: fault",
// "panic: boom"), for an error message. A report that starts at a stack
// ("runtime stack:", a throw on the system stack, whose "fatal error"
// line went to stderr only) is named by the function that threw.
func Headline(report string) string {
	report = strings.TrimLeft(report, "\n")
	line, _, _ := strings.Cut(report, "\n")
	line = strings.TrimSpace(line)
	if line == "runtime stack:" || strings.HasPrefix(line, "goroutine ") {
		if _, after, ok := strings.Cut(report, "runtime.throw("); ok {
			if lines := strings.SplitN(after, "\n", 4); len(lines) >= 3 {
				fn, _, _ := strings.Cut(lines[2], "(")
				return "runtime.throw called by " + fn
			}
		}
	}
	return line
}
