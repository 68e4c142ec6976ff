// Package sink writes entity records to Kafka: it checks and creates the compacted
// topics, frames Avro records in the wire format consumers expect (Confluent's when
// a schema registry is configured, Avro single-object encoding otherwise), produces
// them idempotently with every replica's acknowledgement, and stores the pipeline's
// checkpoint in a compacted topic of its own.
//
// It talks to the brokers with one client library, franz-go (kgo, kadm, and sr for
// the registry): one place for TLS, SASL and retries.
//
// It must never acknowledge a record the brokers have not acknowledged, and never
// decide what a record means: the mapping does that.
package sink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/cdc-dev/cdc"
)

// Defaults for Config fields left zero.
const (
	DefaultCheckpointTopic = "_cdc_checkpoints"
	// DefaultPartitions and DefaultReplicationFactor of -1 ask the brokers for
	// their own defaults (num.partitions, default.replication.factor).
	DefaultPartitions        = -1
	DefaultReplicationFactor = -1
	// DefaultRetryFor bounds how long a record is retried while brokers are
	// unreachable or leaderless before the producer gives up and the daemon stops.
	DefaultRetryFor = 2 * time.Minute
	// DefaultCompression saves the brokers' disks and network at no cost in
	// speed: make bench's MariaDB snapshot ran at 618-625K rows/s with it,
	// 625-681K with none, 576-658K with lz4 and 508-517K with zstd (two
	// interleaved runs each; the broker spends less CPU on fewer bytes).
	DefaultCompression = "snappy"
	// dialTimeout bounds the first answer of the brokers when cdc connects.
	dialTimeout = 30 * time.Second
)

// compressionCodecs are the values of Config.Compression: Kafka's codecs.
var compressionCodecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

// CompressionCodecs lists the names Config.Compression accepts.
func CompressionCodecs() []string { return slices.Sorted(maps.Keys(compressionCodecs)) }

// Config says which cluster to write to, how to reach it, and how to create topics.
type Config struct {
	Brokers  []string
	ClientID string
	// TLS, if set, encrypts the connections to the brokers; SASL, if set,
	// authenticates them.
	TLS  *tls.Config
	SASL sasl.Mechanism
	// Partitions and ReplicationFactor apply to topics cdc creates.
	Partitions        int32
	ReplicationFactor int16
	// Registry is the schema registry; without a URL, single-object encoding.
	Registry        Registry
	CheckpointTopic string
	RetryFor        time.Duration
	// Compression is the codec of the entity records' batches, one of
	// CompressionCodecs (DefaultCompression if empty).
	Compression string
}

func (c *Config) setDefaults() {
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	if c.CheckpointTopic == "" {
		c.CheckpointTopic = DefaultCheckpointTopic
	}
	if c.RetryFor == 0 {
		c.RetryFor = DefaultRetryFor
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
}

// Kafka is a connection to one cluster: its client serves metadata, topic
// administration and the checkpoint's records; producers and readers are
// clients of their own with the same security.
type Kafka struct {
	cfg    Config
	client *kgo.Client
	admin  *kadm.Client
	log    *slog.Logger
}

// Dial connects to the cluster and waits, up to dialTimeout, for a broker to
// answer. Its error says what failed: no broker reachable, the TLS handshake,
// the authentication (see explain).
func Dial(ctx context.Context, cfg Config, log *slog.Logger) (*Kafka, error) {
	cfg.setDefaults()
	if _, ok := compressionCodecs[cfg.Compression]; !ok {
		return nil, fmt.Errorf("kafka compression %q: want one of %s", cfg.Compression, strings.Join(CompressionCodecs(), ", "))
	}
	k := &Kafka{cfg: cfg, log: log}
	_, backoff := retryPolicy(cfg.RetryFor)
	client, err := kgo.NewClient(k.clientOptions(
		// The checkpoint's records: idempotent, every in-sync replica's
		// acknowledgement, retried for the retry time.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(cfg.RetryFor),
		kgo.RetryBackoffFn(func(tries int) time.Duration { return backoff(tries, 0) }),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	k.client, k.admin = client, kadm.NewClient(client)
	if err := k.ping(ctx); err != nil {
		client.Close()
		// Transient: once the connector has run, brokers that went away are
		// waited for (at start-up the daemon stops: the list may be wrong).
		return nil, cdc.Transient(fmt.Errorf("connect to Kafka brokers %s: %w", strings.Join(cfg.Brokers, ","), k.explain(err)))
	}
	return k, nil
}

// dialRetries is how long a broker that refuses or drops the first
// connections (restarting, its listener not up yet) is tried again before
// Dial gives up; a broker that accepts and says nothing is waited for up to
// dialTimeout.
const dialRetries = 10 * time.Second

// ping waits until a broker answers. A failure of the network path (refused,
// reset, closed at once: a broker restarting) is tried again for
// dialRetries; an answer (a certificate or an authentication refused) is
// returned at once.
func (k *Kafka) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	started := time.Now()
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := k.client.Ping(ctx)
		if err == nil || isAnswer(err) || ctx.Err() != nil || time.Since(started) > dialRetries {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// clientOptions are the options of every franz-go client of the cluster,
// followed by opts.
func (k *Kafka) clientOptions(opts ...kgo.Opt) []kgo.Opt {
	base := []kgo.Opt{kgo.SeedBrokers(k.cfg.Brokers...), kgo.ClientID(k.cfg.ClientID),
		// KIP-714 metrics pushed to the brokers: cdc's own are on /metrics, and
		// the push's compressor took 8 MB of heap per client from brokers that
		// accept lz4.
		kgo.DisableClientMetrics(),
	}
	if k.cfg.TLS != nil {
		base = append(base, kgo.DialTLSConfig(k.cfg.TLS.Clone()))
	}
	if k.cfg.SASL != nil {
		base = append(base, kgo.SASL(k.cfg.SASL))
	}
	return append(base, opts...)
}

// retryPolicy spreads retries over about the given duration with capped
// exponential backoff and jitter, so brokers restarting together are not hit in
// lockstep.
func retryPolicy(total time.Duration) (int, func(retries, maxRetries int) time.Duration) {
	const first, ceiling = 100 * time.Millisecond, 5 * time.Second
	backoff := func(retries, _ int) time.Duration {
		d := first << min(retries, 6)
		d = min(d, ceiling)
		return d/2 + rand.N(d/2+1)
	}
	n, sum := 0, time.Duration(0)
	for sum < total {
		sum += min(first<<min(n, 6), ceiling) * 3 / 4
		n++
	}
	return n, backoff
}

// Close closes the connection; close producers first.
func (k *Kafka) Close() error {
	k.client.Close()
	return nil
}

// adminContext bounds an administrative request: the client retries, and a
// cluster that keeps failing is reported instead of waited on.
func (k *Kafka) adminContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), k.cfg.RetryFor)
}

// EnsureTopics creates the missing topics as compacted topics and checks that the
// existing ones are compacted. Every problem is reported, not only the first.
func (k *Kafka) EnsureTopics(topics []string) error {
	return k.checkTopics(topics, true)
}

// CheckTopics checks that the existing topics are compacted and returns the ones
// that are missing (cdc run would create them).
func (k *Kafka) CheckTopics(topics []string) (missing []string, err error) {
	if missing, err = k.MissingTopics(topics); err != nil {
		return nil, err
	}
	present := slices.DeleteFunc(slices.Clone(topics), func(t string) bool { return slices.Contains(missing, t) })
	return missing, k.checkTopics(present, false)
}

// MissingTopics returns the topics that do not exist.
func (k *Kafka) MissingTopics(topics []string) (missing []string, err error) {
	ctx, cancel := k.adminContext()
	defer cancel()
	details, err := k.admin.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", k.explain(err))
	}
	for _, t := range topics {
		if d, ok := details[t]; !ok || d.Err != nil {
			missing = append(missing, t)
		}
	}
	return missing, nil
}

