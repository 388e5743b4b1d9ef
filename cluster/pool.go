package cluster

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/multiproc-go/multiproc/internal/engine"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/logs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

var _ engine.Engine = (*pool)(nil)

// pool is the submitting side: an engine.Engine whose workers are the
// worker hosts of its build on a NATS JetStream cluster.
type pool struct {
	cfg   engine.Config
	c     config
	log   *logs.Limiter
	build string // this program's build key
	id    string // this pool's id: its subjects and keys carry it

	srv        *Server // owned embedded server, nil if none
	localHosts []*HostProcess
	nc         *nats.Conn
	js         jetstream.JetStream
	in         *infra
	subj       string // the subject this pool's tasks are published on
	maxPayload int

	mu        sync.Mutex
	pending   map[uint64]*task // by seq: submitted, not settled
	bySeq     map[uint64]*task // by stream sequence, once published
	nextSeq   uint64
	closing   bool
	idle      chan struct{} // closed when closing and pending is empty
	hostsSeen map[string]*hostSeen
	noHostAt  time.Time // since when no host of this build is alive; zero if one is
	stats     counters
	perHost   map[string]*engine.HostStats
	// collected is the highest results-stream sequence handled: every
	// result of this pool at or below it has been collected or dropped,
	// so the cleaner purges them all at once; purged is the mark of the
	// last purge.
	collected, purged uint64
	// epoch counts the times the server was found to have lost the
	// cluster's state (a restarted memory-storage server): stream
	// sequences of an earlier epoch name other messages, or none.
	epoch    int
	created  [2]time.Time // creation times of the tasks and results streams
	resW     jetstream.KeyWatcher
	hostW    jetstream.KeyWatcher
	resDone  chan struct{} // closed when resW's loop ended
	retry    []*task       // publications that failed transiently, to redo
	retrySig chan struct{} // retry has tasks

	acks    chan ackWait    // publications waiting for their PubAck, in order
	cleanup chan cleanJob   // deletions, done off the delivery paths
	wake    chan struct{}   // the cleaner has a new collected mark
	stop    chan struct{}   // closed by shutdown: background loops end
	life    context.Context // cancelled with stop: bounds the loops' requests
	endLife context.CancelFunc
	subs    []*nats.Subscription
	status  chan nats.Status // CONNECTED events: the connection came back

	shutOnce sync.Once
	shutErr  error
	done     chan struct{} // closed when shutdown finished
	wg       sync.WaitGroup
}

type counters struct {
	done, items, failed, died, timedOut, cancelled, retried, duplicates int64
}

// task is the pool's state of one submitted engine.Task (its Sched.Owner).
type task struct {
	t        *engine.Task
	seq      uint64        // the pool's sequence number: the result key
	sseq     uint64        // stream sequence of the current message; 0 until acknowledged
	attempts int           // deliveries asked for: 1 + retries so far
	gen      int           // publications so far (retries and republications): a stale PubAck is ignored
	pubFail  time.Time     // since when its publication keeps failing transiently; zero if it does not
	blob     string        // object holding the argument, if it is too large for a message
	running  bool          // a host reported it began
	stopped  bool          // cancelled: its message must not stay queued
	timeout  time.Duration // its time limit (0: none)
	since    time.Time     // submitted (or retried) at
}

type hostSeen struct {
	e    hostEntry
	seen time.Time
}

type ackWait struct {
	st  *task
	f   jetstream.PubAckFuture
	gen int // st.gen when published: a stale ack is ignored
}

type cleanJob struct {
	stream jetstream.Stream
	seq    uint64 // message to delete (a sequence of epoch), or
	epoch  int
	blob   string // object to delete (then its metadata marker is purged)
}

