package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/core"
	"github.com/multiproc-go/multiproc/internal/engine"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/logs"
	"github.com/multiproc-go/multiproc/internal/registry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// HostOption configures a worker host (see [Serve]).
type HostOption func(*hostConfig) error

type hostConfig struct {
	workers  int
	name     string
	natsOpts []nats.Option
	file     bool
	pool     []multiproc.PoolOption
	logger   *slog.Logger
	drain    time.Duration
	ready    func() // called once the host takes tasks
}

// Workers sets the number of worker processes the host runs (default: the
// machine's CPU count, multiproc.CPUCount).
func Workers(n int) HostOption {
	return func(c *hostConfig) error {
		if n < 1 {
			return fmt.Errorf("multiproc/cluster: Workers(%d): must be positive", n)
		}
		c.workers = n
		return nil
	}
}

// HostName sets the name the host reports in the pools' Stats (default:
// the machine's host name and the process id, "name:pid").
func HostName(name string) HostOption {
	return func(c *hostConfig) error {
		if name == "" || strings.ContainsAny(name, " \t\r\n") {
			return fmt.Errorf("multiproc/cluster: HostName(%q): must be non-empty, without spaces", name)
		}
		c.name = name
		return nil
	}
}

// HostNATSOptions are passed to nats.Connect as they are (credentials,
// TLS; see [NATSOptions]).
func HostNATSOptions(opts ...nats.Option) HostOption {
	return func(c *hostConfig) error { c.natsOpts = append(c.natsOpts, opts...); return nil }
}

// HostFileStorage is [FileStorage] for the streams and buckets a host
// creates when it is the first on the cluster.
func HostFileStorage() HostOption {
	return func(c *hostConfig) error { c.file = true; return nil }
}

// WorkerOptions configures the host's local pool of worker processes with
// the root's pool options: MaxTasksPerChild, MaxMemory, MaxAge, Grace,
// WorkerMaxProcs, RestartIntensity, WorkerName, Logger (and the isolation
// limits where they exist). Options about tasks (TaskTimeout, Retries,
// MaxMessageSize) come from the submitting pool, task by task; an
// Initializer runs in each worker before it takes tasks.
func WorkerOptions(opts ...multiproc.PoolOption) HostOption {
	return func(c *hostConfig) error { c.pool = append(c.pool, opts...); return nil }
}

// DrainTimeout bounds how long a host that is asked to stop waits for the
// tasks it holds to finish (default 5s); the rest go back to the queue at
// once, for other hosts.
func DrainTimeout(d time.Duration) HostOption {
	return func(c *hostConfig) error {
		if d < 0 {
			return fmt.Errorf("multiproc/cluster: DrainTimeout(%v): must not be negative", d)
		}
		c.drain = d
		return nil
	}
}

// host is a worker host: it pulls its build's tasks and runs them through
// a local pool of worker processes.
type host struct {
	c     hostConfig
	log   *logs.Limiter
	build string
	key   string // its entry in the hosts bucket
	entry hostEntry

	nc   *nats.Conn
	js   jetstream.JetStream
	in   *infra
	cons jetstream.Consumer
	core engine.Engine

	base       context.Context // parent of every task's context
	cancelBase context.CancelFunc

	mu       sync.Mutex
	held     map[string]*held // by results key
	inflight int
	limit    int           // tasks held at most: workers × window
	slot     chan struct{} // a slot was freed
	out      []*held       // settled by the local pool, to publish
	outSig   chan struct{}
	busy     time.Duration // the local pool's busy time and tasks at the
	tasks    int64         // last window update

	created time.Time        // when the tasks stream was created, as last seen
	status  chan nats.Status // connection events: lost, back
	// recovered is the connection's reconnect count (nats.Conn's
	// Statistics.Reconnects) as of statusLoop's last decision about
	// superseded tasks: while the count is ahead of it, the host is
	// connected again but has not yet decided which held tasks were
	// superseded while it was away, so it publishes no result (publish).
	recovered  uint64
	recoverSig chan struct{} // statusLoop → recoverLoop: run recover

	acks chan hostAck
	stop chan struct{}
	wg   sync.WaitGroup
}

