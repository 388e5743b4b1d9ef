// Package shm is shared memory between processes: Python's
// multiprocessing.shared_memory.SharedMemory and the shared ctypes objects
// Value and Array, each with its lock (Python's get_lock(): see [Lock]).
//
// # Segments
//
// A [SharedMemory] is a block of bytes that several processes map.
// [Create] without a name makes an anonymous segment: a memfd on Linux (an
// unlinked temporary file elsewhere) that has no name in any file system, so
// it cannot leak; the kernel frees it when the last process holding its
// descriptor or a mapping is gone. Other processes reach it only by being
// given its descriptor: pass the *SharedMemory to them (see below).
//
// A named segment is for processes that were not given it: [Create] with
// [Name] or [GeneratedName] makes /dev/shm/NAME, and [Open] maps it by name in
// any process of any program (Python's SharedMemory(name="x") on Linux
// included, since shm_open uses the same directory). A name chosen by the
// user is used as given and never removed by anyone but its owner. A
// generated name records the creating process (its pid and start time) and
// a random part; when that process is gone, [Sweep] removes the segment.
// The sweep also runs, once, at the first named Create of each process, so
// a program that was SIGKILLed leaves its generated segments only until the
// next program using this package creates one.
//
// On macOS (and other Unix systems without /dev/shm) a named segment is a
// file of that name in [os.TempDir] ($TMPDIR, which is per user on macOS),
// mapped shared: it works between processes of the same user that agree on
// TMPDIR, is backed by the disk's file system rather than by memory, and is
// not visible to shm_open (so not to Python's SharedMemory). The backing
// store is reserved with F_PREALLOCATE on macOS; other systems only set the
// size, so there a full file system shows up as SIGBUS on first write.
//
// # Value and Array
//
// [Value] and [Array] hold fixed-size, pointer-free Go values (numbers,
// bools, and arrays and structs of them; any other type is refused when
// the object is made, naming the type) in an anonymous segment. An Array is
// a Go slice over the shared memory ([Array.Slice]): a loop over it is a loop
// over a plain slice, with no copy and no call per element. A Value has
// Load and Store (atomic for types of at most 8 bytes) and, for integers,
// the atomic helpers [Add], [Swap] and [CompareAndSwap].
//
// The memory of a Value or an Array is reserved when it is made, and on
// Linux every mapping of it (the creator's, and each receiver's) has its
// page tables filled at once (MADV_POPULATE_READ): one call instead of a
// page fault per 4 KiB at first access, which for 80 MB costs a few
// milliseconds rather than a few hundred. A first pass over memory another
// process wrote may still be slower than later ones (caches; on the
// project's virtual machine, the host).
//
// # Passing to other processes
//
// A *SharedMemory, *Value[T] or *Array[T] is an ordinary argument: of a
// Process (multiproc.NewProcess, a field of multiproc.NewProcessOf's
// struct) and of a pool or executor task, on its own or at any depth of the
// argument (struct fields, slice and map elements). Pass the pointer the
// constructor returned, never a copy of the struct. The receiving function
// gets an object that maps the same memory: stores on either side are seen
// on the other.
//
//   - Passing duplicates the descriptor. The sender keeps its own object,
//     descriptor and mapping, and still has to Close them; the memory lives
//     until every process has closed (or exited).
//   - A named SharedMemory travels by descriptor too, not by name: the
//     receiver maps the same segment even if the name was unlinked or
//     reused meanwhile. Its [SharedMemory.Name] reports the name and it may
//     [SharedMemory.Unlink] it, but it is not the creator: its Close never
//     unlinks.
//   - The receiver checks what arrived before mapping anything: a segment
//     of another kind (an Array where a Value is expected), element type or
//     length fails the argument's decoding with an error wrapping
//     [ErrMismatch]. For Value and Array the segment's own header (the
//     element size, count and a hash of the type's name) is the authority.
//   - A closed or zero object cannot travel: the call that passes it fails
//     with an error wrapping [ErrClosed] that names where it was in the
//     argument (arg.Jobs[3].Rows). A backend that cannot carry descriptors
//     (a cluster) refuses every open segment.
//   - In a Process, the received object belongs to the child's code: Close
//     it when done, or leave it to the exit.
//   - In a pool or executor worker, the object belongs to the worker, which
//     maps each object once and hands the same mapping to every later task
//     passed the same object (so an 80 MB Array is not mapped, and its
//     pages not faulted in, again per task). A task must not Close it, and
//     using it after the task has returned (from a goroutine or a global)
//     is undefined: the worker drops its mapping once the parent has closed
//     its object and the tasks that use it are done. Objects passed to an
//     Initializer stay mapped for the worker's whole life.
//
// Each object has a resource ID, unique within its process, from the
// moment it is made or received: a pool's workers keep their mappings by
// the ID of the object the parent sent. A received object gets a new ID in
// the receiving process rather than the sender's, since IDs of two
// processes may collide, so it can be passed on again (to the child's own
// pool) like any object the child made. Close releases the ID, which is how
// pools learn that their workers may drop their copies.
//
// # Lifetime: read this
//
// The memory of a segment is not Go memory. The garbage collector neither
// scans it nor frees it, and nothing keeps it mapped on a slice's behalf:
// [Array.Slice], [Value.Pointer] and [SharedMemory.Buf] stay valid until
// Close, and touching them after Close is a fatal fault (SIGSEGV, "unexpected
// fault address") that kills the process; it is not a panic and cannot be
// recovered. Close is the only thing that unmaps: there is no finalizer, so
// an object that is never closed stays mapped until the process exits (for
// an anonymous segment, that is also when its memory is freed).
//
// # What this package does not do
//
// It does not synchronise by itself: Load and Store do not take a Value's
// lock, and concurrent writers of the same bytes need the object's lock
// (robust against a dead holder; it lives in the segment's header, so it
// travels with the object), a psync lock, or atomic operations. The
// SharedMemory type has no lock. It does
// not transport anything itself: the multiproc package's Process and pool
// paths carry the descriptors its types export. Its types hold no
// pointers, so Go values with strings, slices or maps cannot live in shared
// memory; use a queue or a manager for those.
package shm
