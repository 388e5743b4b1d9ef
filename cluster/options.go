package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/engine"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of the delivery settings (see [AckWait], [MaxDeliver],
// [NoWorkersWait], [ResultTTL]).
const (
	DefaultAckWait       = 5 * time.Second
	DefaultMaxDeliver    = 3
	DefaultNoWorkersWait = 10 * time.Second
	DefaultResultTTL     = time.Hour
)

// Option configures a cluster pool (see [Backend]).
type Option func(*config) error

type config struct {
	url        string
	server     *Server
	natsOpts   []nats.Option
	ackWait    time.Duration
	maxDeliver int
	noWorkers  time.Duration
	resultTTL  time.Duration
	file       bool
	localHosts int
	localEach  int
}

// Backend makes NewPool or NewExecutor run the pool on a NATS JetStream
// cluster instead of local worker processes:
//
//	pool, err := multiproc.NewPool(ctx, 8, cluster.Backend(cluster.URL("nats://nats:4222")))
//
// Every call (Map, Imap, ApplyAsync, Submit, Wait, AsCompleted...) and every
// other pool option work unchanged. The pool's size n is the number of
// workers it plans for: it sizes Map's default chunks (about four per
// worker, as locally); the workers themselves are the worker hosts' (see
// [Serve]), and Stats().Workers counts those alive.
//
// With no [URL] (or [Use]), the pool starts an embedded server of its own
// (see [StartServer]) that lives until the pool is closed; worker hosts can
// join it through its address, or the pool starts them itself with
// [LocalHosts].
//
// Of the pool options, these apply on the hosts: TaskTimeout and Timeout
// (as relative budgets), Retries (decided by the pool: a retried task is
// published again), MaxMessageSize (checked by the host before it sends a
// result) and Logger. MaxTasksPerChild, MaxMemory, MaxAge, Grace,
// Initializer, WorkerMaxProcs and RestartIntensity belong to a host's own
// worker processes and are set where the host runs ([Serve]'s options); a
// cluster pool refuses Initializer, which it could not run on hosts that
// join later.
func Backend(opts ...Option) multiproc.PoolOption {
	c := config{ackWait: DefaultAckWait, maxDeliver: DefaultMaxDeliver, noWorkers: DefaultNoWorkersWait, resultTTL: DefaultResultTTL}
	var err error
	for _, o := range opts {
		if o == nil {
			panic("multiproc/cluster: nil Option")
		}
		if e := o(&c); e != nil && err == nil {
			err = e
		}
	}
	if err == nil && c.url != "" && c.server != nil {
		err = errors.New("multiproc/cluster: URL and Use conflict: give one")
	}
	if err == nil && c.localHosts > 0 && c.url != "" {
		err = errors.New("multiproc/cluster: LocalHosts joins the pool's own embedded server (or Use's); it conflicts with URL")
	}
	return func(ec *engine.Config) error {
		if err != nil {
			return err
		}
		cc := c
		ec.New = func(ctx context.Context, cfg engine.Config) (engine.Engine, error) { return newPool(ctx, cfg, cc) }
		return nil
	}
}

// URL makes the pool use the NATS server or cluster at url (a
// comma-separated list of nats:// or tls:// URLs) instead of an embedded
// server. Authentication and TLS are given with [NATSOptions].
func URL(url string) Option {
	return func(c *config) error {
		if url == "" {
			return errors.New("multiproc/cluster: URL(\"\")")
		}
		c.url = url
		return nil
	}
}

// Use makes the pool use s, a server the program started with
// [StartServer] and closes itself, instead of starting its own.
func Use(s *Server) Option {
	return func(c *config) error {
		if s == nil {
			return errors.New("multiproc/cluster: Use(nil)")
		}
		c.server = s
		return nil
	}
}

// NATSOptions are passed to nats.Connect as they are: credentials
// (nats.UserCredentials, nats.Nkey, nats.UserInfo, nats.Token), TLS
// (nats.Secure, nats.RootCAs, nats.ClientCert), names, reconnection.
func NATSOptions(opts ...nats.Option) Option {
	return func(c *config) error { c.natsOpts = append(c.natsOpts, opts...); return nil }
}

// AckWait sets how long a host may stay silent about a task it holds before
// JetStream gives the task to another host (default 5s). Hosts report
// progress every quarter of it while the task runs, so it bounds the time
// to notice a lost host, not a task's run time. It is the consumer's
// setting: the pool sets it for every host of its build.
func AckWait(d time.Duration) Option {
	return func(c *config) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("multiproc/cluster: AckWait(%v): must be at least 100ms", d)
		}
		c.ackWait = d
		return nil
	}
}

// MaxDeliver sets how many times a task is given to a host (default 3):
// after that many host losses its future fails with an error matching
// multiproc.ErrWorkerDied, and the message is removed.
func MaxDeliver(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("multiproc/cluster: MaxDeliver(%d): must be at least 1", n)
		}
		c.maxDeliver = n
		return nil
	}
}

// NoWorkersWait sets how long tasks wait while no host of this build is
// alive (default 10s) before they fail: with [ErrNoWorkers] when no host
// at all is alive, or the pool is disconnected from the server (then its
// hosts count as lost 5s after their last heartbeat it saw), with an
// error matching multiproc.ErrBuildMismatch when the live hosts all run
// other builds of the program. It also bounds how long a task's
// publication is retried while it fails transiently (a missing stream
// after a server restart).
func NoWorkersWait(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("multiproc/cluster: NoWorkersWait(%v): must be positive", d)
		}
		c.noWorkers = d
		return nil
	}
}

// ResultTTL sets how long an uncollected result stays in the results
// bucket (default 1h). It is the bucket's setting, taken by whoever creates
// the bucket; collected results are deleted at once.
func ResultTTL(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return fmt.Errorf("multiproc/cluster: ResultTTL(%v): must be at least 1s", d)
		}
		c.resultTTL = d
		return nil
	}
}

// FileStorage makes the streams and buckets this pool creates file-backed
// (replicated as the cluster allows) instead of in memory, for an external
// cluster that must keep queued tasks across a server restart. Configure
// that cluster with `jetstream { sync_interval: always }`: by default
// JetStream fsyncs every two minutes and acknowledges writes before they
// are durable.
func FileStorage() Option {
	return func(c *config) error { c.file = true; return nil }
}

// LocalHosts makes the pool start n worker hosts of its own on this
// machine, each running workers worker processes, that join its server
// (embedded or [Use]'s). NewPool returns once they have all joined; Close
// stops them. It is the quickest way to a cluster pool on one machine, and
// what tests and the example use.
func LocalHosts(n, workers int) Option {
	return func(c *config) error {
		if n < 1 || workers < 1 {
			return fmt.Errorf("multiproc/cluster: LocalHosts(%d, %d): both must be positive", n, workers)
		}
		c.localHosts, c.localEach = n, workers
		return nil
	}
}

func (c *config) storage() jetstream.StorageType {
	if c.file || (c.server != nil && c.server.file) {
		return jetstream.FileStorage
	}
	return jetstream.MemoryStorage
}
