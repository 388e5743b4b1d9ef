package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// infra is the JetStream objects a pool or a host works with.
type infra struct {
	tasks   jetstream.Stream
	results jetstream.KeyValue
	resultS jetstream.Stream // the stream behind results, for purges
	hosts   jetstream.KeyValue
	hostS   jetstream.Stream
	blobs   jetstream.ObjectStore
	blobS   jetstream.Stream
}

// ensureInfra creates what is missing and binds to what exists. An object
// that exists with another configuration (another pool's choice of
// storage, say) is used as it is: the objects are shared by every pool and
// host on the cluster.
func ensureInfra(ctx context.Context, js jetstream.JetStream, storage jetstream.StorageType, resultTTL time.Duration) (*infra, error) {
	var in infra
	var err error
	in.tasks, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:      tasksStream,
		Subjects:  []string{taskPrefix + ">"},
		Retention: jetstream.WorkQueuePolicy,
		Storage:   storage,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		in.tasks, err = js.Stream(ctx, tasksStream)
	}
	if err != nil {
		return nil, fmt.Errorf("multiproc/cluster: tasks stream: %w", err)
	}
	if in.results, err = ensureKV(ctx, js, jetstream.KeyValueConfig{Bucket: resultsBucket, TTL: resultTTL, Storage: storage}); err != nil {
		return nil, err
	}
	if in.hosts, err = ensureKV(ctx, js, jetstream.KeyValueConfig{Bucket: hostsBucket, TTL: hostTTL, Storage: storage}); err != nil {
		return nil, err
	}
	in.blobs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: blobsBucket, TTL: resultTTL, Storage: storage})
	if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		in.blobs, err = js.ObjectStore(ctx, blobsBucket)
	}
	if err != nil {
		return nil, fmt.Errorf("multiproc/cluster: object store %s: %w", blobsBucket, err)
	}
	for _, s := range []struct {
		name string
		dst  *jetstream.Stream
	}{{resultsStream, &in.resultS}, {hostsStream, &in.hostS}, {blobsStream, &in.blobS}} {
		if *s.dst, err = js.Stream(ctx, s.name); err != nil {
			return nil, fmt.Errorf("multiproc/cluster: stream %s: %w", s.name, err)
		}
	}
	return &in, nil
}

// created is when the tasks and results streams were created: a server
// that lost them (a memory-storage server restarted) has new ones.
func (in *infra) created() [2]time.Time {
	return [2]time.Time{in.tasks.CachedInfo().Created, in.resultS.CachedInfo().Created}
}

func ensureKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		kv, err = js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("multiproc/cluster: bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// consumerConfig is the durable pull consumer of a build's tasks. It never
// sets InactiveThreshold: a work consumer must survive hours without
// hosts (nats-server#7102 deletes consumers with pending messages).
func consumerConfig(build string, ackWait time.Duration, maxDeliver int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       consumerPre + build,
		FilterSubject: taskPrefix + build + ".>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: -1,
		MaxWaiting:    4096,
	}
}