// held is one task message the host holds.
type held struct {
	h         *host
	msg       jetstream.Msg
	key       string // results key: pool id + "." + seq
	pool      string
	seq       uint64
	ackWait   time.Duration
	progress  time.Time // last in-progress report (or delivery)
	maxRes    int
	delivered uint64
	cancel    context.CancelFunc
	cancelled bool // the pool cancelled it: no answer is wanted
	abandoned bool // handed back (Nak) during shutdown
	stale     bool // msg is of a stream the server lost: never acknowledged
	// superseded: the host was out of touch with the server for longer
	// than AckWait while it held the task, so JetStream gave the task to
	// another host (or back to this one, which then adopts the new
	// message): its result would only be a late duplicate, and is dropped.
	superseded bool
	tries      int // publications of its result so far
	task       engine.Task
	res        engine.Result
}

type hostAck struct {
	hd *held
	f  jetstream.PubAckFuture
}

// TaskDone is the local pool's answer; it must not block. Data is copied:
// the pool reuses its buffer. A result holding resources cannot cross
// machines: its descriptors are closed and the task fails with
// ErrNotTransferable.
func (hd *held) TaskDone(r engine.Result) {
	r.Data = append([]byte(nil), r.Data...)
	if r.Res != nil {
		r.Res.Close()
		r = engine.Result{Outcome: engine.Failed, Err: fmt.Errorf("%w: the result of %q holds a resource (descriptors), which cannot cross machines", errs.ErrNotTransferable, hd.task.Fn.Name)}
	}
	h := hd.h
	h.mu.Lock()
	hd.res = r
	h.out = append(h.out, hd)
	h.mu.Unlock()
	select {
	case h.outSig <- struct{}{}:
	default:
	}
}

// Serve makes this process a worker host of the cluster at url until ctx
// ends: it joins the hosts bucket, pulls the tasks of this program's build
// and runs them on its own pool of worker processes (re-executions of this
// binary, as a local pool's), so a task that crashes kills one worker
// process, which the host replaces; the task's future fails with
// multiproc.ErrWorkerDied exactly as locally. Main calls Serve when the
// environment variable MULTIPROC_CLUSTER is set.
//
// When ctx ends the host stops taking tasks, waits up to [DrainTimeout] for
// those it holds, hands the rest back to the queue, stops its workers,
// leaves the hosts bucket and returns nil. It returns an error at once if
// it cannot connect, create the cluster's streams or start its workers.
// Main must have run (the workers are re-executed children).
func Serve(ctx context.Context, url string, opts ...HostOption) error {
	if ctx == nil {
		panic("multiproc/cluster: nil context")
	}
	c := hostConfig{workers: multiproc.CPUCount(), drain: 5 * time.Second, logger: slog.Default()}
	for _, o := range opts {
		if o == nil {
			panic("multiproc/cluster: nil HostOption")
		}
		if err := o(&c); err != nil {
			return err
		}
	}
	if url == "" {
		return errors.New("multiproc/cluster: Serve with an empty URL")
	}
	if c.name == "" {
		hn, _ := os.Hostname()
		if hn == "" {
			hn = "host"
		}
		c.name = fmt.Sprintf("%s:%d", hn, os.Getpid())
	}
	build, err := buildOnce()
	if err != nil {
		return fmt.Errorf("multiproc/cluster: build id: %w", err)
	}
	h := &host{
		c: c, log: logs.New(c.logger), build: build, key: build + "." + nuid.Next(),
		entry: hostEntry{Build: build, Host: c.name, Pid: os.Getpid(), Workers: c.workers},
		held:  map[string]*held{}, slot: make(chan struct{}, 1), outSig: make(chan struct{}, 1),
		acks: make(chan hostAck, 4096), stop: make(chan struct{}),
		limit: c.workers,
	}
	h.base, h.cancelBase = context.WithCancel(context.Background())
	defer h.cancelBase()
	if err := h.start(ctx, url); err != nil {
		h.close()
		return err
	}
	if c.ready != nil {
		c.ready()
	}
	h.fetchLoop(ctx)
	h.shutdown()
	return nil
}

