// Package shm is shared memory between processes: Python's
// multiprocessing.shared_memory.SharedMemory and the shared ctypes objects
// Value and Array (RawValue and RawArray, until the locks issue adds their
// optional lock).
//
// # Segments
//
// A [SharedMemory] is a block of bytes that several processes map.
// [Create] without a name makes an anonymous segment: a memfd on Linux (an
// unlinked temporary file elsewhere) that has no name in any file system, so
// it cannot leak; the kernel frees it when the last process holding its
// descriptor or a mapping is gone. Other processes reach it only by being
// given its descriptor ([SharedMemory.File]; passing segments to Process and
// Pool arguments comes with the resource mechanism).
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
// It does not synchronise: concurrent writers of the same bytes need a lock
// (the locks issue adds Value and Array locks, whose words live in an area
// reserved for them in each segment's header) or atomic operations. It does not pass segments to other processes by itself: that
// is the resource mechanism of Process and Pool arguments. Its types hold no
// pointers, so Go values with strings, slices or maps cannot live in shared
// memory; use a queue or a manager for those.
package shm
