package cgroup

import (
	"testing"

	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Run(m) }