func (h *host) start(ctx context.Context, url string) error {
	var err error
	// No reconnect buffer: what the host publishes while disconnected
	// fails at once instead of reaching the server late, so a result is
	// published again (or given up) once the host knows how long it was
	// away (see held.superseded); progress reports resume on the next tick.
	nopts := append([]nats.Option{nats.Name("multiproc host " + h.c.name), nats.MaxReconnects(-1), nats.ReconnectBufSize(-1)}, h.c.natsOpts...)
	if h.nc, err = nats.Connect(url, nopts...); err != nil {
		return fmt.Errorf("multiproc/cluster: connect %s: %w", url, err)
	}
	h.status = h.nc.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING)
	if h.js, err = jetstream.New(h.nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(pubAckTimeout)); err != nil {
		return fmt.Errorf("multiproc/cluster: %w", err)
	}
	storage := jetstream.MemoryStorage
	if h.c.file {
		storage = jetstream.FileStorage
	}
	if h.in, err = ensureInfra(ctx, h.js, storage, DefaultResultTTL); err != nil {
		return err
	}
	h.created = h.in.tasks.CachedInfo().Created
	if h.cons, err = h.consumer(ctx); err != nil {
		return err
	}
	cfg := engine.Config{Workers: h.c.workers, Name: "ClusterWorker", Logger: h.c.logger}
	for _, o := range h.c.pool {
		if err := o(&cfg); err != nil {
			return err
		}
	}
	cfg.Workers = h.c.workers
	if h.core, err = core.NewEngine(ctx, cfg); err != nil {
		return fmt.Errorf("multiproc/cluster: host workers: %w", err)
	}
	sub, err := h.nc.Subscribe(cancelPrefix+h.build, h.onCancel)
	if err != nil {
		return fmt.Errorf("multiproc/cluster: subscribe: %w", err)
	}
	_ = sub // ends with the connection
	if err := h.register(ctx); err != nil {
		return err
	}
	h.recovered = h.nc.Stats().Reconnects
	h.recoverSig = make(chan struct{}, 1)
	h.wg.Add(6)
	go h.statusLoop()
	go h.recoverLoop()
	go h.beatLoop()
	go h.progressLoop()
	go h.publishLoop()
	go h.ackLoop()
	return nil
}

// consumer binds to the build's consumer. It is the pools' to configure
// (AckWait, MaxDeliver); the first host of a build creates it with the
// defaults.
func (h *host) consumer(ctx context.Context) (jetstream.Consumer, error) {
	c, err := h.js.Consumer(ctx, tasksStream, consumerPre+h.build)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c, err = h.js.CreateConsumer(ctx, tasksStream, consumerConfig(h.build, DefaultAckWait, DefaultMaxDeliver))
		if errors.Is(err, jetstream.ErrConsumerExists) {
			c, err = h.js.Consumer(ctx, tasksStream, consumerPre+h.build)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("multiproc/cluster: consumer: %w", err)
	}
	return c, nil
}

// statusLoop follows the connection: when it is back, it decides at once
// (no request to the server needed) which held tasks were superseded
// while the host was away, which opens the result gate (see publish), and
// then has recoverLoop run recover. It also looks at the connection every
// retryPause, since nats.go drops status events its channel has no room
// for: a reconnection it was not told of is handled as one, and if the
// loss itself went unseen, how long the host was away is unknown, so
// every held task counts as superseded (its result is dropped and the
// task runs again elsewhere, which is safe; publishing it might not be).
func (h *host) statusLoop() {
	defer h.wg.Done()
	var down time.Time // since when the connection is lost
	tick := time.NewTicker(retryPause)
	defer tick.Stop()
	back := func(n uint64) {
		away := time.Duration(math.MaxInt64)
		if !down.IsZero() {
			away = time.Since(down)
		}
		down = time.Time{}
		h.mu.Lock()
		for _, hd := range h.held {
			if away >= hd.ackWait {
				hd.superseded = true
			}
		}
		h.recovered = n
		h.mu.Unlock()
		select {
		case h.recoverSig <- struct{}{}:
		default:
		}
	}
	for {
		select {
		case <-h.stop:
			return
		case st, ok := <-h.status:
			if !ok {
				return
			}
			if st != nats.CONNECTED {
				if down.IsZero() {
					down = time.Now()
				}
				continue
			}
			// Read before deciding: a reconnection after this read is
			// handled on its own event (or tick). nats.go counts a
			// reconnection before it reports the connection as connected.
			back(h.nc.Stats().Reconnects)
		case <-tick.C:
			if !h.nc.IsConnected() {
				if down.IsZero() {
					down = time.Now() // its event was dropped
				}
				continue
			}
			if n := h.nc.Stats().Reconnects; n != h.recoveredCount() {
				back(n)
			}
		}
	}
}

