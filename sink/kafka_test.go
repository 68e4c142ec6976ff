package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdc-dev/cdc"
)

func startBroker(t *testing.T) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	client, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return cluster, client
}

func dial(t *testing.T, cluster *kfake.Cluster) *Kafka {
	t.Helper()
	return dialConfig(t, Config{Brokers: cluster.ListenAddrs(), ClientID: "test", Partitions: 3, ReplicationFactor: 1}, slog.New(slog.DiscardHandler))
}

// produce creates the records' topic and sends them, all acknowledged.
func produce(t *testing.T, k *Kafka, records []Record) {
	t.Helper()
	if err := k.EnsureTopics([]string{records[0].Topic}); err != nil {
		t.Fatal(err)
	}
	p, err := k.NewProducer(ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(context.Background(), records, func(err error) {
		if err != nil {
			t.Error(err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	p.Close()
}

func dialConfig(t *testing.T, cfg Config, log *slog.Logger) *Kafka {
	t.Helper()
	k, err := Dial(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func TestEnsureTopicsCreatesCompactedTopics(t *testing.T) {
	cluster, client := startBroker(t)
	k := dial(t, cluster)
	if err := k.EnsureTopics([]string{"shop.customer.v1"}); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(client)
	configs, err := adm.DescribeTopicConfigs(context.Background(), "shop.customer.v1")
	if err != nil {
		t.Fatal(err)
	}
	var policy string
	for _, c := range configs[0].Configs {
		if c.Key == "cleanup.policy" {
			policy = c.MaybeValue()
		}
	}
	if configs[0].Err != nil || policy != "compact" {
		t.Fatalf("cleanup.policy = %q (%v), want compact", policy, configs[0].Err)
	}
	details, _ := adm.ListTopics(context.Background(), "shop.customer.v1")
	if n := len(details["shop.customer.v1"].Partitions); n != 3 {
		t.Fatalf("%d partitions, want 3", n)
	}
	// A second start finds the topic and accepts it.
	if err := k.EnsureTopics([]string{"shop.customer.v1"}); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureTopicsRefusesATopicThatIsNotCompacted(t *testing.T) {
	cluster, client := startBroker(t)
	deletePolicy := "delete"
	if _, err := kadm.NewClient(client).CreateTopic(context.Background(), 1, 1, map[string]*string{"cleanup.policy": &deletePolicy}, "shop.orders.v1"); err != nil {
		t.Fatal(err)
	}
	err := dial(t, cluster).EnsureTopics([]string{"shop.orders.v1"})
	if err == nil || !strings.Contains(err.Error(), "topic shop.orders.v1 exists with cleanup.policy=delete: entity topics must be compacted") {
		t.Fatalf("got %v", err)
	}
}

func TestProducedRecordsArriveInTheJavaPartitionWithNullTombstones(t *testing.T) {
	cluster, client := startBroker(t)
	k := dial(t, cluster)
	if err := k.EnsureTopics([]string{"t"}); err != nil {
		t.Fatal(err)
	}
	p, err := k.NewProducer(ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keys := []string{"a", "b", "c", "d", "e", "f"}
	var records []Record
	for _, key := range keys {
		records = append(records, Record{Topic: "t", Key: []byte(key), Value: []byte("v" + key), Headers: []Header{{Key: "h", Value: []byte("1")}}})
	}
	records[len(records)-1].Value = nil
	var mu sync.Mutex
	acked := 0
	if err := p.Send(ctx, records, func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Error(err)
		}
		acked++
	}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if acked != len(keys) {
		t.Fatalf("%d acks after Close, want %d", acked, len(keys))
	}
	if records[0].Value != nil || records[0].Headers != nil {
		t.Fatalf("an acknowledged record still refers to its value and headers: %q %v", records[0].Value, records[0].Headers)
	}
	client.AddConsumeTopics("t")
	got := 0
	for got < len(keys) {
		fetches := client.PollFetches(ctx)
		fetches.EachRecord(func(r *kgo.Record) {
			got++
			if want := partitionFor(r.Key, 3); r.Partition != want {
				t.Errorf("key %s in partition %d, want %d", r.Key, r.Partition, want)
			}
			if string(r.Key) == "f" && r.Value != nil {
				t.Errorf("tombstone has value %q", r.Value)
			}
			if string(r.Key) == "a" && (string(r.Value) != "va" || len(r.Headers) != 1) {
				t.Errorf("record a = %q %v", r.Value, r.Headers)
			}
		})
	}
}

func TestCheckpointRoundTripKeepsTheLastSaved(t *testing.T) {
	cluster, _ := startBroker(t)
	k := dial(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := k.Checkpoints("shop")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, ok, err := store.Load(ctx); ok || err != nil {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	other, _ := k.Checkpoints("other")
	defer other.Close()
	for _, pos := range []cdc.Position{"1", "2", "3"} {
		if err := store.Save(cdc.Checkpoint{Position: pos, Entities: []string{"customer"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Save(cdc.Checkpoint{Position: "9"}); err != nil {
		t.Fatal(err)
	}
	cp, ok, err := store.Load(ctx)
	if err != nil || !ok || cp.Position != "3" || len(cp.Entities) != 1 || cp.Entities[0] != "customer" {
		t.Fatalf("loaded %+v ok=%v err=%v, want position 3", cp, ok, err)
	}
}

func TestUnreadableCheckpointIsReportedWithTheFix(t *testing.T) {
	cluster, client := startBroker(t)
	k := dial(t, cluster)
	store, err := k.Checkpoints("shop")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.ProduceSync(ctx, &kgo.Record{Topic: DefaultCheckpointTopic, Key: []byte("shop"), Value: []byte("not json")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, _, err = store.Load(ctx)
	if err == nil || !strings.Contains(err.Error(), "checkpoint of shop in topic _cdc_checkpoints is unreadable") ||
		!strings.Contains(err.Error(), "delete it with a tombstone") {
		t.Fatalf("got %v", err)
	}
}

// The buffer is bounded in records and in bytes: either way, Send waits for
// room, gives up when its context ends, and goes on once the brokers
// acknowledge; a batch larger than the bound goes alone into an empty buffer.
func TestSendWaitsForRoomAndGivesUpWhenItsContextEnds(t *testing.T) {
	for _, c := range []struct {
		name  string
		bound ProducerOptions
	}{
		{"records", ProducerOptions{MaxBuffered: 4}},
		{"bytes", ProducerOptions{MaxBufferedBytes: 400}}, // four records of 100 bytes
	} {
		t.Run(c.name, func(t *testing.T) {
			cluster, _ := startBroker(t)
			k := dial(t, cluster)
			if err := k.EnsureTopics([]string{"t"}); err != nil {
				t.Fatal(err)
			}
			// The broker holds every produce request until released.
			release := make(chan struct{})
			cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
				cluster.KeepControl()
				cluster.SleepControl(func() { <-release })
				return nil, nil, false
			})
			p, err := k.NewProducer(c.bound)
			if err != nil {
				t.Fatal(err)
			}
			var acked, failed atomic.Int32
			count := func(err error) {
				if err != nil {
					failed.Add(1)
				}
				acked.Add(1)
			}
			batch := func(n int) []Record {
				var out []Record
				for i := range n {
					out = append(out, Record{Topic: "t", Key: []byte{byte('a' + i)}, Value: []byte(strings.Repeat("v", 99))})
				}
				return out
			}
			if err := p.Send(context.Background(), batch(3), count); err != nil {
				t.Fatal(err)
			}
			// Two more do not fit beside three unacknowledged: Send waits, and
			// gives up without queuing them when its context ends.
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if err := p.Send(ctx, batch(2), count); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Send into a full buffer returned %v, want the context's error", err)
			}
			close(release)
			// Once the first three are acknowledged, they fit.
			ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := p.Send(ctx, batch(2), count); err != nil {
				t.Fatal(err)
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := p.Send(ctx, batch(10), count); err != nil {
				t.Fatalf("a batch above the bound, into an empty buffer: %v", err)
			}
			p.Close()
			if acked.Load() != 15 || failed.Load() != 0 {
				t.Fatalf("%d acknowledgements (%d failed), want 15 successes", acked.Load(), failed.Load())
			}
		})
	}
}

// An aborted transaction's records are never read committed, and the producer
// goes on with the transactional id it holds: a producer that lost the id to a
// newer one learns it, and the newer one is not fenced in turn.
func TestAbortedTransactionKeepsTheTransactionalID(t *testing.T) {
	cluster, _ := startBroker(t)
	k := dial(t, cluster)
	if err := k.EnsureTopics([]string{"t"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	send := func(p *Producer, key string) error {
		acked := make(chan error, 1)
		if err := p.Send(ctx, []Record{{Topic: "t", Key: []byte(key), Value: []byte(key)}}, func(err error) { acked <- err }); err != nil {
			return err
		}
		if err := p.Flush(ctx); err != nil {
			return err
		}
		return <-acked
	}
	older, err := k.NewProducer(ProducerOptions{TransactionalID: "cdc-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer older.Close()
	if err := send(older, "aborted"); err != nil {
		t.Fatal(err)
	}
	if err := older.AbortTransaction(); err != nil {
		t.Fatalf("abort: %v", err)
	}
	if err := send(older, "committed-by-the-older"); err != nil {
		t.Fatal(err)
	}
	if err := older.Commit(ctx, Record{}); err != nil {
		t.Fatalf("commit after the abort: %v", err)
	}

	newer, err := k.NewProducer(ProducerOptions{TransactionalID: "cdc-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer newer.Close()
	var fenced *FencedError
	if err := send(older, "from-the-fenced"); !errors.As(err, &fenced) {
		t.Fatalf("the older producer's record after the takeover: %v, want a *FencedError", err)
	}
	if err := older.AbortTransaction(); err != nil && !errors.As(err, &fenced) {
		t.Fatalf("the older producer's abort after the takeover: %v, want nil or a *FencedError", err)
	}
	if err := send(newer, "committed-by-the-newer"); err != nil {
		t.Fatalf("the newer producer was fenced in turn: %v", err)
	}
	if err := newer.Commit(ctx, Record{}); err != nil {
		t.Fatalf("the newer producer was fenced in turn: %v", err)
	}

	var keys []string
	if err := k.ReadTopic(ctx, "t", false, func(m Message) error {
		keys = append(keys, string(m.Key))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if want := []string{"committed-by-the-newer", "committed-by-the-older"}; !slices.Equal(keys, want) {
		t.Fatalf("read committed: %q, want %q", keys, want)
	}
}

// A read that gets no record for a while although the topic holds more says
// so, once, and goes on waiting: it ends with every record once they come.
func TestReadTopicSaysWhenRecordsStopComing(t *testing.T) {
	cluster, _ := startBroker(t)
	var logs strings.Builder
	k := dialConfig(t, Config{Brokers: cluster.ListenAddrs(), ClientID: "test", Partitions: 3, ReplicationFactor: 1},
		slog.New(slog.NewTextHandler(&logs, nil)))
	records := []Record{{Topic: "t", Key: []byte("a"), Value: []byte("1")}, {Topic: "t", Key: []byte("b"), Value: []byte("2")}}
	produce(t, k, records)

	defer func(d time.Duration) { readStallWarning = d }(readStallWarning)
	readStallWarning = 100 * time.Millisecond
	stallUntil := time.Now().Add(time.Second)
	cluster.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		time.Sleep(time.Until(stallUntil))
		return nil, nil, false
	})
	read := 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.ReadTopic(ctx, "t", false, func(Message) error { read++; return nil }); err != nil {
		t.Fatal(err)
	}
	if read != len(records) {
		t.Errorf("read %d records, want %d", read, len(records))
	}
	if got := strings.Count(logs.String(), "no record comes from the brokers although the topic holds more"); got != 1 {
		t.Errorf("the stall was told %d times, want once:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "records come again") {
		t.Errorf("the end of the stall was not told:\n%s", logs.String())
	}
}

// Each codec of kafka.compression reaches the broker as that codec's batches,
// which consumers decode to the records sent.
func TestRecordsArriveCompressedWithTheConfiguredCodec(t *testing.T) {
	codecTypes := map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	for _, codec := range CompressionCodecs() {
		t.Run(codec, func(t *testing.T) {
			cluster, client := startBroker(t)
			k := dialConfig(t, Config{Brokers: cluster.ListenAddrs(), ClientID: "test", Partitions: 1, ReplicationFactor: 1, Compression: codec},
				slog.New(slog.DiscardHandler))
			value := []byte(strings.Repeat("a compressible value ", 20))
			var records []Record
			for i := range 100 {
				records = append(records, Record{Topic: "t", Key: fmt.Appendf(nil, "k%d", i), Value: value, Headers: []Header{{Key: "ce_id", Value: []byte("1")}}})
			}
			produce(t, k, records)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			client.AddConsumeTopics("t")
			for got := 0; got < len(records); {
				fetches := client.PollFetches(ctx)
				if err := fetches.Err(); err != nil {
					t.Fatal(err)
				}
				fetches.EachRecord(func(r *kgo.Record) {
					if want := fmt.Sprintf("k%d", got); string(r.Key) != want || !slices.Equal(r.Value, value) || len(r.Headers) != 1 {
						t.Fatalf("record %d: key %q, value %q, headers %v; want key %q and the value sent", got, r.Key, r.Value, r.Headers, want)
					}
					if c := r.Attrs.CompressionType(); c != codecTypes[codec] {
						t.Fatalf("record %d came in a batch of codec %d, want %d (%s)", got, c, codecTypes[codec], codec)
					}
					got++
				})
			}
		})
	}
}

func TestUnknownCompressionIsRefused(t *testing.T) {
	cluster, _ := startBroker(t)
	_, err := Dial(context.Background(), Config{Brokers: cluster.ListenAddrs(), Compression: "brotli"}, slog.New(slog.DiscardHandler))
	if err == nil || err.Error() != `kafka compression "brotli": want one of gzip, lz4, none, snappy, zstd` {
		t.Fatalf("got %v", err)
	}
}
