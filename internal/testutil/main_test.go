package testutil_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/testutil"
)

// helperEnv selects a helper role for a re-executed copy of this test binary,
// as os/exec's tests do with their helper process.
const helperEnv = "TESTUTIL_TEST_HELPER"

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		// Like multiproc.Main in the other packages: a helper never runs
		// the tests, so it can never recurse into starting helpers.
		os.Exit(helper(role))
	}
	testutil.Run(m)
}

// helper plays one of the roles the tests need from other processes and
// returns the exit code.
//
//	linger   wait for SIGTERM or SIGINT (or a minute, so that a crashed test
//	         cannot leave it behind for long)
//	orphan   start a lingering copy of this binary, print its pid and exit
//	         without waiting for it, which orphans it
//	foreign  start "sleep 60" with an empty environment and stdin opened
//	         from the path in TESTUTIL_TEST_FILE, print its pid and exit:
//	         a process holding that file that is not recognisably ours
func helper(role string) int {
	switch role {
	case "linger":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, os.Interrupt)
		select {
		case <-c:
		case <-time.After(time.Minute):
		}
		return 0
	case "orphan":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=linger")
		return startAndPrint(cmd)
	case "foreign":
		f, err := os.Open(os.Getenv("TESTUTIL_TEST_FILE"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		cmd := exec.Command("sleep", "60")
		cmd.Env = []string{} // no MULTIPROC_TESTUTIL_ROOT, so not ours
		cmd.Stdin = f
		return startAndPrint(cmd)
	}
	fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
	return 2
}

// startAndPrint starts cmd with stdout and stderr on /dev/null, so that the
// test reading this helper's output sees EOF when the helper exits, and
// prints its pid.
func startAndPrint(cmd *exec.Cmd) int {
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println(cmd.Process.Pid)
	return 0
}