// recoverLoop runs recover each time statusLoop saw the connection come
// back, until it succeeds or the connection is lost again.
func (h *host) recoverLoop() {
	defer h.wg.Done()
	for {
		select {
		case <-h.stop:
			return
		case <-h.recoverSig:
		}
		for h.nc.IsConnected() {
			err := h.recover()
			if err == nil {
				break
			}
			h.log.Warn("cluster-recover", "multiproc/cluster: host, after reconnecting", "err", err)
			select {
			case <-h.stop:
				return
			case <-time.After(retryPause):
			}
		}
	}
}

// recover makes sure, after a reconnection, that the streams, buckets and
// consumer exist (a restarted memory-storage server has none) and the
// host is registered. If the server lost the tasks stream, the messages
// of the tasks the host runs are stale: their sequences may name other
// messages in the new stream, so they are never acknowledged; the tasks
// go on, their results are still published (the pools publish their
// unsettled tasks again, and a redelivery of one that runs here is
// adopted by it). (The tasks it held for longer than their AckWait while
// it was away were marked superseded by statusLoop already.)
func (h *host) recover() error {
	ctx, cancel := context.WithTimeout(h.base, 30*time.Second)
	defer cancel()
	storage := jetstream.MemoryStorage
	if h.c.file {
		storage = jetstream.FileStorage
	}
	in, err := ensureInfra(ctx, h.js, storage, DefaultResultTTL)
	if err != nil {
		return err
	}
	if _, err := h.consumer(ctx); err != nil {
		return err
	}
	if err := h.register(ctx); err != nil {
		return err
	}
	created := in.tasks.CachedInfo().Created
	h.mu.Lock()
	defer h.mu.Unlock()
	if created != h.created {
		h.created = created
		for _, hd := range h.held {
			hd.stale = true
		}
	}
	return nil
}

func (h *host) recoveredCount() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.recovered
}

// gated reports whether the connection came back after statusLoop's last
// decision about superseded tasks: no result goes out until it decides.
func (h *host) gated() bool { return h.nc.Stats().Reconnects != h.recoveredCount() }

// settle acknowledges hd's message with op unless it is stale or
// superseded (the message is another delivery's now).
func (h *host) settle(hd *held, op func(jetstream.Msg) error) {
	h.mu.Lock()
	m, skip := hd.msg, hd.stale || hd.superseded
	h.mu.Unlock()
	if !skip {
		op(m)
	}
}

func (h *host) register(ctx context.Context) error {
	b, _ := json.Marshal(h.entry)
	if _, err := h.in.hosts.Put(ctx, h.key, b); err != nil {
		return fmt.Errorf("multiproc/cluster: registering the host: %w", err)
	}
	return nil
}

// beatLoop refreshes the host's entry: pools count a host alive while
// they see it within hostTTL.
func (h *host) beatLoop() {
	defer h.wg.Done()
	t := time.NewTicker(hostBeat)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		if !h.nc.IsConnected() {
			continue // recover registers the host again once it is back
		}
		ctx, cancel := context.WithTimeout(context.Background(), hostBeat)
		if err := h.register(ctx); err != nil {
			h.log.Warn("cluster-beat", "multiproc/cluster: host heartbeat", "err", err)
		}
		cancel()
	}
}

// fetchLoop pulls tasks while there is room for them, until ctx ends.
func (h *host) fetchLoop(ctx context.Context) {
	for ctx.Err() == nil {
		n := h.acquire(ctx)
		if n == 0 {
			return
		}
		batch, err := h.cons.Fetch(n, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			h.releaseSlots(n)
			h.log.Warn("cluster-fetch", "multiproc/cluster: fetching tasks", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		got := 0
		for m := range batch.Messages() {
			got++
			h.accept(m)
		}
		h.releaseSlots(n - got)
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			h.log.Warn("cluster-fetch", "multiproc/cluster: fetching tasks", "err", err)
		}
	}
}

// acquire waits until the host may hold more tasks and claims all the
// room there is; 0 when ctx ended.
func (h *host) acquire(ctx context.Context) int {
	for {
		h.mu.Lock()
		if n := h.limit - h.inflight; n > 0 {
			h.inflight += n
			h.mu.Unlock()
			return n
		}
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0
		case <-h.slot:
		}
	}
}

