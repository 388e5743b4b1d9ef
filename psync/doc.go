// Package psync is synchronisation between processes: Python's
// multiprocessing Lock, RLock, Semaphore, BoundedSemaphore, Condition,
// Event and Barrier, as futex words in shared memory, robust against the
// death of a process that holds them.
//
// # Robustness: the reason to use this package
//
// CPython's Lock is an ownerless semaphore: a worker SIGKILLed while it
// holds one freezes every other process forever. Here a [Lock] or [RLock]
// records its holder in its word: the thread id of the holding process's
// dedicated robust-list thread (below), or, for a word the process could
// not register with the kernel, its pid; a start time beside it tells a
// reused id from the holder. A waiter that finds the holder
// dead takes the lock and gets [ErrOwnerDead] (it holds the lock; what the
// lock guards may be half-updated). It repairs the state and calls
// MarkConsistent; if it unlocks without doing so, every later acquisition
// returns [ErrNotRecoverable], for good; if it dies too, the next acquirer
// gets ErrOwnerDead again (POSIX robust mutexes, EOWNERDEAD). A sleeping
// waiter learns of a dead holder from the kernel itself: every lock word a
// process uses is linked once into the robust list of one dedicated thread
// of the process (the fast path stays one compare-and-swap), and when the
// process dies the kernel marks the words it held and wakes a waiter as
// that thread exits, before the dead process's memory is torn down.
// Measured from the SIGKILL to a sleeping waiter's ErrOwnerDead: about
// 0.4 ms median on a quiet machine (load 3.6), 0.75-2.6 ms on a loaded
// 2-CPU machine (load 7-24; cmd/mpbench's lock_death_detect had medians
// of 1.9 and 2.5 ms), where the dying process waits for a CPU: the 1 ms
// aim holds only when the machine is not overloaded. Behind
// that, a waiter watches the holder's pidfd, and every sleep is bounded by
// 50 ms, after which /proc is checked: a death is seen within 100 ms on
// every path. A process keeps a dedicated thread for this (one per process
// that uses a lock; a pids limit counts it).
//
// A [BoundedSemaphore] tracks units per acquiring process and returns a
// dead process's units, the Acquire that receives one returning
// ErrOwnerDead. A [Semaphore] (any process may release it) tracks no
// holders: a dead holder's units are lost. A party that dies while in
// [Barrier.Wait] breaks the barrier (seen through a pidfd watch, else a
// timed check within 100 ms); a [Condition] waiter that died does
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
// process (see [RLock]). [Locker] is the small interface every lock has
// (Lock(ctx), Unlock); package shm's Value and Array locks have it too.
// Misuse returns errors: [ErrNotHeld] for unlocking
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
// non-blocking forms are TryLock and TryAcquire (Python's block=False);
// Do runs a function holding a lock or a unit (Python's with).
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
// primitives share one 64 KiB memfd, so passing ten locks passes one
// descriptor: a Lock, RLock, Event or Semaphore takes 64 bytes (about a
// thousand per memfd), a Condition about 4 KiB (255 waiter slots; about
// fifteen per memfd). A pool worker imports a primitive once and
// reuses it for every later task that is given it.
//
// # Lifetime: read this
//
// Close in the process that made a primitive releases it there: that
// process unmaps the shared memory with the last primitive of its memfd
// (using a primitive after Close is then a fatal fault, SIGSEGV, not a
// panic), and pool workers drop their copy of the primitive. Every process
// counts the primitives it holds per memfd, so a received primitive is
// released the same way: Close on a copy received as a Process argument or
// in a task's result releases that process's copy, and the memfd's
// descriptor and mapping go with the last copy in that process. Its lock
// words leave the process's robust list before the memory is unmapped (the
// kernel walks that list at death). A lock this process still holds is not
// unmapped under it: its copy is parked and released once it is unlocked.
// A pool worker keeps the copy its first task imported for every later
// task, so a task's own Close on it does nothing; the worker drops it when
// the creator closes the primitive (or when the worker holds more than 256
// resources, after which the next task that needs it receives it again).
// So a long-lived worker holds descriptors and mappings only for the
// primitives that are alive. Close never releases a held lock.
//
// # What this package does not do
//
// It works on Linux only; elsewhere the constructors return an error
// matching errors.ErrUnsupported. It does not promise to notice a holder
// that is alive but has exec'd another program (the kernel's robust-list
// walk at exec usually does; the ids and start time do not change), nor a
// goroutine that returns without unlocking (the process still holds the
// lock, as with sync.Mutex). A process registers at most 2000 lock words
// with the kernel (its walk stops at 2048); further ones rely on the
// pidfd and timed checks. Processes must share a pid namespace. It has no named
// primitives (a psync object reaches other processes only as an
// argument), and no Value or Array (package shm, whose Value and Array
// carry a lock of their own on the same futex layer).
package psync
