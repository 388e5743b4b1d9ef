package multiproc_test

import (
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// TestMain makes this test binary its own worker: in a re-executed child
// Main serves the child's role and never returns.
func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}