func (h *host) releaseSlots(n int) {
	if n <= 0 {
		return
	}
	h.mu.Lock()
	h.inflight -= n
	h.mu.Unlock()
	select {
	case h.slot <- struct{}{}:
	default:
	}
}

// accept starts one task message on the local pool.
func (h *host) accept(m jetstream.Msg) {
	hdr := m.Headers()
	subj := m.Subject()
	pool := subj[strings.LastIndexByte(subj, '.')+1:]
	seq, _ := strconv.ParseUint(hdr.Get(hSeq), 10, 64)
	hd := &held{h: h, msg: m, pool: pool, seq: seq, key: resultKey(pool, seq), progress: time.Now(), ackWait: DefaultAckWait}
	if d, err := strconv.ParseInt(hdr.Get(hAckWait), 10, 64); err == nil && d > 0 {
		hd.ackWait = time.Duration(d)
	}
	hd.maxRes, _ = strconv.Atoi(hdr.Get(hMaxRes))
	if md, err := m.Metadata(); err == nil {
		hd.delivered = md.NumDelivered
	}
	fn := hdr.Get(hFn)
	e, err := registry.Lookup(fn)
	if err != nil {
		h.answer(hd, fn, engine.Result{Err: err, Outcome: engine.Failed})
		return
	}
	payload := m.Data()
	if blob := hdr.Get(hBlob); blob != "" {
		ctx, cancel := context.WithTimeout(h.base, 5*time.Minute)
		payload, err = h.in.blobs.GetBytes(ctx, blob)
		cancel()
		if err != nil {
			// Gone if the pool settled the task meanwhile (then the answer
			// is dropped as a duplicate); otherwise the caller learns why.
			h.answer(hd, fn, engine.Result{Err: fmt.Errorf("multiproc/cluster: host %s: fetching the argument of %q: %w", h.c.name, fn, err), Outcome: engine.Failed})
			return
		}
	}
	tctx, cancel := context.WithCancel(h.base)
	if d, err := strconv.ParseInt(hdr.Get(hDeadline), 10, 64); err == nil && d > 0 {
		tctx, cancel = context.WithTimeout(h.base, time.Duration(d))
	}
	hd.cancel = cancel
	items, _ := strconv.Atoi(hdr.Get(hItems))
	hd.task = engine.Task{Fn: e, Chunk: hdr.Get(hChunk) == "1", Payload: payload, Items: max(items, 1), Ctx: tctx, Sink: hd}
	if d, err := strconv.ParseInt(hdr.Get(hTimeout), 10, 64); err == nil && d > 0 {
		hd.task.Timeout = time.Duration(d)
	}
	h.mu.Lock()
	if old := h.held[hd.key]; old != nil {
		// A redelivery of a task this host still runs (its progress
		// reports were late, or the server lost the stream and the pool
		// published it again): the running one adopts the new message,
		// which is the one to report progress on and acknowledge.
		old.msg, old.stale, old.superseded, old.delivered, old.progress = m, false, false, hd.delivered, time.Now()
		h.mu.Unlock()
		m.InProgress()
		cancel()
		h.releaseSlots(1)
		return
	}
	h.held[hd.key] = hd
	h.mu.Unlock()
	if err := h.core.Submit(&hd.task); err != nil {
		h.mu.Lock()
		delete(h.held, hd.key)
		h.mu.Unlock()
		cancel()
		m.Nak()
		h.releaseSlots(1)
		h.log.Warn("cluster-submit", "multiproc/cluster: host workers refused a task", "err", err)
		return
	}
	h.nc.Publish(startedPrefix+pool, binary.AppendUvarint(nil, seq))
}

// answer publishes r for a task the local pool never ran.
func (h *host) answer(hd *held, fn string, r engine.Result) {
	hd.task.Fn = &registry.Entry{Name: fn}
	hd.res = r
	h.mu.Lock()
	h.held[hd.key] = hd
	h.out = append(h.out, hd)
	h.mu.Unlock()
	select {
	case h.outSig <- struct{}{}:
	default:
	}
}

