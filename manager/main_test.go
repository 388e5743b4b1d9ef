package manager

import (
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// TestMain makes the test binary its own manager and worker: the
// cross-process tests run their helpers in child processes.
func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}
