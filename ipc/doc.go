// Package ipc is communication between processes: Python's Pipe,
// multiprocessing.connection (Connection, Listener, Client, wait) and the
// Queue, JoinableQueue and SimpleQueue types.
//
// # Connections
//
// A [Conn] is one end of a message connection. [Pipe] makes the two ends
// of a new one in this process; a Conn is a resource, so an end passes to
// a child as a Process argument or to a pool task as a task argument (at
// any depth of the value), as CPython passes a Pipe end to a Process:
//
//	parent, child, _ := ipc.Pipe(true)
//	p := multiproc.NewProcess(worker, child) // worker's argument is a *ipc.Conn
//	p.Start(ctx)
//	child.Close() // the end is the child's now
//	v, err := ipc.Recv[Result](ctx, parent)
//
// [Listen] and [Dial] connect processes that do not descend from each
// other, over a unix socket or TCP, optionally in TLS. Both sides prove
// they hold a shared key (CPython's HMAC challenge, in both directions,
// with SHA-256; the key never travels) and exchange build ids before
// [Listener.Accept] or Dial returns, so nothing a stranger sends is ever
// decoded. A Conn made with the [TLS] option cannot be handed to another
// process (its session lives in this one): passing it fails with an error
// matching multiproc.ErrNotTransferable. With the [Python] option the same calls talk to CPython's
// multiprocessing.connection Listener and Client (byte messages).
//
// Messages are either bytes ([Conn.SendBytes], [Conn.RecvBytes],
// [Conn.RecvBytesInto]) or typed values ([Send], [Recv]). A typed value
// between processes of the same build travels in the pool's encodings
// (raw memory for pointer-free types, compact records for small structs);
// between different builds, self-described (gob). Every message is
// encoded on its own: there is no codec state to lose when a Conn changes
// hands.
//
// Sends are buffered and coalesced: see [Conn] for when bytes reach the
// kernel, and Flush/Close for forcing them. A receive returns io.EOF once
// the peer closed its end, [ErrPeerDied] when the peer vanished without
// closing (a crash, SIGKILL), never a hang. [Wait] waits for any of
// several Conns.
//
// Not provided: pickled Python objects (a Python peer exchanges bytes),
// sending a resource over a Conn (pass resources as Process and task
// arguments), and connections between different machines without the
// caller's own TLS configuration.
//
// # Queues
//
// Queue, JoinableQueue and SimpleQueue are typed multi-producer, multi-consumer queues
// shared by processes: Python's Queue, JoinableQueue and SimpleQueue. Each is a ring in
// shared memory (a memfd: DefaultByteCapacity, 4 MiB, unless ByteCapacity says otherwise),
// not a pipe with a feeder thread: Put encodes the item in the caller's goroutine (so an
// item that cannot be encoded fails Put itself, where CPython's feeder thread would drop it
// silently), reserves room under a short robust lock and copies the bytes in; Get takes the
// next item under the same lock and decodes it straight out of shared memory. A call makes
// a system call only to wake a process that sleeps. MaxItems bounds the number of items
// (Python's maxsize); Put blocks and TryPut returns ErrFull when either bound is reached,
// and an item that could never fit fails with ErrTooLarge. Close closes the queue for every
// process (Put fails with ErrClosed; Get drains what is left, then returns ErrClosed);
// Release drops only this process's handle (Python's per-process close()); after it,
// every call on that handle, Close and Release included, fails with ErrClosed and
// Closed reports true. Each item costs a 16-byte header plus its encoding rounded up
// to 16 bytes of the byte capacity. A Put that gives up because ctx ended on a full
// queue returns an error matching both ctx's error and ErrFull. Queues are
// resources: pass *Queue[T] to a Process or a pool task, at any depth in its argument.
//
// A process killed at any moment, inside Put or Get included, never leaves a queue unusable:
// every record and the lock carry their owner's identity, and a record whose owner
// died is skipped or reclaimed within about 250 ms of blocking someone. At most the one
// item the dead process was moving is lost. For a JoinableQueue, items a consumer took and
// did not mark done before it died make Join return ErrPeerDied once everything else is
// done; Join then counts them done. Blocked Gets and Puts of one process share one OS
// thread per queue and direction: the other goroutines wait on a channel. See the types
// for the whole contract.
package ipc
