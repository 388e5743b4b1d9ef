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
// decoded. With the [Python] option the same calls talk to CPython's
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
// Queue, JoinableQueue and SimpleQueue are documented with their types.
package ipc
