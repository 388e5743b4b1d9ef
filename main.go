package multiproc

import (
	"context"
	"sync"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/registry"
)

// Main is Go's form of Python's `if __name__ == "__main__":`. Call it as the
// first line of main, and of TestMain in test binaries:
//
//	func main() {
//		multiproc.Main()
//		...
//	}
//
//	func TestMain(m *testing.M) {
//		multiproc.Main()
//		os.Exit(m.Run())
//	}
//
// In the program the user started, Main returns at once. In a re-executed
// child it serves the child's role (a process target, a pool worker) and
// exits; it never returns there. Main ends registration: [Register] after
// Main panics.
//
// Starting a process before Main ran returns [ErrNoMain]. In a child that
// also holds for code that runs before Main, so a program that forgets Main,
// or calls it late, can never recurse into a fork bomb.
//
// In a child, Main closes the descriptors the child inherited without
// close-on-exec before the role runs: a target holds only fds 0-2, the
// child's control socket and whatever was passed to it. Package
// initialisation runs before Main, so code there may still see such
// descriptors (and one it opened itself without close-on-exec is closed by
// Main; Go's os and net packages always set close-on-exec).
//
// With the environment variable MULTIPROC_CLUSTER set to a NATS URL, Main
// turns the program into a cluster worker host that joins that cluster and
// serves its tasks until SIGINT or SIGTERM, then exits; it never returns.
// That needs the cluster module linked into the program
// (github.com/multiproc-go/multiproc/cluster); a program without it exits
// with status 2 and a message saying so. The variable is unset before the
// host starts its workers, so they never inherit it.
func Main() {
	registry.Freeze()
	if boot.IsChild() {
		boot.Serve() // never returns
	}
	boot.SetMainCalled()
	boot.ServeClusterIfAsked() // never returns when MULTIPROC_CLUSTER is set
}

// ProcessInfo identifies a process, like Python's current_process() and
// parent_process().
type ProcessInfo struct {
	Name   string
	Pid    int
	Daemon bool
}

// CurrentProcess describes this process: "MainProcess" in the program the
// user started, and the name given by the parent in a child.
func CurrentProcess() ProcessInfo {
	id := boot.Self()
	return ProcessInfo{Name: id.Name, Pid: id.Pid, Daemon: id.Daemon}
}

// ParentProcess describes the parent of a multiproc child; ok is false in
// the program the user started.
func ParentProcess() (info ProcessInfo, ok bool) {
	id, ok := boot.Parent()
	return ProcessInfo{Name: id.Name, Pid: id.Pid}, ok
}

// children tracks started processes that have not been reaped, for
// ActiveChildren and Finish.
var children = struct {
	sync.Mutex
	set map[*Process]struct{}
}{set: map[*Process]struct{}{}}

// ActiveChildren returns the processes started by this process that are
// still running, like Python's active_children().
func ActiveChildren() []*Process {
	children.Lock()
	defer children.Unlock()
	var ps []*Process
	for p := range children.set {
		if p.IsAlive() {
			ps = append(ps, p)
		}
	}
	return ps
}

// Finish gives a program Python's exit semantics: it terminates the running
// daemonic children and waits for every other child to finish. Defer it in
// main, after Main:
//
//	func main() {
//		multiproc.Main()
//		defer multiproc.Finish()
//		...
//	}
//
// Without Finish (and whatever happens: os.Exit, a crash, SIGKILL), children
// die when their parent exits. Children run Finish for their own children
// when their target returns.
func Finish() {
	children.Lock()
	ps := make([]*Process, 0, len(children.set))
	for p := range children.set {
		ps = append(ps, p)
	}
	children.Unlock()
	for _, p := range ps {
		if p.Daemon {
			p.daemonEnd.Store(true) // its death then says why
			p.Terminate()
		}
	}
	for _, p := range ps {
		p.Join(context.Background())
	}
}
