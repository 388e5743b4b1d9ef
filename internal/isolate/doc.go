// Package isolate applies per-process limits inside a multiproc child and
// explains how a child died. The parent validates a [Spec] and encodes it
// into the child's start payload; the child decodes it and calls [Apply]
// before any user code runs (an initializer, a task, a Process target):
// GOMAXPROCS, GOMEMLIMIT, core dumps off, nice on every thread, the open
// files limit (applied here, after the Go runtime started, because the
// runtime raises the soft limit to the hard one at start) and the lifetime
// CPU backstop. The cgroup part of a Spec (memory cap, swap, CPU bandwidth,
// pids) is the parent's to set up with internal/cgroup, since a process
// is placed in a cgroup from outside.
//
// The per-task CPU limit is a [CPUGuard]: before each task the worker sets
// its soft RLIMIT_CPU to the CPU it has used plus the task's allowance and
// lifts it after the task; SIGXCPU's default action, restored beneath the
// Go runtime (which otherwise ignores the signal), lets the kernel end the
// worker the moment the allowance is crossed, whatever the task is doing.
//
// [Classify] reads a dead child's crash report (written through
// runtime/debug.SetCrashOutput to a descriptor its parent owns, see
// [SetCrashOutput]) and names the kind of crash: a Go runtime fatal error,
// a panic in a goroutine, a fault in cgo, or the runtime running out of
// memory.
//
// What it deliberately does not do: RLIMIT_AS (an idle Go process maps
// about 1.2 GB, so an address-space cap only breaks it) and RLIMIT_NPROC
// (counted per user and not enforced for root): the cgroup limits replace
// both.
package isolate
