//go:build unix

package multiproc

import (
	"os"
	"syscall"

	"github.com/multiproc-go/multiproc/internal/boot"
)

var termSignal os.Signal = syscall.SIGTERM

var exitStatus = boot.ExitStatus