func newPool(ctx context.Context, cfg engine.Config, c config) (_ engine.Engine, err error) {
	if cfg.Init != nil {
		return nil, errors.New("multiproc/cluster: a cluster pool cannot run an Initializer: hosts join at any time; initialise in the worker's package instead")
	}
	build, err := buildOnce()
	if err != nil {
		return nil, fmt.Errorf("multiproc/cluster: build id: %w", err)
	}
	p := &pool{
		cfg: cfg, c: c, log: logs.New(cfg.Logger), build: build, id: nuid.Next(),
		pending: map[uint64]*task{}, bySeq: map[uint64]*task{}, hostsSeen: map[string]*hostSeen{},
		perHost: map[string]*engine.HostStats{}, idle: make(chan struct{}),
		acks: make(chan ackWait, 4096), cleanup: make(chan cleanJob, 1024), wake: make(chan struct{}, 1),
		retrySig: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	p.life, p.endLife = context.WithCancel(context.Background())
	if p.cfg.RetryOn == nil {
		p.cfg.RetryOn = func(err error) bool {
			return errors.Is(err, errs.ErrWorkerDied) || errors.Is(err, errs.ErrTimeout)
		}
	}
	p.subj = taskPrefix + build + "." + p.id
	defer func() {
		if err != nil {
			p.release()
		}
	}()
	url := c.url
	switch {
	case c.server != nil:
		url = c.server.URL()
	case url == "":
		if p.srv, err = StartServer(ctx); err != nil {
			return nil, err
		}
		url = p.srv.URL()
		c.server = p.srv
		p.c.server = p.srv
	}
	nopts := append([]nats.Option{nats.Name("multiproc pool " + p.id), nats.MaxReconnects(-1)}, c.natsOpts...)
	if p.nc, err = nats.Connect(url, nopts...); err != nil {
		return nil, fmt.Errorf("multiproc/cluster: connect %s: %w", url, err)
	}
	p.status = p.nc.StatusChanged(nats.CONNECTED)
	p.maxPayload = int(p.nc.MaxPayload())
	// The PubAck timeout bounds the wait for an acknowledgement lost
	// without a disconnect (a disconnect fails the pending ones at once);
	// such a task is published again.
	if p.js, err = jetstream.New(p.nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(pubAckTimeout)); err != nil {
		return nil, fmt.Errorf("multiproc/cluster: %w", err)
	}
	if p.in, err = ensureInfra(ctx, p.js, p.c.storage(), c.resultTTL); err != nil {
		return nil, err
	}
	p.created = p.in.created()
	if _, err = p.js.CreateOrUpdateConsumer(ctx, tasksStream, consumerConfig(build, c.ackWait, c.maxDeliver)); err != nil {
		return nil, fmt.Errorf("multiproc/cluster: consumer: %w", err)
	}
	// Subscriptions before anything is published, so no answer is missed.
	if err := p.watch(); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		subj string
		h    nats.MsgHandler
	}{
		{startedPrefix + p.id, p.onStarted},
		{advisoryPre + consumerPre + build, p.onMaxDeliveries},
	} {
		sub, err := p.nc.Subscribe(s.subj, s.h)
		if err != nil {
			return nil, fmt.Errorf("multiproc/cluster: subscribe %s: %w", s.subj, err)
		}
		p.subs = append(p.subs, sub)
	}
	if err := p.nc.FlushWithContext(ctx); err != nil {
		return nil, fmt.Errorf("multiproc/cluster: %w", err)
	}
	p.wg.Add(5)
	go p.ackLoop()
	go p.cleanLoop()
	go p.checkLoop()
	go p.retryLoop()
	go p.recoverLoop()
	if c.localHosts > 0 {
		if err := p.startLocalHosts(ctx, url); err != nil {
			return nil, err
		}
		// The hosts are registered; wait until the watch has seen them, so
		// that Stats counts them from the first call.
		for p.Stats().Workers < c.localHosts*c.localEach {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("multiproc/cluster: waiting for the local hosts: %w", ctx.Err())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return p, nil
}

// startLocalHosts starts LocalHosts' hosts concurrently and waits for them.
func (p *pool) startLocalHosts(ctx context.Context, url string) error {
	hs := make([]*HostProcess, p.c.localHosts)
	errc := make(chan error, len(hs))
	for i := range hs {
		go func() {
			h, err := StartHost(ctx, url, p.c.localEach, p.c.storage() == jetstream.FileStorage)
			hs[i] = h
			errc <- err
		}()
	}
	var first error
	for range hs {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	for _, h := range hs {
		if h != nil {
			p.localHosts = append(p.localHosts, h)
		}
	}
	return first
}

// watch (re)starts the watches of the results and hosts buckets and
// their loops: at the start, and after each reconnection. The old ones are
// stopped first and the results watch resumes after the last result
// handled, so nothing is handled twice; after the server lost the buckets
// (collected is reset) it starts from the beginning of the new one. A
// restart is needed even when the server kept the streams: the old
// watches' ordered consumers are gone with the old connection's server
// state and would notice only after missing two heartbeats (10s).
func (p *pool) watch() error {
	p.mu.Lock()
	oldR, oldH, oldDone := p.resW, p.hostW, p.resDone
	p.mu.Unlock()
	for _, o := range []jetstream.KeyWatcher{oldR, oldH} {
		if o != nil {
			o.Stop()
		}
	}
	if oldDone != nil {
		select {
		case <-oldDone:
		case <-p.stop:
			return nil
		}
	}
	p.mu.Lock()
	from, epoch := p.collected, p.epoch
	p.mu.Unlock()
	opts := []jetstream.WatchOpt{jetstream.IgnoreDeletes()}
	if from > 0 {
		opts = append(opts, jetstream.ResumeFromRevision(from+1))
	}
	// p.life: closing the connection does not end a watch's goroutine, a
	// cancelled context does.
	w, err := p.in.results.Watch(p.life, p.id+".*", opts...)
	if err != nil {
		return fmt.Errorf("multiproc/cluster: results watch: %w", err)
	}
	hw, err := p.in.hosts.Watch(p.life, ">")
	if err != nil {
		w.Stop()
		return fmt.Errorf("multiproc/cluster: hosts watch: %w", err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.resW, p.hostW, p.resDone = w, hw, done
	p.mu.Unlock()
	p.wg.Add(2)
	go func() {
		defer close(done)
		p.resultLoop(w, epoch)
	}()
	go p.hostLoop(hw)
	return nil
}

func (p *pool) stopWatches() {
	p.mu.Lock()
	ws := []jetstream.KeyWatcher{p.resW, p.hostW}
	p.mu.Unlock()
	for _, w := range ws {
		if w != nil {
			w.Stop()
		}
	}
}

// release frees what newPool acquired when it fails.
func (p *pool) release() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.endLife()
	p.stopWatches()
	for _, s := range p.subs {
		s.Unsubscribe()
	}
	if p.nc != nil {
		p.nc.Close()
	}
	p.wg.Wait()
	p.stopLocalHosts()
	if p.srv != nil {
		p.srv.Close()
	}
}

func (p *pool) stopLocalHosts() {
	var wg sync.WaitGroup
	for _, h := range p.localHosts {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			h.Stop(ctx)
		})
	}
	wg.Wait()
}

// Submit publishes tasks on the pool's subject, in order.
func (p *pool) Submit(ts ...*engine.Task) error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return errs.ErrPoolClosed
	}
	for _, t := range ts {
		if len(t.Res) > 0 {
			// The root refuses such arguments first (CanTransfer is false);
			// this guards the contract.
			p.mu.Unlock()
			for _, t := range ts {
				for i, r := range t.Res {
					t.Res[i].Settle(false) // the resource hook: not delivered
					if r.Owned {           // Submit takes these over, failing or not
						for _, f := range r.Files {
							f.Close()
						}
					}
				}
			}
			return fmt.Errorf("%w: a cluster pool cannot carry descriptors", errs.ErrNotTransferable)
		}
	}
	sts := make([]*task, len(ts))
	for i, t := range ts {
		p.nextSeq++
		st := &task{t: t, seq: p.nextSeq, attempts: 1, timeout: t.Timeout, since: time.Now()}
		if st.timeout <= 0 {
			st.timeout = p.cfg.TaskTimeout
		}
		t.Sched.Owner = st
		t.ID = resultKey(p.id, st.seq)
		p.pending[st.seq] = st
		sts[i] = st
		if t.Ctx != nil && t.Ctx.Done() != nil {
			// Set under p.mu: the watch may fire at once, and its Cancel
			// takes p.mu before it settles, so Settle sees Stop.
			t.Sched.Stop = context.AfterFunc(t.Ctx, func() { p.Cancel(t, cancelled(t, t.Ctx)) })
		}
	}
	p.mu.Unlock()
	for _, st := range sts {
		p.publish(st)
	}
	return nil
}

