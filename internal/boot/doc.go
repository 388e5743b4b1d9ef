// Package boot starts re-executed children and turns a process into the
// child it was started as.
//
// Go cannot fork, so a child is the same binary executed again
// (/proc/self/exe on Linux) with one environment variable naming its role
// and one end of a socketpair as fd 3, the control socket. The parent writes
// a start message before the child even runs; the child's
// multiproc.Main reads it, checks that it runs the same build, answers READY
// (or refuses) and serves its role. Nothing is ever spoken on stdout or
// stderr: those belong to user code and are inherited untouched.
//
// Children die with their parent: the kernel's parent-death signal is armed
// from one OS thread that never exits (the signal follows the thread that
// forked, not the process), and every child also treats end-of-file on the
// control socket as its parent's death.
//
// The package does not know what roles do; the root package registers role
// handlers with [Handle].
package boot
