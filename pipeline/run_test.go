package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/sink"
)

// These tests run the pipeline between a source of prepared batches and the
// in-process Kafka broker, and read what reached the broker with a client
// and an Avro decoder of their own.

const itemSchema = `{"type": "record", "name": "Item", "fields": [
    {"name": "id", "type": "long"},
    {"name": "name", "type": "string"}
  ]}`

var itemTable = &cdc.Table{
	Name:       cdc.TableName{Schema: "public", Name: "item"},
	Columns:    []cdc.Column{{Name: "id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64}, {Name: "name", DatabaseType: "text", Kind: cdc.KindString}},
	PrimaryKey: []int{0},
}

func itemEntity(t *testing.T) *mapping.Entity {
	t.Helper()
	schema, err := avro.Parse(itemSchema)
	if err != nil {
		t.Fatal(err)
	}
	return &mapping.Entity{Name: "item", Table: itemTable.Name, Topic: "shop.item.v1", Schema: schema.(*avro.RecordSchema),
		Key: []string{"id"}, Fields: []mapping.Field{{Name: "id", Column: "id"}, {Name: "name", Column: "name"}}, Origin: "cdc.yaml:1"}
}

// scriptedSource sends its batches in order, then returns fail if set, or
// waits for the end of the run.
type scriptedSource struct {
	batches []cdc.Batch
	fail    error
	// before, if set, is called before batch i is sent.
	before func(i int)

	mu       sync.Mutex
	released []int          // the batches' numbers, in the order they were released
	acked    []cdc.Position // what the pipeline acknowledged
	returned bool           // Run returned
}

// newScriptedSource makes a batch of inserts per position, each batch's
// release noted; rows[i] are the names of batch i's rows, ids counted from 1.
func newScriptedSource(rows [][]cdc.Value) *scriptedSource {
	s := &scriptedSource{}
	id := int64(0)
	for i, names := range rows {
		var changes []cdc.Change
		for _, name := range names {
			id++
			changes = append(changes, cdc.Change{Table: itemTable, Op: cdc.OpInsert, After: []cdc.Value{cdc.Int(id), name},
				Position: position(i), CommitTime: time.Now()})
		}
		batch := cdc.NewBatch(changes, func() {
			s.mu.Lock()
			s.released = append(s.released, i)
			s.mu.Unlock()
		})
		batch.Position = position(i)
		s.batches = append(s.batches, batch)
	}
	return s
}

func position(i int) cdc.Position { return cdc.Position(fmt.Sprintf("%04d", i+1)) }

func names(names ...string) []cdc.Value {
	out := make([]cdc.Value, len(names))
	for i, n := range names {
		out[i] = cdc.String([]byte(n))
	}
	return out
}

func (s *scriptedSource) Run(ctx context.Context, _ cdc.Position, out chan<- cdc.Batch) error {
	defer func() {
		s.mu.Lock()
		s.returned = true
		s.mu.Unlock()
	}()
	for i, b := range s.batches {
		if s.before != nil {
			s.before(i)
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.fail != nil {
		return s.fail
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *scriptedSource) Acknowledge(pos cdc.Position) {
	s.mu.Lock()
	s.acked = append(s.acked, pos)
	s.mu.Unlock()
}

func (s *scriptedSource) Describe(context.Context, []cdc.TableName) ([]*cdc.Table, error) {
	return []*cdc.Table{itemTable}, nil
}
func (s *scriptedSource) Check(context.Context) error { return nil }
func (s *scriptedSource) Close() error                { return nil }

func (s *scriptedSource) state() (released []int, acked []cdc.Position, returned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.released), slices.Clone(s.acked), s.returned
}

// broker is the in-process broker with the entity's topic, and cdc's client of it.
type broker struct {
	cluster *kfake.Cluster
	kafka   *sink.Kafka
	store   *sink.CheckpointStore
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	k, err := sink.Dial(t.Context(), sink.Config{Brokers: cluster.ListenAddrs(), ClientID: "test", Partitions: 3, ReplicationFactor: 1,
		RetryFor: 10 * time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	if err := k.EnsureTopics([]string{"shop.item.v1"}); err != nil {
		t.Fatal(err)
	}
	store, err := k.Checkpoints("test")
	if err != nil {
		t.Fatal(err)
	}
	return &broker{cluster: cluster, kafka: k, store: store}
}

// stored is the checkpoint's position ("" if none).
func (b *broker) stored(t *testing.T) cdc.Position {
	t.Helper()
	cp, _, err := b.store.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return cp.Position
}

// items reads the entity topic (committed records only) until it has want
// records or a few seconds pass, and decodes them: id → name.
func (b *broker) items(t *testing.T, want int) map[int64]string {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(b.cluster.ListenAddrs()...), kgo.ConsumeTopics("shop.item.v1"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	codec, err := goavro.NewCodec(itemSchema)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	count := 0
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	for count < want && ctx.Err() == nil {
		client.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			count++
			native, rest, err := codec.NativeFromBinary(r.Value)
			if err != nil || len(rest) > 0 {
				t.Fatalf("record %x does not decode: %v", r.Value, err)
			}
			v := native.(map[string]any)
			out[v["id"].(int64)] = v["name"].(string)
		})
	}
	if count != want {
		t.Fatalf("the topic holds %d records (read for 3 s), want %d", count, want)
	}
	return out
}

// start starts Run, and returns a func that stops it and returns its error.
func start(t *testing.T, cfg Config) (stop func() error, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error, 1)
	go func() { errs <- Run(ctx, cfg, "") }()
	t.Cleanup(cancel)
	return func() error {
		cancel()
		select {
		case err := <-errs:
			return err
		case <-time.After(time.Minute):
			t.Fatal("Run did not return a minute after its context ended")
			return nil
		}
	}, errs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("30 s and still not: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunSendsEveryChangeThenStoresItsPosition(t *testing.T) {
	b := startBroker(t)
	src := newScriptedSource([][]cdc.Value{names("ant", "bee"), names("cat"), names("dog", "eel")})
	producer, err := b.kafka.NewProducer(sink.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := start(t, Config{Source: src, Entities: []*mapping.Entity{itemEntity(t)}, Producer: producer, Checkpoints: b.store,
		Connector: "test", CheckpointInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	waitFor(t, "the last position stored", func() bool { return b.stored(t) == position(2) })
	if err := stop(); err != nil {
		t.Fatalf("a clean stop returned %v", err)
	}
	got := b.items(t, 5)
	want := map[int64]string{1: "ant", 2: "bee", 3: "cat", 4: "dog", 5: "eel"}
	if !maps.Equal(got, want) {
		t.Errorf("the topic holds %v, want %v", got, want)
	}
	released, acked, returned := src.state()
	if !slices.Equal(released, []int{0, 1, 2}) {
		t.Errorf("batches released in the order %v, want 0 1 2", released)
	}
	if len(acked) == 0 || acked[len(acked)-1] != position(2) || !returned {
		t.Errorf("the source was told %v (returned: %v), want the last position", acked, returned)
	}
}

func TestRunExactlyOnceCommitsTheCheckpointWithTheRecords(t *testing.T) {
	b := startBroker(t)
	src := newScriptedSource([][]cdc.Value{names("ant", "bee"), names("cat")})
	producer, err := b.kafka.NewProducer(sink.ProducerOptions{TransactionalID: "cdc-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	stop, _ := start(t, Config{Source: src, Entities: []*mapping.Entity{itemEntity(t)}, Producer: producer,
		Transactions: sink.Transactions{Producer: producer, Store: b.store}, Connector: "test",
		CheckpointInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	waitFor(t, "the last position committed", func() bool { return b.stored(t) == position(1) })
	// The checkpoint is committed: so are the records before it.
	if got := b.items(t, 3); !maps.Equal(got, map[int64]string{1: "ant", 2: "bee", 3: "cat"}) {
		t.Errorf("read committed: %v", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("a clean stop returned %v", err)
	}
	if released, acked, _ := src.state(); !slices.Equal(released, []int{0, 1}) || acked[len(acked)-1] != position(1) {
		t.Errorf("released %v, acknowledged %v", released, acked)
	}
}

// A value the schema cannot hold stops the run: what was acknowledged before
// it is stored, nothing of its batch or after is sent, and the batches the
// source had sent are drained and released so that it can return.
func TestRunDrainsTheSourceAfterAFailure(t *testing.T) {
	b := startBroker(t)
	src := newScriptedSource([][]cdc.Value{names("ant"), {cdc.Invalid([]byte("\xff"))}, names("cat"), names("dog")})
	producer, err := b.kafka.NewProducer(sink.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, done := start(t, Config{Source: src, Entities: []*mapping.Entity{itemEntity(t)}, Producer: producer, Checkpoints: b.store,
		Connector: "test", CheckpointInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	var err2 error
	select {
	case err2 = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not stop on the failure")
	}
	if err2 == nil || !strings.Contains(err2.Error(), `field "name"`) {
		t.Fatalf("Run returned %v, want the value error", err2)
	}
	if got := b.stored(t); got != position(0) {
		t.Errorf("stored %q, want the position before the failure, %q", got, position(0))
	}
	if got := b.items(t, 1); !maps.Equal(got, map[int64]string{1: "ant"}) {
		t.Errorf("the topic holds %v", got)
	}
	released, _, returned := src.state()
	slices.Sort(released)
	if !slices.Equal(released, []int{0, 1, 2, 3}) || !returned {
		t.Errorf("released %v (source returned: %v), want every batch and the source returned", released, returned)
	}
}

// A stop waits ShutdownTimeout for the brokers; then it returns without
// storing what they did not acknowledge.
func TestRunStopsAtTheShutdownDeadline(t *testing.T) {
	b := startBroker(t)
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	b.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		b.cluster.KeepControl()
		select {
		case held <- struct{}{}:
		default:
		}
		b.cluster.SleepControl(func() { <-release })
		return nil, nil, false
	})
	src := newScriptedSource([][]cdc.Value{names("ant")})
	producer, err := b.kafka.NewProducer(sink.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := start(t, Config{Source: src, Entities: []*mapping.Entity{itemEntity(t)}, Producer: producer, Checkpoints: b.store,
		Connector: "test", CheckpointInterval: 50 * time.Millisecond, ShutdownTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("no produce request reached the broker")
	}
	if err := stop(); err != nil {
		t.Fatalf("a stop at the deadline returned %v", err)
	}
	// The batch was mapped (its records hold copies: the source may reuse
	// its memory), but its position is not acknowledged.
	released, acked, returned := src.state()
	if !slices.Equal(released, []int{0}) || len(acked) > 0 || !returned {
		t.Errorf("released %v, acknowledged to the source %v (returned: %v), want the batch released and nothing acknowledged", released, acked, returned)
	}
	if got := b.stored(t); got != "" {
		t.Errorf("stored %q with its records unacknowledged", got)
	}
}
