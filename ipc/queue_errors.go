package ipc

import (
	"errors"

	"github.com/multiproc-go/multiproc/internal/errs"
)

// Errors of the queues besides the package's shared ones (ErrClosed,
// ErrFull, ErrEmpty, ErrTooLarge, ErrPeerDied), registered so that they
// cross process boundaries.
var (
	// ErrTaskDone is returned by JoinableQueue.TaskDone when no item is
	// waiting to be marked done: it was called more times than items were
	// taken (Python's ValueError "task_done() called too many times").
	ErrTaskDone = errs.RegisterSentinel(errors.New("ipc: TaskDone called more times than items were taken"))
)
