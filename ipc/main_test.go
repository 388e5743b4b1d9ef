package ipc_test

import (
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// TestMain makes the test binary its own worker: the cross-process tests
// run their helpers in child processes and pool workers.
func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}
