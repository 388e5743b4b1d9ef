// Package testutil fails a package's tests when they leak: goroutines, child
// processes, orphaned re-executed workers, file descriptors or /dev/shm
// segments that were not there before the tests ran.
//
// Every package's TestMain uses it the same way:
//
//	func TestMain(m *testing.M) {
//		multiproc.Main() // in a re-executed child this never returns
//		testutil.Run(m)  // never returns
//	}
//
// [Run] takes a baseline before the tests, runs them, and then polls until
// every check passes or a deadline (10 s by default, see [Deadline]) expires:
// processes and goroutines need a moment to wind down after Close on a loaded
// 2-core machine, so a single look would flake. On a leak it prints a report
// naming each leaked resource and exits with status 1.
//
// Run also sets the environment variable MULTIPROC_TESTUTIL_ROOT (a
// comma-separated list of the pids of the test processes that run Run) before
// the tests, so that every descendant that inherits the environment can be
// recognised as ours even after it was reparented to init.
//
// The process, file descriptor and shared memory checks read /proc and exist
// on Linux only; elsewhere Run checks goroutines alone and the process
// helpers report [errors.ErrUnsupported] or "unknown".
//
// The package deliberately does not clean up what leaked (killing a leaked
// worker would hide the bug it reports), does not import the root package
// multiproc (every package's tests import testutil, including the root's),
// and does not attribute a leak to the test that caused it: it reports what is
// left once all of a package's tests have finished. The helpers [WaitFor],
// [Children], [ProcessAlive], [ProcessState] and [OpenFDs] are for tests that
// want to assert on one resource themselves.
package testutil