// cancelled is the error of a task whose context ended, as locally.
func cancelled(t *engine.Task, ctx context.Context) error {
	err := ctx.Err()
	if d, ok := ctx.Deadline(); ok && err == nil && !time.Now().Before(d) {
		err = context.DeadlineExceeded
	}
	return fmt.Errorf("multiproc: task %q cancelled: %w", t.Fn.Name, err)
}

// publish sends st's message (again, for a retry). Its acknowledgement is
// awaited by ackLoop. A failure settles st.
func (p *pool) publish(st *task) {
	t := st.t
	m := nats.NewMsg(p.subj)
	h := m.Header
	h.Set(hFn, t.Fn.Name)
	h.Set(hSeq, strconv.FormatUint(st.seq, 10))
	if t.Chunk {
		h.Set(hChunk, "1")
	}
	h.Set(hItems, strconv.Itoa(max(t.Items, 1)))
	if st.timeout > 0 {
		h.Set(hTimeout, strconv.FormatInt(int64(st.timeout), 10))
	}
	if t.Ctx != nil {
		if d, ok := t.Ctx.Deadline(); ok {
			h.Set(hDeadline, strconv.FormatInt(int64(max(time.Until(d), 1)), 10))
		}
	}
	h.Set(hAckWait, strconv.FormatInt(int64(p.c.ackWait), 10))
	maxRes := p.cfg.MaxMessageSize
	if maxRes > 0 {
		h.Set(hMaxRes, strconv.Itoa(maxRes))
	}
	p.mu.Lock()
	st.gen++
	gen := st.gen
	blob := st.blob
	p.mu.Unlock()
	if len(t.Payload) > p.maxPayload-headerRoom {
		if blob == "" {
			blob = fmt.Sprintf("%s.%d.arg", p.id, st.seq)
			ctx, cancel := context.WithTimeout(p.life, 5*time.Minute)
			_, err := p.in.blobs.PutBytes(ctx, blob, t.Payload)
			cancel()
			if err != nil && transient(err) {
				p.publishFailed(st, gen, err)
				return
			}
			if err != nil {
				p.fail(st, fmt.Errorf("multiproc/cluster: storing the %d-byte argument of %q: %w", len(t.Payload), t.Fn.Name, err), engine.Failed)
				p.queueClean(cleanJob{blob: blob})
				return
			}
			p.mu.Lock()
			st.blob = blob
			p.mu.Unlock()
		}
		h.Set(hBlob, blob)
	} else {
		m.Data = t.Payload
	}
	for {
		f, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(time.Second))
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			select {
			case <-p.stop:
			case <-p.js.PublishAsyncComplete():
				continue
			case <-time.After(time.Second):
				continue
			}
		}
		if err != nil {
			p.publishFailed(st, gen, err)
			return
		}
		select {
		case p.acks <- ackWait{st, f, gen}:
		case <-p.stop:
		}
		return
	}
}

