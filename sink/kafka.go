// Package sink writes entity records to Kafka: it checks and creates the compacted
// topics, frames Avro records in the wire format consumers expect (Confluent's when
// a schema registry is configured, Avro single-object encoding otherwise), produces
// them idempotently with every replica's acknowledgement, and stores the pipeline's
// checkpoint in a compacted topic of its own.
//
// It must never acknowledge a record the brokers have not acknowledged, and never
// decide what a record means: the mapping does that.
package sink

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdc-dev/cdc"
)

// Defaults for Config fields left zero.
const (
	DefaultCheckpointTopic = "_cdc_checkpoints"
	DefaultVersion         = "2.8.0"
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

// Config says which cluster to write to and how to create topics.
type Config struct {
	Brokers  []string
	ClientID string
	// Version is the oldest Kafka version the brokers run (sarama's protocol choice).
	Version string
	// Partitions and ReplicationFactor apply to topics cdc creates.
	Partitions        int32
	ReplicationFactor int16
	// SchemaRegistry is the registry's base URL; empty selects single-object encoding.
	SchemaRegistry  string
	CheckpointTopic string
	RetryFor        time.Duration
	// Compression is the codec of the entity records' batches, one of
	// CompressionCodecs (DefaultCompression if empty).
	Compression string
}

func (c *Config) setDefaults() {
	if c.Version == "" {
		c.Version = DefaultVersion
	}
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

// Kafka is a connection to one cluster, shared by the producer, the topic checks
// and the checkpoint store.
type Kafka struct {
	cfg    Config
	client sarama.Client
	log    *slog.Logger
}

// Dial connects to the cluster and reads its metadata.
func Dial(cfg Config, log *slog.Logger) (*Kafka, error) {
	cfg.setDefaults()
	if _, ok := compressionCodecs[cfg.Compression]; !ok {
		return nil, fmt.Errorf("kafka compression %q: want one of %s", cfg.Compression, strings.Join(CompressionCodecs(), ", "))
	}
	sc, err := saramaConfig(cfg)
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		// Transient: once the connector has run, brokers that went away are
		// waited for (at start-up the daemon stops: the list may be wrong).
		return nil, cdc.Transient(fmt.Errorf("connect to Kafka brokers %s: %w; check kafka.brokers and that the brokers are up", strings.Join(cfg.Brokers, ","), err))
	}
	return &Kafka{cfg: cfg, client: client, log: log}, nil
}

func saramaConfig(cfg Config) (*sarama.Config, error) {
	version, err := sarama.ParseKafkaVersion(cfg.Version)
	if err != nil {
		return nil, fmt.Errorf("kafka version %q: %w", cfg.Version, err)
	}
	sc := sarama.NewConfig()
	sc.Version = version
	sc.ClientID = cfg.ClientID
	sc.Metadata.AllowAutoTopicCreation = false
	// The checkpoint store's producer (entity records go through franz-go, see
	// Producer). Idempotence with acks=all and one request in flight per broker:
	// retries can neither duplicate nor reorder records within a partition.
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = newJavaPartitioner
	sc.Producer.Retry.Max, sc.Producer.Retry.BackoffFunc = retryPolicy(cfg.RetryFor)
	// Metadata is retried briefly: at start-up an unreachable cluster is reported
	// within seconds; later, each produce retry refreshes metadata again.
	sc.Metadata.Retry.Max, sc.Metadata.Retry.Backoff = 3, 500*time.Millisecond
	return sc, nil
}

// clientOptions are the options of every franz-go client of the cluster,
// followed by opts.
func (k *Kafka) clientOptions(opts ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(k.cfg.Brokers...), kgo.ClientID(k.cfg.ClientID),
		// KIP-714 metrics pushed to the brokers: cdc's own are on /metrics, and
		// the push's compressor took 8 MB of heap per client from brokers that
		// accept lz4.
		kgo.DisableClientMetrics(),
	}, opts...)
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
func (k *Kafka) Close() error { return k.client.Close() }

// EnsureTopics creates the missing topics as compacted topics and checks that the
// existing ones are compacted. Every problem is reported, not only the first.
func (k *Kafka) EnsureTopics(topics []string) error {
	return k.checkTopics(topics, true)
}

// CheckTopics checks that the existing topics are compacted and returns the ones
// that are missing (cdc run would create them).
func (k *Kafka) CheckTopics(topics []string) (missing []string, err error) {
	existing, err := k.client.Topics()
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var present []string
	for _, t := range topics {
		if slices.Contains(existing, t) {
			present = append(present, t)
		} else {
			missing = append(missing, t)
		}
	}
	return missing, k.checkTopics(present, false)
}

// EnsureDeadLetterTopic creates the dead-letter topic if it is missing. Dead
// letters are kept by time (cleanup.policy=delete, the brokers' retention), not
// compacted: every failed change stays visible, not only the last per key.
func (k *Kafka) EnsureDeadLetterTopic(topic string) error {
	admin, err := sarama.NewClusterAdminFromClient(k.client)
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	return k.ensureTopic(admin, topic, k.cfg.Partitions, true, "delete")
}

func (k *Kafka) checkTopics(topics []string, create bool) error {
	admin, err := sarama.NewClusterAdminFromClient(k.client)
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	// Closing an admin made from a client would close the client.
	var errs []error
	for _, topic := range topics {
		if err := k.ensureTopic(admin, topic, k.cfg.Partitions, create, "compact"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ensureTopic creates a missing topic with the cleanup policy; an existing topic
// must be compacted when the policy is compact, and may be anything otherwise.
func (k *Kafka) ensureTopic(admin sarama.ClusterAdmin, topic string, partitions int32, create bool, policy string) error {
	metas, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, err)
	}
	if len(metas) == 1 && errors.Is(metas[0].Err, sarama.ErrUnknownTopicOrPartition) {
		if !create {
			return fmt.Errorf("topic %s does not exist", topic)
		}
		err := admin.CreateTopic(topic, &sarama.TopicDetail{
			NumPartitions: partitions, ReplicationFactor: k.cfg.ReplicationFactor,
			ConfigEntries: map[string]*string{"cleanup.policy": &policy},
		}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
		if err == nil {
			k.log.Info("created topic", "topic", topic, "cleanup.policy", policy, "partitions", partitions, "replication_factor", k.cfg.ReplicationFactor)
		}
		return k.client.RefreshMetadata(topic)
	}
	if len(metas) == 1 && metas[0].Err != sarama.ErrNoError {
		return fmt.Errorf("describe topic %s: %w", topic, metas[0].Err)
	}
	if policy != "compact" {
		return nil
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"cleanup.policy"}})
	if err != nil {
		return fmt.Errorf("describe config of topic %s: %w", topic, err)
	}
	for _, e := range entries {
		if e.Name == "cleanup.policy" && e.Value != "compact" {
			return fmt.Errorf("topic %s exists with cleanup.policy=%s: entity topics must be compacted (cleanup.policy=compact only), or consumers lose entities to retention; fix it with: kafka-configs --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact",
				topic, e.Value, topic)
		}
	}
	return nil
}