// onCancel stops a task its pool cancelled.
func (h *host) onCancel(m *nats.Msg) {
	h.mu.Lock()
	hd := h.held[string(m.Data)]
	if hd != nil {
		hd.cancelled = true
	}
	h.mu.Unlock()
	if hd != nil && hd.cancel != nil {
		hd.cancel()
	}
}

// progressLoop reports progress on every held task each quarter of its
// AckWait, so JetStream redelivers only the tasks of a host that went
// silent, and sizes the window from the local pool's mean task time.
func (h *host) progressLoop() {
	defer h.wg.Done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var due []jetstream.Msg
	for n := 0; ; n++ {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		h.mu.Lock()
		due = due[:0]
		for _, hd := range h.held {
			if now.Sub(hd.progress) >= hd.ackWait/4 && !hd.abandoned && !hd.stale && !hd.superseded {
				hd.progress = now
				due = append(due, hd.msg)
			}
		}
		h.mu.Unlock()
		for _, m := range due {
			m.InProgress()
		}
		if n%4 == 0 {
			h.resize()
		}
	}
}

// resize sets how many tasks the host holds: per worker, 1 plus what a
// millisecond of its mean task time holds (at most 256), as the local
// pool pipelines. Long tasks are then taken one per worker, so another
// host gets its share; tiny ones many at a time.
func (h *host) resize() {
	s := h.core.Stats()
	var busy time.Duration
	for _, w := range s.PerWorker {
		busy += w.Busy
	}
	tasks := s.Done + s.Failed
	h.mu.Lock()
	defer h.mu.Unlock()
	dt, db := tasks-h.tasks, busy-h.busy
	h.tasks, h.busy = tasks, busy
	if dt <= 0 || db <= 0 {
		return
	}
	mean := db / time.Duration(dt)
	window := 1 + int(time.Millisecond/max(mean, time.Microsecond))
	h.limit = h.c.workers * min(window, 256)
}

// publishLoop puts the results of finished tasks in the results bucket.
func (h *host) publishLoop() {
	defer h.wg.Done()
	for {
		select {
		case <-h.stop:
			return
		case <-h.outSig:
		}
		h.mu.Lock()
		out := h.out
		h.out = nil
		h.mu.Unlock()
		for _, hd := range out {
			h.publish(hd)
		}
	}
}

func (h *host) publish(hd *held) {
	r := hd.res
	h.mu.Lock()
	cancelled, abandoned, superseded := hd.cancelled, hd.abandoned, hd.superseded
	h.mu.Unlock()
	if abandoned {
		return // handed back already
	}
	if superseded {
		h.drop(hd) // its redelivery's result counts
		return
	}
	// Connected again but not yet recovered: whether the task was
	// superseded while the host was away is not decided, and a result
	// published now could be a late duplicate reaching the server after
	// its pool has gone (left there until the results' TTL). Wait for
	// recover, as for the connection.
	if !h.nc.IsConnected() {
		h.publishFailed(hd, nats.ErrDisconnected)
		return
	}
	if h.gated() {
		h.retryLater(hd) // not a failed try: statusLoop decides within retryPause
		return
	}
	if r.Outcome == engine.Cancelled {
		// The pool cancelled it or the caller's deadline passed (the pool
		// settled it: no answer is wanted), or the host is stopping
		// (another host will run it).
		if cancelled || h.base.Err() == nil {
			h.settle(hd, jetstream.Msg.Term)
		} else {
			h.settle(hd, jetstream.Msg.Nak)
		}
		h.drop(hd)
		return
	}
	fn := hd.task.Fn.Name
	if r.Outcome == engine.Done && hd.maxRes > 0 && len(r.Data) > hd.maxRes {
		r = engine.Result{Outcome: engine.Failed, Err: &errs.TooLargeError{What: "result", Func: fn, Size: int64(len(r.Data)), Limit: int64(hd.maxRes)}}
	}
	rec := result{Outcome: r.Outcome, Partial: r.Partial, N: r.N, Data: r.Data, Host: h.c.name}
	rec.setErr(fn, r.Err)
	if len(rec.Data)+len(rec.Err)+headerRoom > int(h.nc.MaxPayload()) {
		name := fmt.Sprintf("%s.res.%s.%d", hd.key, h.key, hd.delivered)
		ctx, cancel := context.WithTimeout(h.base, 5*time.Minute)
		_, err := h.in.blobs.PutBytes(ctx, name, rec.Data)
		cancel()
		if err != nil {
			h.publishFailed(hd, err)
			return
		}
		rec.Data, rec.Blob = nil, name
	}
	if h.gated() {
		// Lost and back while the blob was stored: the decision is anew.
		// (The blob stays until the pool's purge of its objects, or is
		// overwritten by the next try's.)
		h.retryLater(hd)
		return
	}
	f, err := h.js.PublishMsgAsync(&nats.Msg{Subject: "$KV." + resultsBucket + "." + hd.key, Data: rec.append(nil)}, jetstream.WithStallWait(time.Minute))
	if err != nil {
		h.publishFailed(hd, err)
		return
	}
	select {
	case h.acks <- hostAck{hd, f}:
	case <-h.stop:
	}
}