// ackLoop records where each published message landed in the stream (to
// delete it on cancellation and to recognise its max-deliveries advisory).
func (p *pool) ackLoop() {
	defer p.wg.Done()
	for {
		var a ackWait
		select {
		case a = <-p.acks:
		case <-p.stop:
			return
		}
		select {
		case ack := <-a.f.Ok():
			p.mu.Lock()
			live := p.pending[a.st.seq] == a.st && a.st.gen == a.gen
			if live {
				a.st.sseq = ack.Sequence
				a.st.pubFail = time.Time{}
				p.bySeq[ack.Sequence] = a.st
			}
			stopped := a.st.stopped
			epoch := p.epoch
			p.mu.Unlock()
			if stopped && !live {
				// Settled (cancelled) before its message landed: remove it.
				p.queueClean(cleanJob{stream: p.in.tasks, seq: ack.Sequence, epoch: epoch})
			}
		case err := <-a.f.Err():
			p.publishFailed(a.st, a.gen, err)
		case <-p.stop:
			return
		}
	}
}

// transient reports whether a publication failed for a reason that
// passes: the connection was lost (pending acknowledgements fail at
// once), the acknowledgement did not come, or the stream is missing (a
// restarted server, before the stream is created again).
func transient(err error) bool {
	for _, e := range []error{nats.ErrDisconnected, nats.ErrReconnectBufExceeded, nats.ErrNoResponders, nats.ErrTimeout,
		jetstream.ErrNoStreamResponse, jetstream.ErrAsyncPublishTimeout, jetstream.ErrTooManyStalledMsgs, jetstream.ErrStreamNotFound} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// publishFailed handles a failed publication of st (generation gen): a
// transient failure publishes it again after a pause, for at most
// NoWorkersWait; any other, or one that lasts, fails st.
func (p *pool) publishFailed(st *task, gen int, err error) {
	now := time.Now()
	p.mu.Lock()
	live := p.pending[st.seq] == st && st.gen == gen
	if live && st.pubFail.IsZero() {
		st.pubFail = now
	}
	lasted := now.Sub(st.pubFail)
	retry := live && transient(err) && lasted < p.c.noWorkers
	if retry {
		p.retry = append(p.retry, st)
	}
	p.mu.Unlock()
	switch {
	case !live:
	case retry:
		select {
		case p.retrySig <- struct{}{}:
		default:
		}
	case transient(err):
		p.fail(st, fmt.Errorf("multiproc/cluster: publishing task %q: %w (retried for %v)", st.t.Fn.Name, err, lasted.Round(time.Millisecond)), engine.Failed)
	default:
		p.fail(st, fmt.Errorf("multiproc/cluster: publishing task %q: %w", st.t.Fn.Name, err), engine.Failed)
	}
}

// retryLoop publishes again, after a pause, the tasks whose publication
// failed transiently.
func (p *pool) retryLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case <-p.retrySig:
		}
		select {
		case <-p.stop:
			return
		case <-time.After(retryPause):
		}
		p.mu.Lock()
		sts := p.retry
		p.retry = nil
		p.mu.Unlock()
		slices.SortFunc(sts, func(a, b *task) int { return cmp.Compare(a.seq, b.seq) })
		for _, st := range sts {
			p.mu.Lock()
			live := p.pending[st.seq] == st
			p.mu.Unlock()
			if live {
				p.publish(st)
			}
		}
	}
}

// recoverLoop runs recover each time the connection comes back.
func (p *pool) recoverLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case _, ok := <-p.status:
			if !ok {
				return
			}
		}
		for p.nc.IsConnected() {
			err := p.recover()
			if err == nil {
				break
			}
			p.log.Warn("cluster-recover", "multiproc/cluster: after reconnecting", "err", err)
			select {
			case <-p.stop:
				return
			case <-time.After(retryPause):
			}
		}
	}
}