// EnsureEventTopic creates a topic of events if it is missing: the
// dead-letter topic, the transaction topic, an outbox route's topic. Events
// are kept by time (cleanup.policy=delete, the brokers' retention), not
// compacted: every event stays visible, not only the last per key. An
// existing topic may have any policy.
func (k *Kafka) EnsureEventTopic(topic string) error {
	return k.ensureTopic(topic, k.cfg.Partitions, true, "delete")
}

// EnsureTransactionTopic creates the transaction topic if it is missing, as
// an event topic of one partition: its records stay in commit order.
func (k *Kafka) EnsureTransactionTopic(topic string) error {
	return k.ensureTopic(topic, 1, true, "delete")
}

func (k *Kafka) checkTopics(topics []string, create bool) error {
	var errs []error
	for _, topic := range topics {
		if err := k.ensureTopic(topic, k.cfg.Partitions, create, "compact"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ensureTopic creates a missing topic with the cleanup policy; an existing topic
// must be compacted when the policy is compact, and may be anything otherwise.
func (k *Kafka) ensureTopic(topic string, partitions int32, create bool, policy string) error {
	ctx, cancel := k.adminContext()
	defer cancel()
	details, err := k.admin.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, k.explain(err))
	}
	d, ok := details[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		if !create {
			return fmt.Errorf("topic %s does not exist", topic)
		}
		resp, err := k.admin.CreateTopic(ctx, partitions, k.cfg.ReplicationFactor, map[string]*string{"cleanup.policy": &policy}, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, k.explain(err))
		}
		if err == nil {
			k.log.Info("created topic", "topic", topic, "cleanup.policy", policy, "partitions", partitions, "replication_factor", k.cfg.ReplicationFactor)
		}
		return nil
	}
	if d.Err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, k.explain(d.Err))
	}
	if policy != "compact" {
		return nil
	}
	value, err := k.topicConfig(ctx, topic, "cleanup.policy")
	if err != nil {
		return err
	}
	if value != "compact" {
		return fmt.Errorf("topic %s exists with cleanup.policy=%s: entity topics must be compacted (cleanup.policy=compact only), or consumers lose entities to retention; fix it with: kafka-configs --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact",
			topic, value, topic)
	}
	return nil
}

// topicConfig reads one config of a topic, as it applies (the broker's
// default where the topic sets none).
func (k *Kafka) topicConfig(ctx context.Context, topic, name string) (string, error) {
	configs, err := k.admin.DescribeTopicConfigs(ctx, topic)
	if err == nil && len(configs) == 1 {
		err = configs[0].Err
	}
	if err != nil {
		return "", fmt.Errorf("describe the config of topic %s: %w", topic, k.explain(err))
	}
	for _, c := range configs[0].Configs {
		if c.Key == name {
			return c.MaybeValue(), nil
		}
	}
	return "", nil
}

// TopicRecords counts the records a topic holds now (newest minus oldest offset,
// summed over its partitions): an upper bound, since compaction leaves gaps.
func (k *Kafka) TopicRecords(topic string) (int64, error) {
	ctx, cancel := k.adminContext()
	defer cancel()
	starts, err := k.admin.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("topic %s: %w", topic, k.explain(err))
	}
	ends, err := k.admin.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("topic %s: %w", topic, k.explain(err))
	}
	var n int64
	ends.Each(func(end kadm.ListedOffset) {
		if start, ok := starts.Lookup(topic, end.Partition); ok {
			n += end.Offset - start.Offset
		}
	})
	return n, nil
}