// ackLoop acknowledges each task message once its result is stored: a
// host lost in between has its task redelivered, and the pool drops the
// duplicate result. A worker's death is answered and terminates the
// message (the pool decides about retries).
func (h *host) ackLoop() {
	defer h.wg.Done()
	for {
		var a hostAck
		select {
		case <-h.stop:
			return
		case a = <-h.acks:
		}
		select {
		case <-a.f.Ok():
			if a.hd.res.Outcome == engine.Died {
				h.settle(a.hd, jetstream.Msg.Term)
			} else {
				h.settle(a.hd, jetstream.Msg.Ack)
			}
		case err := <-a.f.Err():
			h.publishFailed(a.hd, err)
			continue
		case <-h.stop:
			return
		}
		h.drop(a.hd)
	}
}

// publishFailed handles a result whose publication failed: after a
// transient failure (a lost connection, a missing stream: see transient)
// it is published again after a pause, up to resultTries times, while the
// task's message stays held (its progress reports go on); otherwise the
// message is handed back for another delivery.
func (h *host) publishFailed(hd *held, err error) {
	h.mu.Lock()
	hd.tries++
	again := transient(err) && hd.tries < resultTries && !hd.abandoned
	h.mu.Unlock()
	if !again {
		h.log.Warn("cluster-result", "multiproc/cluster: storing a result", "err", err)
		h.settle(hd, jetstream.Msg.Nak)
		h.drop(hd)
		return
	}
	h.retryLater(hd)
}

// retryLater publishes hd's result again after retryPause.
func (h *host) retryLater(hd *held) {
	time.AfterFunc(retryPause, func() {
		h.mu.Lock()
		h.out = append(h.out, hd)
		h.mu.Unlock()
		select {
		case h.outSig <- struct{}{}:
		default:
		}
	})
}

// drop forgets hd and frees its slot.
func (h *host) drop(hd *held) {
	h.mu.Lock()
	if h.held[hd.key] == hd {
		delete(h.held, hd.key)
	}
	h.mu.Unlock()
	if hd.cancel != nil {
		hd.cancel()
	}
	h.releaseSlots(1)
}

// shutdown drains (bounded), hands back what is left, stops the workers
// and leaves the cluster.
func (h *host) shutdown() {
	deadline := time.Now().Add(h.c.drain)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		n := len(h.held)
		h.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-h.slot:
		case <-time.After(20 * time.Millisecond):
		}
	}
	h.mu.Lock()
	var rest []*held
	for _, hd := range h.held {
		hd.abandoned = true
		rest = append(rest, hd)
	}
	h.mu.Unlock()
	for _, hd := range rest {
		h.settle(hd, jetstream.Msg.Nak)
	}
	h.cancelBase()
	h.close()
}

// close stops what start started.
func (h *host) close() {
	if h.core != nil {
		h.core.Terminate()
	}
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	h.wg.Wait()
	if h.in != nil && h.nc.IsConnected() {
		// (Disconnected, each request would wait for its timeout: the
		// entry expires from the bucket in hostTTL.)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// A delete marker tells the pools at once; the purge then removes
		// the entry and the marker, leaving nothing behind.
		h.in.hosts.Delete(ctx, h.key)
		h.in.hostS.Purge(ctx, jetstream.WithPurgeSubject("$KV."+hostsBucket+"."+h.key))
		cancel()
	}
	if h.nc != nil {
		if h.nc.IsConnected() {
			h.nc.Flush()
		}
		h.nc.Close()
	}
}