// recover makes sure, after a reconnection, that the streams, buckets and
// consumer exist (a restarted memory-storage server has none: they are
// created again). If the server lost them, every unsettled task is
// published again (its message, and any result, were lost with them) and
// the watches start again on the new buckets; stream sequences from
// before are forgotten. A server that kept them (file storage, or a
// cluster that kept its quorum) needs nothing more: the consumer
// redelivers what the lost connection left unacknowledged.
func (p *pool) recover() error {
	ctx, cancel := context.WithTimeout(p.life, 30*time.Second)
	defer cancel()
	in, err := ensureInfra(ctx, p.js, p.c.storage(), p.c.resultTTL)
	if err != nil {
		return err
	}
	if _, err = p.js.CreateOrUpdateConsumer(ctx, tasksStream, consumerConfig(p.build, p.c.ackWait, p.c.maxDeliver)); err != nil {
		return fmt.Errorf("multiproc/cluster: consumer: %w", err)
	}
	created := in.created()
	p.mu.Lock()
	if created == p.created {
		p.mu.Unlock()
		return p.watch()
	}
	p.created = created
	p.epoch++
	p.collected, p.purged = 0, 0
	now := time.Now()
	sts := make([]*task, 0, len(p.pending))
	for _, st := range p.pending {
		st.sseq, st.running, st.blob, st.since = 0, false, "", now
		sts = append(sts, st)
	}
	clear(p.bySeq)
	p.mu.Unlock()
	p.log.Warn("cluster-lost", "multiproc/cluster: the server lost the cluster's streams (restarted with memory storage?); publishing the unsettled tasks again", "tasks", len(sts))
	if err := p.watch(); err != nil {
		return err
	}
	slices.SortFunc(sts, func(a, b *task) int { return cmp.Compare(a.seq, b.seq) })
	for _, st := range sts {
		p.mu.Lock()
		live := p.pending[st.seq] == st
		p.mu.Unlock()
		if live {
			p.publish(st)
		}
	}
	return nil
}

// take removes st from the pending tables and reports whether it was
// there; whoever takes it settles it.
func (p *pool) takeLocked(st *task) bool {
	if p.pending[st.seq] != st {
		return false
	}
	delete(p.pending, st.seq)
	if st.sseq != 0 {
		delete(p.bySeq, st.sseq)
	}
	if p.closing && len(p.pending) == 0 {
		close(p.idle)
	}
	return true
}

// fail settles st with err unless it was settled already.
func (p *pool) fail(st *task, err error, o engine.Outcome) {
	p.mu.Lock()
	ok := p.takeLocked(st)
	if ok {
		p.countLocked(o, st, "")
	}
	p.mu.Unlock()
	if ok {
		p.settled(st)
		st.t.Settle(engine.Result{Err: err, Outcome: o})
	}
}

// settled cleans up after st: its argument object and, if it may still be
// queued, its message.
func (p *pool) settled(st *task) {
	p.mu.Lock()
	blob := st.blob
	p.mu.Unlock()
	if blob != "" {
		p.queueClean(cleanJob{blob: blob})
	}
}

func (p *pool) countLocked(o engine.Outcome, st *task, host string) {
	switch o {
	case engine.Done:
		p.stats.done++
		p.stats.items += int64(max(st.t.Items, 1))
	case engine.Failed:
		p.stats.failed++
	case engine.Died:
		p.stats.died++
	case engine.TimedOut:
		p.stats.timedOut++
	case engine.Cancelled:
		p.stats.cancelled++
	}
	if host == "" {
		return
	}
	hs := p.perHost[host]
	if hs == nil {
		hs = &engine.HostStats{Host: host}
		p.perHost[host] = hs
	}
	switch o {
	case engine.Done:
		hs.Done++
	case engine.Failed, engine.TimedOut:
		hs.Failed++
	case engine.Died:
		hs.Died++
	}
}

