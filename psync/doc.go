// Package psync is synchronisation between processes: Python's
// multiprocessing Lock, RLock, Semaphore, BoundedSemaphore, Condition,
// Event and Barrier, as futex words in shared memory, robust against the
// death of a process that holds them.
//
// # Robustness: the reason to use this package
//
// CPython's Lock is an ownerless semaphore: a worker SIGKILLed while it
// holds one freezes every other process forever. Here a [Lock] or [RLock]
// records its holder (pid and start time); a waiter that finds the holder
// dead takes the lock and gets [ErrOwnerDead] (it holds the lock; what the
// lock guards may be half-updated). It repairs the state and calls
// MarkConsistent; if it unlocks without doing so, every later acquisition
// returns [ErrNotRecoverable], for good; if it dies too, the next acquirer
// gets ErrOwnerDead again (POSIX robust mutexes, EOWNERDEAD). A waiter
// learns of a dead holder within about a millisecond (it watches the
// holder's pidfd through Go's netpoller) and within 100 ms on every path
// (each sleep is bounded by 50 ms, after which /proc/PID/stat is checked).
//
// A [BoundedSemaphore] tracks units per acquiring process and returns a
// dead process's units, the Acquire that receives one returning
// ErrOwnerDead. A [Semaphore] (any process may release it) tracks no
// holders: a dead holder's units are lost. A party that dies while in
// [Barrier.Wait] breaks the barrier; a [Condition] waiter that died does
// not consume a Notify. An [Event] has no owner.
//
// # Ownership and misuse
//
// Locks are owned by processes. A Lock excludes the goroutines of the
// holding process as well as other processes (a sync.Mutex across
// processes); any goroutine of the holding process may unlock it. Unlock by
// a process that does not hold the lock returns [ErrNotHeld] (Python's
// mp.Lock lets anyone release it; an owner is what makes a death
// detectable). An RLock re-enters for every goroutine of the holding
// process (see [RLock]). Misuse returns errors: [ErrNotHeld] for unlocking
// a lock not held or using a Condition without its lock,
// [ErrOverReleased] for releasing a BoundedSemaphore unit the process does
// not hold. Every sentinel of this package is registered to cross process
// boundaries: an error returned by a child or a pool task matches it with
// errors.Is in the parent.
//
// # Blocking calls
//
// Every blocking call takes a ctx first; when ctx ends it returns an error
// wrapping ctx.Err() and leaves the primitive as it was (Condition.Wait
// re-takes its lock; a Barrier breaks, as a timeout does in Python). The
// non-blocking forms are TryLock and TryAcquire (Python's block=False).
// Acquisition is not fair. Uncontended, Lock and Unlock are one
// compare-and-swap each, with no system call.
//
// Waiting is multiplexed: a goroutine sleeping in the futex system call
// holds an OS thread, so in each process only one goroutine per primitive
// sleeps in the kernel and the others wait on a channel (no thread). The
// exception is [Condition], whose waiters are not interchangeable: each
// waiting goroutine holds a thread while it waits.
//
// # Passing primitives to processes
//
// Every primitive is a resource: pass it (or a struct holding it at any
// depth) as a multiproc.NewProcess argument or a pool or executor task
// argument, and the receiver's copy names the same primitive. Many
// primitives share one memfd (64 KiB holds a few hundred), so passing ten
// locks passes one descriptor. A pool worker imports a primitive once and
// reuses it for every later task that is given it.
//
// # Lifetime: read this
//
// Close in the process that made a primitive releases it: pool workers
// drop their copies, and the shared memory is unmapped with the last
// primitive of its memfd; using a primitive after Close is then a fatal
// fault (SIGSEGV), not a panic. Close on a primitive received from another
// process does nothing: the received memfd stays mapped (once per memfd)
// until the process exits, so that a pool task closing what it was given
// cannot break the copy its worker keeps for later tasks. Close never
// releases a held lock.
//
// # What this package does not do
//
// It works on Linux only; elsewhere the constructors return an error
// matching errors.ErrUnsupported. It does not notice a holder that is
// alive but has exec'd another program, nor a goroutine that returns
// without unlocking (the process still holds the lock, as with
// sync.Mutex). Processes must share a pid namespace. It has no named
// primitives (a psync object reaches other processes only as an
// argument), and no Value or Array (package shm; their get_lock uses the
// same futex layer).
package psync
