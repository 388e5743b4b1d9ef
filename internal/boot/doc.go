// Package boot starts re-executed children and turns a process into the
// child it was started as.
//
// Go cannot fork, so a child is the same binary executed again
// (/proc/self/exe on Linux) with one environment variable naming its role
// and one end of a socketpair as fd 3, the control socket. The parent sends
// a start message (build id, role, names, message size limit, number of
// passed files, role payload): up to 64 KiB in one non-blocking write before
// the child even runs, the rest once it runs, under the caller's context
// and a handshake deadline. The child's multiproc.Main reads it first
// thing, checks that it runs the same build, closes the descriptors it
// inherited by accident (those without close-on-exec, other than 0-2, the
// control socket and the passed files), answers READY (or refuses) and
// serves its role. Package initialisation runs before that, so it may still
// see inherited descriptors. Nothing is ever spoken on stdout or stderr:
// those belong to user code and are inherited untouched.
//
// Frames on the control socket are bounded by the limit the start message
// carries ([Config.MaxMessageSize]), in both directions; roles check their
// own values against it before sending, so an oversized value becomes an
// error for the caller, never a frame the peer refuses.
//
// Children die with their parent: the kernel's parent-death signal is armed
// from one OS thread that never exits (the signal follows the thread that
// forked, not the process), and every child also treats end-of-file on the
// control socket as its parent's death.
//
// The package does not know what roles do; the root package registers role
// handlers with [Handle].
package boot