// resultLoop collects the results hosts put in the results bucket, in the
// bucket's order.
func (p *pool) resultLoop(w jetstream.KeyWatcher, epoch int) {
	defer p.wg.Done()
	for e := range w.Updates() {
		if e == nil {
			continue // the end of the initial values
		}
		p.onResult(e)
		p.mu.Lock()
		if e.Revision() > p.collected && epoch == p.epoch {
			p.collected = e.Revision()
		}
		p.mu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

func (p *pool) onResult(e jetstream.KeyValueEntry) {
	_, seq, ok := parseResultKey(e.Key())
	if !ok {
		return
	}
	r, derr := decodeResult(e.Value())
	p.mu.Lock()
	st := p.pending[seq]
	if st == nil {
		if seq <= p.nextSeq {
			p.stats.duplicates++
		}
		p.mu.Unlock()
		if derr == nil && r.Blob != "" {
			p.queueClean(cleanJob{blob: r.Blob})
		}
		return
	}
	p.mu.Unlock()
	if derr != nil {
		p.fail(st, derr, engine.Failed)
		return
	}
	res := engine.Result{Data: r.Data, N: r.N, Partial: r.Partial, Outcome: r.Outcome}
	if r.Blob != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		data, err := p.in.blobs.GetBytes(ctx, r.Blob)
		cancel()
		p.queueClean(cleanJob{blob: r.Blob})
		if err != nil {
			p.fail(st, fmt.Errorf("multiproc/cluster: fetching the result of %q from host %s: %w", st.t.Fn.Name, r.Host, err), engine.Failed)
			return
		}
		res.Data = data
	}
	res.Err = r.failure(st.t.Fn.Name, st.timeout)
	p.mu.Lock()
	if p.pending[seq] != st {
		p.stats.duplicates++ // settled meanwhile (cancelled): too late
		p.mu.Unlock()
		return
	}
	if (res.Outcome == engine.Died || res.Outcome == engine.TimedOut) && !p.closing &&
		st.attempts <= p.cfg.Retries && p.cfg.RetryOn(res.Err) {
		// A delivery failure, retried as locally: published again.
		p.stats.retried++
		st.attempts++
		if st.sseq != 0 {
			delete(p.bySeq, st.sseq)
			st.sseq = 0
		}
		st.running = false
		st.since = time.Now()
		p.mu.Unlock()
		p.publish(st)
		return
	}
	p.takeLocked(st)
	p.countLocked(res.Outcome, st, r.Host)
	p.mu.Unlock()
	p.settled(st)
	st.t.Settle(res)
}

// onStarted marks the tasks a host reports it began (uvarint seqs).
func (p *pool) onStarted(m *nats.Msg) {
	b := m.Data
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(b) > 0 {
		seq, n := binary.Uvarint(b)
		if n <= 0 {
			return
		}
		b = b[n:]
		if st := p.pending[seq]; st != nil {
			st.running = true
		}
	}
}

// onMaxDeliveries turns JetStream's advisory that a task reached
// MaxDeliver (its hosts were lost that many times) into a failed future,
// and removes the message, which the advisory leaves in the stream.
func (p *pool) onMaxDeliveries(m *nats.Msg) {
	var adv struct {
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(m.Data, &adv); err != nil {
		return
	}
	p.mu.Lock()
	st := p.bySeq[adv.StreamSeq]
	epoch := p.epoch
	p.mu.Unlock()
	if st == nil {
		return // another pool's task (of the same build)
	}
	p.queueClean(cleanJob{stream: p.in.tasks, seq: adv.StreamSeq, epoch: epoch})
	p.fail(st, fmt.Errorf("%w: task %q: its worker host was lost %d times (MaxDeliver %d); the task was removed from the queue",
		errs.ErrWorkerDied, st.t.Fn.Name, adv.Deliveries, p.c.maxDeliver), engine.Died)
}

// hostLoop follows the hosts bucket: who is alive, of which build.
func (p *pool) hostLoop(w jetstream.KeyWatcher) {
	defer p.wg.Done()
	for e := range w.Updates() {
		if e == nil {
			continue
		}
		p.mu.Lock()
		if e.Operation() != jetstream.KeyValuePut {
			delete(p.hostsSeen, e.Key())
		} else {
			var he hostEntry
			if json.Unmarshal(e.Value(), &he) == nil {
				p.hostsSeen[e.Key()] = &hostSeen{e: he, seen: time.Now()}
			}
		}
		p.mu.Unlock()
	}
}

// checkLoop fails tasks that waited NoWorkersWait with no live host of
// this build.
func (p *pool) checkLoop() {
	defer p.wg.Done()
	tick := time.NewTicker(min(max(p.c.noWorkers/4, 50*time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		now := time.Now()
		p.mu.Lock()
		ours, others := 0, map[string]bool{}
		for k, h := range p.hostsSeen {
			switch {
			case now.Sub(h.seen) > hostTTL:
				delete(p.hostsSeen, k)
			case h.e.Build == p.build:
				ours++
			default:
				others[h.e.Build] = true
			}
		}
		if ours > 0 || len(p.pending) == 0 {
			p.noHostAt = time.Time{}
			p.mu.Unlock()
			continue
		}
		if p.noHostAt.IsZero() {
			p.noHostAt = now
		}
		if now.Sub(p.noHostAt) < p.c.noWorkers {
			p.mu.Unlock()
			continue
		}
		var err error
		switch {
		case !p.nc.IsConnected():
			err = fmt.Errorf("%w for %v: the pool is disconnected from the NATS server (%s; reconnecting)", ErrNoWorkers, p.c.noWorkers, p.nc.Status())
		case len(others) > 0:
			builds := make([]string, 0, len(others))
			for b := range others {
				builds = append(builds, b)
			}
			sort.Strings(builds)
			err = fmt.Errorf("%w: no worker host of this build (%s) for %v; the live hosts run builds %s", errs.ErrBuildMismatch, p.build, p.c.noWorkers, strings.Join(builds, ", "))
		default:
			err = fmt.Errorf("%w for %v", ErrNoWorkers, p.c.noWorkers)
		}
		// Each task waits NoWorkersWait from the later of its submission
		// and the last host's loss.
		var sts []*task
		for _, st := range p.pending {
			if now.Sub(st.since) >= p.c.noWorkers {
				sts = append(sts, st)
			}
		}
		p.mu.Unlock()
		slices.SortFunc(sts, func(a, b *task) int { return cmp.Compare(a.seq, b.seq) })
		for _, st := range sts {
			p.remove(st)
			p.fail(st, fmt.Errorf("multiproc/cluster: task %q: %w", st.t.Fn.Name, err), engine.Failed)
		}
	}
}

// remove deletes st's message from the stream if it has landed there.
func (p *pool) remove(st *task) {
	p.mu.Lock()
	sseq, epoch := st.sseq, p.epoch
	p.mu.Unlock()
	if sseq != 0 {
		p.queueClean(cleanJob{stream: p.in.tasks, seq: sseq, epoch: epoch})
	}
}

func (p *pool) queueClean(j cleanJob) {
	select {
	case p.cleanup <- j:
	case <-p.stop:
		// shutdown purges whatever is this pool's.
	}
}

// cleanLoop deletes what was collected: messages, objects, and (with one
// purge per batch) the results at or below the collected mark.
func (p *pool) cleanLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case j := <-p.cleanup:
			p.cleanCtx(p.life, j)
		case <-p.wake:
		}
		p.mu.Lock()
		mark, purged, epoch := p.collected, p.purged, p.epoch
		p.mu.Unlock()
		if mark > purged {
			ctx, cancel := context.WithTimeout(p.life, 30*time.Second)
			err := p.in.resultS.Purge(ctx, jetstream.WithPurgeSubject("$KV."+resultsBucket+"."+p.id+".>"), jetstream.WithPurgeSequence(mark+1))
			cancel()
			if err == nil {
				p.mu.Lock()
				if p.epoch == epoch {
					p.purged = mark
				}
				p.mu.Unlock()
			} else if p.life.Err() == nil {
				p.log.Warn("cluster-purge", "multiproc/cluster: purging collected results", "err", err)
			}
		}
	}
}

func (p *pool) clean(j cleanJob) {
	p.cleanCtx(context.Background(), j)
}

// cleanCtx is clean bounded by parent: the cleaner's requests end with the
// pool's life (a request in flight when the connection dropped waits for
// its timeout, which Close must not).
func (p *pool) cleanCtx(parent context.Context, j cleanJob) {
	ctx, cancel := context.WithTimeout(parent, 30*time.Second)
	defer cancel()
	if j.blob != "" {
		if err := p.in.blobs.Delete(ctx, j.blob); err != nil && !notFound(err) {
			p.log.Warn("cluster-clean", "multiproc/cluster: deleting an object", "name", j.blob, "err", err)
		}
		p.in.blobS.Purge(ctx, jetstream.WithPurgeSubject(metaSubject(j.blob)))
		return
	}
	p.mu.Lock()
	stale := j.epoch != p.epoch
	p.mu.Unlock()
	if stale {
		return // a sequence of a stream the server lost
	}
	if err := j.stream.DeleteMsg(ctx, j.seq); err != nil && !notFound(err) {
		p.log.Warn("cluster-clean", "multiproc/cluster: deleting a message", "seq", j.seq, "err", err)
	}
}

// Cancel settles t with err, removes its message if it is still queued and
// tells the host running it to stop it.
func (p *pool) Cancel(t *engine.Task, err error) bool {
	st, _ := t.Sched.Owner.(*task)
	if st == nil {
		return false
	}
	p.mu.Lock()
	if !p.takeLocked(st) {
		p.mu.Unlock()
		return false
	}
	p.stats.cancelled++
	st.stopped = true
	sseq, epoch := st.sseq, p.epoch
	p.mu.Unlock()
	if sseq != 0 {
		p.queueClean(cleanJob{stream: p.in.tasks, seq: sseq, epoch: epoch})
	}
	// Told even when no host reported it began: one may hold it already.
	p.nc.Publish(cancelPrefix+p.build, []byte(resultKey(p.id, st.seq)))
	p.settled(st)
	t.Settle(engine.Result{Err: err, Outcome: engine.Cancelled})
	return true
}

// CancelPending cancels every task no host reported it began.
func (p *pool) CancelPending(err error) {
	p.mu.Lock()
	var sts []*task
	for _, st := range p.pending {
		if !st.running {
			sts = append(sts, st)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(sts, func(a, b *task) int { return cmp.Compare(a.seq, b.seq) })
	for _, st := range sts {
		p.Cancel(st.t, err)
	}
}

// Running reports whether a host reported it began t and t is unsettled.
func (p *pool) Running(t *engine.Task) bool {
	st, _ := t.Sched.Owner.(*task)
	if st == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending[st.seq] == st && st.running
}

// StartClose stops intake.
func (p *pool) StartClose() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closing {
		p.closing = true
		if len(p.pending) == 0 {
			close(p.idle)
		}
	}
}

// Close waits for every task to settle, then removes what this pool left
// on the cluster and disconnects (stopping its local hosts and embedded
// server, if any).
func (p *pool) Close(ctx context.Context) error {
	p.StartClose()
	select {
	case <-p.idle:
	case <-ctx.Done():
		p.Terminate()
		return fmt.Errorf("multiproc: pool close: %w", ctx.Err())
	}
	return p.shutdown()
}

// Terminate settles every unsettled task with ErrPoolClosed, stops the
// running ones on their hosts and shuts down.
func (p *pool) Terminate() error {
	p.StartClose()
	p.mu.Lock()
	sts := make([]*task, 0, len(p.pending))
	for _, st := range p.pending {
		sts = append(sts, st)
	}
	p.mu.Unlock()
	slices.SortFunc(sts, func(a, b *task) int { return cmp.Compare(a.seq, b.seq) })
	for _, st := range sts {
		p.Cancel(st.t, fmt.Errorf("%w: terminated", errs.ErrPoolClosed))
	}
	return p.shutdown()
}

// shutdown ends the background loops, purges every message, result and
// object of this pool, and disconnects. It runs once.
func (p *pool) shutdown() error {
	p.shutOnce.Do(func() {
		close(p.stop)
		p.endLife()
		if !p.nc.IsConnected() {
			// Every request would wait for its timeout (stopping a watch
			// deletes its consumer: a request): close the connection
			// first, which ends the watches and subscriptions at once,
			// and leave what is left to the server (the results' TTL; a
			// memory-storage server that restarted has none of it).
			p.nc.Close()
			p.stopWatches()
			p.wg.Wait()
			p.stopLocalHosts()
			if p.srv != nil {
				p.srv.Close()
			}
			p.shutErr = fmt.Errorf("multiproc/cluster: cleaning up: disconnected from the NATS server (%s): this pool's queued messages, results and objects were left on it", p.nc.Status())
			close(p.done)
			return
		}
		p.stopWatches()
		for _, s := range p.subs {
			s.Unsubscribe()
		}
		p.wg.Wait()
		var errList []error
		// What the loops left: pending deletions, then everything of ours.
		for {
			select {
			case j := <-p.cleanup:
				p.clean(j)
				continue
			default:
			}
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.in.tasks.Purge(ctx, jetstream.WithPurgeSubject(p.subj)); err != nil {
			errList = append(errList, err)
		}
		if err := p.in.resultS.Purge(ctx, jetstream.WithPurgeSubject("$KV."+resultsBucket+"."+p.id+".>")); err != nil {
			errList = append(errList, err)
		}
		if err := p.purgeBlobs(ctx); err != nil {
			errList = append(errList, err)
		}
		if err := p.nc.FlushWithContext(ctx); err != nil {
			errList = append(errList, err)
		}
		p.nc.Close()
		p.stopLocalHosts()
		if p.srv != nil {
			if err := p.srv.Close(); err != nil {
				errList = append(errList, err)
			}
		}
		if err := errors.Join(errList...); err != nil {
			p.shutErr = fmt.Errorf("multiproc/cluster: cleaning up: %w", err)
		}
		close(p.done)
	})
	<-p.done
	return p.shutErr
}

// purgeBlobs deletes the objects named after this pool that are left (an
// argument of a task terminated mid-flight, a result never collected).
func (p *pool) purgeBlobs(ctx context.Context) error {
	l, err := p.in.blobs.List(ctx, jetstream.ListObjectsShowDeleted())
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, o := range l {
		if strings.HasPrefix(o.Name, p.id+".") {
			if !o.Deleted {
				p.in.blobs.Delete(ctx, o.Name)
			}
			p.in.blobS.Purge(ctx, jetstream.WithPurgeSubject(metaSubject(o.Name)))
		}
	}
	return nil
}

// Join waits for a Close or Terminate to finish.
func (p *pool) Join(ctx context.Context) error {
	p.mu.Lock()
	closing := p.closing
	p.mu.Unlock()
	if !closing {
		return errors.New("multiproc: Join on a running pool: call Close or Terminate first")
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("multiproc: pool join: %w", ctx.Err())
	}
}

// Stats counts outcomes as locally; Workers is the number of worker
// processes of the live hosts of this build, PerHost one entry per host
// seen, live or not.
func (p *pool) Stats() engine.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := engine.Stats{
		Done: p.stats.done, Items: p.stats.items, Failed: p.stats.failed, Died: p.stats.died,
		TimedOut: p.stats.timedOut, Cancelled: p.stats.cancelled, Retried: p.stats.retried,
		Duplicates: p.stats.duplicates,
	}
	for _, st := range p.pending {
		if !st.running {
			s.Queued++
		}
	}
	now := time.Now()
	live := map[string]int{}
	for _, h := range p.hostsSeen {
		if h.e.Build == p.build && now.Sub(h.seen) <= hostTTL {
			s.Workers += h.e.Workers
			live[h.e.Host] = h.e.Workers
		}
	}
	names := make([]string, 0, len(p.perHost)+len(live))
	for n := range p.perHost {
		names = append(names, n)
	}
	for n := range live {
		if p.perHost[n] == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		hs := engine.HostStats{Host: n}
		if c := p.perHost[n]; c != nil {
			hs = *c
		}
		hs.Workers = live[n]
		s.PerHost = append(s.PerHost, hs)
	}
	return s
}

// Size is the number of workers the pool plans for (its n).
func (p *pool) Size() int { return p.cfg.Workers }

// CanTransfer is false: descriptors do not cross machines.
func (p *pool) CanTransfer() bool { return false }

// notFound reports whether err says that what was to be deleted is gone
// already (a host acknowledged the message, a duplicate's object was
// deleted): the goal is reached.
func notFound(err error) bool {
	if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrObjectNotFound) {
		return true
	}
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return ae.Code == 404 || ae.ErrorCode == jetstream.JSErrCodeMessageNotFound
	}
	// DeleteMsg flattens the server's error into text (err_code 10043 or
	// 10037: no message at that sequence).
	return strings.Contains(err.Error(), "not found")
}
