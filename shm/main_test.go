package shm_test

import (
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// TestMain makes this test binary its own worker: the sweep and named
// segment tests run helpers in child processes.
func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}
