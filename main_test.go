package multiproc_test

import (
	"os"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// TestMain makes this test binary its own worker: in a re-executed child
// Main serves the child's role and never returns.
//
// When helperEnv is set the binary runs one of the helper programs of
// helper_test.go instead of the tests; the helper that checks ErrNoMain is
// the only run that skips Main.
func TestMain(m *testing.M) {
	helper := os.Getenv(helperEnv)
	if helper != helperNoMain {
		multiproc.Main()
	}
	if helper != "" {
		runHelper(helper) // never returns
	}
	testutil.Run(m)
}
