package psync

import (
	"errors"
	"fmt"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/futex"
)

// Errors of this package. Each is registered so that it crosses process
// boundaries: a pool task that returns one (wrapped or not) gives an error
// that matches it with errors.Is in the parent.
var (
	// ErrOwnerDead is returned by a Lock or RLock acquisition that took the
	// lock from a holder that died holding it: the caller holds the lock,
	// and what the lock guards may be inconsistent. Repair it and call
	// MarkConsistent before Unlock, or every later acquisition returns
	// ErrNotRecoverable. A BoundedSemaphore acquisition that received a
	// unit returned by a dead process returns it too (holding the unit).
	// It is the root package's multiproc.ErrOwnerDead.
	ErrOwnerDead = futex.ErrOwnerDead
	// ErrNotRecoverable is returned by every acquisition of a lock whose
	// holder died and whose next holder unlocked it without
	// MarkConsistent: the lock is never held again.
	ErrNotRecoverable = futex.ErrNotRecoverable
	// ErrNotHeld is returned by Unlock and MarkConsistent of a lock this
	// process does not hold, and by Condition's Wait and Notify when this
	// process does not hold the condition's lock.
	ErrNotHeld = futex.ErrNotHeld
	// ErrOverReleased is returned by BoundedSemaphore.Release from a
	// process that holds none of its units.
	ErrOverReleased = errs.RegisterSentinel(errors.New("psync: semaphore released too many times"))
	// ErrBrokenBarrier is returned by Barrier.Wait when the barrier is or
	// becomes broken: Abort, Reset while parties wait, a waiting party's
	// death, or a waiter's context ending.
	ErrBrokenBarrier = errs.RegisterSentinel(errors.New("psync: barrier broken"))
	// ErrTooManyWaiters is returned by Condition.Wait when the condition
	// already has MaxConditionWaiters waiters, and by Acquire of a
	// BoundedSemaphore held by MaxHolders processes already.
	ErrTooManyWaiters = errs.RegisterSentinel(errors.New("psync: too many waiters"))
	// ErrInvalidArgument is returned (wrapped, naming the argument) by
	// NewSemaphore and NewBoundedSemaphore for a value outside 0 to
	// math.MaxInt32, and by NewBarrier for parties outside 1 to MaxParties.
	ErrInvalidArgument = errs.RegisterSentinel(errors.New("psync: invalid argument"))
)

// errUnsupported is what constructors return off Linux.
var errUnsupported = fmt.Errorf("psync: process-shared locks need Linux futexes: %w", errors.ErrUnsupported)
