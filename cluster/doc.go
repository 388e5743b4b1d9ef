// Package cluster runs multiproc pools and executors across machines, on
// NATS JetStream: the same Map, Imap, ApplyAsync, Submit, Wait,
// AsCompleted, Progress and Stats calls, with tasks carried by a JetStream
// work queue to worker hosts instead of by sockets to local worker
// processes. It plugs into the root package through its engine seam, with
// one pool option:
//
//	pool, err := multiproc.NewPool(ctx, 8, cluster.Backend(cluster.URL("nats://nats:4222")))
//
// It is its own Go module (the embedded nats-server adds about 16 MB to a
// binary and two minutes to a cold build, which users of the local pools
// should not pay), released together with the root.
//
// # Servers
//
// With no [URL], a pool starts an embedded nats-server with JetStream
// ([StartServer]; a few milliseconds) that keeps everything in memory, so a
// program that is killed leaves no store behind. [LocalHosts] makes the
// pool start worker hosts of its own on this machine, which is the whole
// set-up of a one-machine cluster. With [URL] (and [NATSOptions] for
// credentials and TLS) it uses a real NATS cluster. For an external cluster
// that must keep queued tasks across restarts, use [FileStorage] and set
// `jetstream { sync_interval: always }` in the servers' configuration:
// JetStream fsyncs every two minutes by default and acknowledges writes
// before they are durable (Jepsen, still so in v2.15); an embedded server
// with [StoreDir] sets it itself.
//
// # Worker hosts
//
// A worker host is the same program, started with the environment variable
// MULTIPROC_CLUSTER set to the server's URL: multiproc.Main then serves as a
// host until SIGINT or SIGTERM ([Serve] is the same as a call;
// MULTIPROC_CLUSTER_WORKERS sets its number of worker processes, default
// the CPU count). A host runs its tasks on a local pool of worker processes,
// so a task that crashes kills one worker process, which the host replaces,
// and the local pool's limits (MaxTasksPerChild, MaxMemory, MaxAge, see
// [WorkerOptions]) apply to them. The program must link this package for
// the variable to work (a blank import is enough); one that does not exits
// with a message saying so.
//
// # Builds
//
// Tasks are published on a subject that carries the program's build id
// (multiproc.task.<build>.<pool>), and each build has one durable pull
// consumer, so a host only ever runs tasks of its own build: functions are
// named, not shipped, and another build's function of the same name could
// do something else. Hosts register in the multiproc_hosts bucket and
// refresh their entry every second. When no host of the pool's build has
// been alive for [NoWorkersWait] (default 10s), the tasks that waited that
// long fail: with [ErrNoWorkers] if no host at all is alive, with an error
// matching multiproc.ErrBuildMismatch if the live hosts run other builds.
//
// # Delivery
//
// JetStream delivers at least once; each future settles once above it:
//
//   - A task whose worker process dies is answered by its host exactly as
//     locally: an *ExitError matching multiproc.ErrWorkerDied (its Reason
//     names the host), and Retries publish it again. The host terminates
//     the message, so JetStream does not redeliver it.
//   - A host that stops (killed, disconnected, its machine gone) stops
//     reporting progress: each task it holds is redelivered to another host
//     once [AckWait] (default 5s) has passed. Hosts report progress every
//     quarter of AckWait while a task runs, so AckWait bounds the time to
//     notice a lost host, not a task's run time. A disconnect alone does
//     not redeliver sooner. After [MaxDeliver] (default 3) deliveries
//     without an answer, the future fails with an error matching
//     multiproc.ErrWorkerDied saying how many times the host was lost, and
//     the message, which JetStream leaves in the stream, is removed.
//   - Each future settles once, with the first result; later ones (a lost
//     host's result that arrives after its redelivery's) are dropped and
//     counted in Stats().Duplicates. A task may therefore run more than
//     once: make tasks idempotent, or give them ids of their own.
//   - The function's own errors are not redelivered; they cross as they do
//     locally (a *RemoteError, registered sentinels and error types,
//     multiproc.ErrTooLarge for a result over MaxMessageSize). Time limits
//     travel as relative budgets (hosts' clocks differ), and a cancelled
//     context reaches the task on its host.
//
// # Reconnection
//
// Pools and hosts reconnect without limit (nats.MaxReconnects(-1), every
// 2s by default; NATSOptions and HostNATSOptions can change it) and, once
// back, create what the server is missing:
//
//   - A server that kept its streams (file storage, a cluster that kept
//     its quorum) loses nothing: tasks a lost connection left
//     unacknowledged are redelivered after AckWait; results the hosts
//     could not publish are published once they are back.
//   - A server that lost them (an embedded or memory-storage server that
//     restarted) makes each pool publish its unsettled tasks again; a task
//     may then run twice, and the second answer is dropped and counted in
//     Stats().Duplicates.
//   - A host cut off for longer than a task's AckWait drops that task's
//     result: JetStream gave the task to another host.
//   - A pool that stays cut off sees no live host 5s after the cut, and
//     NoWorkersWait later (10s by default: 15s in all) its unsettled tasks
//     fail with [ErrNoWorkers], the message saying the pool is
//     disconnected. A publication that keeps failing (the server answers,
//     but the stream is missing) fails its future after NoWorkersWait.
//     Close on a disconnected pool returns at once, with an error saying
//     that the pool's messages and results were left on the server (its
//     results expire with ResultTTL).
//
// Arguments that hold descriptors (shared memory, locks, pipes, files,
// connections) cannot cross machines: they fail at submit with an error
// matching multiproc.ErrNotTransferable, before anything is published.
// Arguments and results above the server's max payload (1 MiB by default)
// go through the multiproc_blobs object store and are deleted once
// collected. Results go through the multiproc_results bucket, keyed by the
// pool's id and the task's number (a Future's ID), with a TTL ([ResultTTL]) for those
// never collected; collected ones are deleted at once. After Close nothing
// of the pool is left in the streams, buckets or store; a SIGKILLed host's
// entry expires from the hosts bucket within 5s.
//
// # Security
//
// Anyone who can publish on multiproc.task.> can run the program's
// registered functions with arguments of their choosing, and anyone who
// can read multiproc_results can read results. On a network, run NATS with
// authentication and TLS (accounts with nkeys or JWT credentials, or at
// least user/password over TLS), give the pools and hosts a user whose
// permissions allow publish and subscribe on multiproc.>,
// $KV.multiproc_results.>, $KV.multiproc_hosts.>, $O.multiproc_blobs.>,
// $JS.API.>, $JS.ACK.MULTIPROC_TASKS.>, $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>
// and _INBOX.> and nothing else, and pass the credentials with [NATSOptions] and
// [HostNATSOptions]. The embedded server listens on 127.0.0.1 only unless
// told otherwise ([Listen]) and has no authentication.
//
// # When it pays
//
// A task's round trip through the server to a worker process on another
// host costs about 450 µs on a quiet 2-vCPU machine (and over a
// millisecond on a loaded one; cmd/mpbench's cluster_apply_latency
// measures it), against 30-60 µs to a local worker: cluster mode pays for
// CPU-bound tasks of milliseconds or more, where more machines mean more
// cores. Map chunks its items by default as locally
// (about four chunks per worker, the pool's size n being the number of
// workers it plans for), which amortises the round trip over many items.
//
// # What it does not do
//
// It does not ship code (hosts run the same binary), re-attach a
// restarted program to its results (they are kept by task id for a later
// version to do so), schedule by host capacity beyond pull-based flow
// control, or run Initializer on hosts (a pool option it refuses: hosts
// join at any time; see [WorkerOptions] for a host's own).
package cluster
