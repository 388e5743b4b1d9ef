package boot

import "sync"

// exitHooks run in a child after its role's handler returned, before the
// process exits (see OnExit).
var exitHooks struct {
	sync.Mutex
	fs []func()
}

// OnExit registers f to run in a child process after its role returned
// (a Process target finished and its result was sent), just before the
// child exits. ipc uses it to flush the messages its connections still
// buffer, which an exit would otherwise drop. Hooks must be quick and
// bounded; they do not run on os.Exit or a crash.
func OnExit(f func()) {
	exitHooks.Lock()
	exitHooks.fs = append(exitHooks.fs, f)
	exitHooks.Unlock()
}

func runExitHooks() {
	exitHooks.Lock()
	fs := exitHooks.fs
	exitHooks.Unlock()
	for _, f := range fs {
		f()
	}
}
