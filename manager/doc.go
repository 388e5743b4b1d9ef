// Package manager is Python's multiprocessing managers: shared objects
// that live in a server process and are used from any process through
// typed proxies (SyncManager's list, dict, Namespace, Value, Array,
// Queue, JoinableQueue, Lock, RLock, Semaphore, BoundedSemaphore, Event,
// Condition, Barrier, and registered custom types), on this machine or
// across machines.
//
// # Local and remote managers
//
// [Start] is Python's Manager(): it starts a manager child process (like
// every multiproc child, through Main's machinery, so multiproc.Main must
// run first) serving on an abstract unix socket with a random key, and
// returns a [Manager] connected to it. The child dies with its parent;
// [Manager.Shutdown] stops it. [Serve] serves a manager from any program
// on a TCP or unix address with an authkey (Python's
// get_server().serve_forever()); [Connect] reaches it from other
// programs, which may be other binaries. Objects a served manager
// publishes are named ([Named]): the first client to open a name creates
// the object, later ones get proxies of the same object.
//
// # Proxies
//
// Every proxy method is one round trip to the server and takes a ctx
// first; a call whose ctx ends is cancelled on the server too, and an
// operation the server completed meanwhile is reported as completed (an
// item taken from a queue is returned, not lost; waiting for the
// server's word on the cancel makes a call return up to one second after
// its ctx ended; see Faults for a link that stalls longer). Proxies return the
// sentinels of the local types: [ErrOwnerDead], [ErrNotHeld],
// [ErrNotRecoverable], [ErrOverReleased], [ErrBrokenBarrier] (psync's
// values) and [ErrFull], [ErrEmpty] (ipc's), plus [ErrKeyNotFound]
// (KeyError), [ErrIndex] (IndexError), [ErrValueNotFound] (ValueError)
// and [ErrNoSuchObject]. Lock, RLock and Condition satisfy [Locker], as
// psync's locks do. Errors the server returns are *[CallError]s wrapping
// the remote error, so errors.Is and errors.As work as they do for the
// root's pool tasks (registered sentinels and error types cross).
//
// A proxy is made by its constructor (NewDict, ...) or received from
// another process; every method of a zero-value proxy (var d
// manager.Dict[string, int]) or a closed one returns an error matching
// [ErrClosed] (Close of one does nothing). A nil pointer to a proxy is
// not a zero proxy: its methods panic, as a nil pointer's do.
//
// Python's d[k] += 1 through a proxy is a read and a write that race
// with other processes. Compound operations run on the server under the
// object's lock: Dict.Incr and Value.Incr for numbers, Dict.Update and
// Value.Update with a function registered by [RegisterUpdate],
// SetDefault, Pop, Swap, CompareAndSwap. Incr of an integer wraps
// around at its type's width as Go's + does (in every encoding: an int8
// 127 plus 1 is -128), and never stores a value its type cannot hold.
//
// # Fast path
//
// A connection over a unix socket (a local manager, or Serve on a unix
// address) carries its calls through shared memory once authenticated:
// the server makes a memfd with a request and a response area, the
// client maps it (through /proc/PID/fd, so it works only on the same
// host, user and pid namespace; otherwise the socket serves alone), and a
// call up to 32 KiB whose slot is free is posted there and answered there
// (one call at a time per connection; others, and larger messages, take
// the socket). Each side spins briefly, then sleeps on a futex for at
// most 5 ms, then waits on the socket, so an idle connection holds no
// thread and a peer's death is still seen on the socket within those
// bounds. Setting MULTIPROC_MANAGER_NOFAST in a client's environment
// turns it off (every call then takes the socket, as remote ones do).
//
// # Locks held by a process that dies
//
// Locks and semaphores are owned by the holding connection (one per
// process). When it ends (the process died, or closed its Manager) the
// server releases what it held as psync does for a dead holder: the
// next acquirer of a Lock or RLock gets it with ErrOwnerDead (repair,
// then MarkConsistent before Unlock, or the lock is unrecoverable), a
// BoundedSemaphore's units come back with ErrOwnerDead to the acquirer
// that receives them, and a Barrier a waiting party belonged to breaks.
//
// # Custom types
//
// [RegisterType] registers a type with its constructor and lists its
// methods ([Method]); [Create] makes an object of it on the server and
// [Call] runs a listed method, its argument and result types checked
// ([ErrArgType], [ErrResultType], [ErrNoSuchMethod]). Names resolve in
// the server's program, so a client can call methods but never run code
// of its choosing. The package example shows a hand-written typed proxy.
//
// # Lifetime
//
// An object lives until every connection that holds a reference released
// it (Close on the proxy, or the connection's end), or until the server
// shuts down; named objects live until shutdown. Object ids carry the
// server's instance id (new at each start), so a proxy of a restarted
// server's old object gets ErrNoSuchObject and never touches a new one.
//
// # Passing proxies to processes
//
// A proxy is a resource: pass it, or a struct holding it, as a Process
// or pool task argument or result. Encoding one takes a hand-off
// reference on the server, so the object outlives the sender's Close
// while the proxy travels; the receiver connects to the same address
// (one connection per process and address) and claims it as its own
// reference. A hand-off nobody claims is released when the sender's
// connection ends, or after five minutes. The key never travels in the
// encoding's bytes: it goes in a sealed memfd beside them, so the cluster
// backend, which carries bytes only, refuses proxies with
// ErrNotTransferable. Received proxies connect without TLS.
//
// # Security beyond Python
//
// Python's managers unpickle what a keyed client sends, so a client can
// run any code in the server. Here every connection authenticates (ipc's
// HMAC handshake, both ways; optional TLS) before anything it sends is
// decoded; a wrong key or garbage is refused and logged (rate-limited,
// through the Logger option) and the server keeps serving the others.
// Only registered kinds and types can be created, values are stored as
// bytes the server never interprets (except numbers for Incr and values
// given to registered functions), and every message is bounded
// (MaxMessageSize). Clients of another build get self-describing gob
// encodings (a local manager, or Serve with RawEncodings, stores this
// build's raw encodings and refuses them with ErrBuildMismatch).
//
// # Faults
//
// A local manager's death is noticed at once (the socket's end): every
// call in progress and every later call fails with ErrConnLost. Over TCP
// a call ends at most one second after its ctx's deadline (or
// cancellation): it tells the server and waits up to a second for the
// answer to that cancel, so an operation the server completed meanwhile
// is reported as completed; over a link that stopped carrying anything
// the whole second passes (Condition.Wait excepted: it returns holding
// the lock, so it waits for the server to take it back). When the
// server's answer arrives after that second (a link that stalled and
// recovered), a Lock, RLock or semaphore
// acquire it granted is given back at once, so the lock is not left held
// by a caller that was told it failed (from a dead holder, the release
// makes the lock not recoverable, as any unlock without MarkConsistent
// does), and a queue item a Get took is put back at the front of the
// queue, where it was (a JoinableQueue's unfinished count is unchanged).
// Only if the connection breaks before the late answer arrives (or the
// queue is gone when the item comes back) is that item lost, the one
// item, as with a consumer killed mid-Get. Other late answers are not
// undone: a List or Dict Pop's item and a Value.Swap's old value are
// lost, a Put, Set or Barrier.Wait took effect although its caller was
// told it failed (a retry repeats it), and a proxy a late answer carried
// keeps its object alive until the connection closes. An idle connection whose peer
// vanished is noticed within HeartbeatMisses heartbeat intervals (see
// [Heartbeat]; 6 s by default), by the client (calls fail with
// ErrConnLost) and by the server (the client's references and holdings
// are released). Reconnecting is explicit: Connect again.
//
// [Server.Close] waits for every request in progress, custom methods
// included (their ctx is cancelled; one that ignores it holds Close up);
// [Server.Shutdown] bounds that wait with its ctx, and
// [Manager.Shutdown] of a local manager kills the manager process when
// its ctx ends.
//
// # What this package does not do (yet)
//
// Nested proxies (a proxy stored inside a Dict or List) are refused with
// ErrNotTransferable rather than stored as references. Custom methods'
// arguments and results always travel as gob values.
package manager
