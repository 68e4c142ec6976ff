package sink

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

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
	k, err := Dial(Config{Brokers: cluster.ListenAddrs(), ClientID: "test", Partitions: 3, ReplicationFactor: 1},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	p, err := k.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keys := []string{"a", "b", "c", "d", "e", "f"}
	for i, key := range keys {
		r := Record{Topic: "t", Key: []byte(key), Value: []byte("v" + key), Token: i, Headers: []Header{{Key: "h", Value: []byte("1")}}}
		if i == len(keys)-1 {
			r.Value = nil
		}
		if err := p.Send(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[any]bool{}
	for range keys {
		ack := <-p.Acks()
		if ack.Err != nil {
			t.Fatal(ack.Err)
		}
		seen[ack.Token] = true
	}
	p.Close()
	for range p.Acks() {
		t.Fatal("no ack expected after Close")
	}
	if len(seen) != len(keys) {
		t.Fatalf("acks for %v", seen)
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
