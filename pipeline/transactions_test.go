package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/sink"
)

// transactionBatches is a source of three transactions: t1 of two rows in
// one batch, t2 of three rows over two batches, t3 of one row with a row of
// another table that no entity maps (no record).
func transactionBatches() *scriptedSource {
	s := &scriptedSource{}
	other := &cdc.Table{Name: cdc.TableName{Schema: "public", Name: "other"}, Columns: itemTable.Columns, PrimaryKey: []int{0}}
	id := int64(0)
	batch := func(tx string, open bool, tables ...*cdc.Table) {
		var changes []cdc.Change
		for _, table := range tables {
			id++
			changes = append(changes, cdc.Change{Table: table, Op: cdc.OpInsert, After: []cdc.Value{cdc.Int(id), cdc.String([]byte(fmt.Sprint("row", id)))},
				Position: cdc.Position(fmt.Sprintf("%04d", id)), CommitTime: time.Unix(1700000000, 0), Transaction: tx})
		}
		b := cdc.NewBatch(changes, nil)
		b.Position, b.InTransaction = cdc.Position(fmt.Sprintf("%04d", id)), open
		s.batches = append(s.batches, b)
	}
	batch("t1", false, itemTable, itemTable)
	batch("t2", true, itemTable)
	batch("t2", false, itemTable, itemTable)
	batch("t3", false, other, itemTable)
	return s
}

// txRecord is what a test reads of a record's transaction headers.
type txRecord struct {
	id           string
	index, count int // count 0: no header
}

func readTopic(t *testing.T, b *broker, topic string, want int) []*kgo.Record {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(b.cluster.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for len(out) < want && ctx.Err() == nil {
		client.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) != want {
		t.Fatalf("topic %s holds %d records (read for 5 s), want %d", topic, len(out), want)
	}
	return out
}

func transactionHeaders(t *testing.T, r *kgo.Record) txRecord {
	t.Helper()
	var tx txRecord
	for _, h := range r.Headers {
		n, _ := strconv.Atoi(string(h.Value))
		switch h.Key {
		case "cdc_tx_id":
			tx.id = string(h.Value)
		case "cdc_tx_index":
			tx.index = n
		case "cdc_tx_count":
			tx.count = n
		}
	}
	return tx
}

func runTransactions(t *testing.T, holdBytes int) (records []txRecord, ends []map[string]any) {
	b := startBroker(t)
	if err := b.kafka.EnsureTransactionTopic("shop.transactions"); err != nil {
		t.Fatal(err)
	}
	src := transactionBatches()
	producer, err := b.kafka.NewProducer(sink.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	framing := mapping.Framing{Key: sink.SingleObjectHeader(TransactionKeySchema), Value: sink.SingleObjectHeader(TransactionSchema)}
	stop, _ := start(t, Config{Source: src, Entities: []*mapping.Entity{itemEntity(t)}, Producer: producer, Checkpoints: b.store,
		Connector: "test", CheckpointInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		TransactionTopic: "shop.transactions", TransactionFraming: framing, HoldTransactionBytes: holdBytes})
	waitFor(t, "the last position stored", func() bool { return b.stored(t) == "0007" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, r := range readTopic(t, b, "shop.item.v1", 6) {
		records = append(records, transactionHeaders(t, r))
	}
	codec, err := goavro.NewCodec(TransactionSchema.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readTopic(t, b, "shop.transactions", 3) {
		native, rest, err := codec.NativeFromBinary(r.Value[len(framing.Value):])
		if err != nil || len(rest) > 0 {
			t.Fatalf("transaction record %x does not decode: %v", r.Value, err)
		}
		ends = append(ends, native.(map[string]any))
	}
	slices.SortFunc(records, func(a, b txRecord) int {
		return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.index, b.index))
	})
	return records, ends
}

func TestRecordsCarryTheirTransactionAndItsEndIsCounted(t *testing.T) {
	records, ends := runTransactions(t, 0)
	want := []txRecord{{"t1", 1, 2}, {"t1", 2, 2}, {"t2", 1, 3}, {"t2", 2, 3}, {"t2", 3, 3}, {"t3", 1, 1}}
	if !slices.Equal(records, want) {
		t.Errorf("records' transaction headers: %v, want %v", records, want)
	}
	checkEnds(t, ends)
}

// A transaction whose records outgrow the hold is sent as it comes: the
// records sent before its end have no count, the transaction topic has it.
func TestATransactionLargerThanTheHoldIsSentWithoutItsCount(t *testing.T) {
	records, ends := runTransactions(t, 1)
	want := []txRecord{{"t1", 1, 2}, {"t1", 2, 2}, {"t2", 1, 0}, {"t2", 2, 3}, {"t2", 3, 3}, {"t3", 1, 1}}
	if !slices.Equal(records, want) {
		t.Errorf("records' transaction headers: %v, want %v", records, want)
	}
	checkEnds(t, ends)
}

func checkEnds(t *testing.T, ends []map[string]any) {
	t.Helper()
	var got []string
	for _, e := range ends {
		got = append(got, fmt.Sprintf("%s %d %v %s", e["id"], e["record_count"], e["topics"], e["position"]))
	}
	want := []string{
		"t1 2 [map[count:2 topic:shop.item.v1]] 0002",
		"t2 3 [map[count:3 topic:shop.item.v1]] 0005",
		"t3 1 [map[count:1 topic:shop.item.v1]] 0007",
	}
	if !slices.Equal(got, want) {
		t.Errorf("transaction topic: %q, want %q", got, want)
	}
}

// A checkpoint stored inside a transaction sent as it comes keeps how many
// of its records went out: after a restart from it, the rest are numbered
// after them, and the transaction's end counts them all.
func TestARestartInsideATransactionSentAsItComesNumbersTheRest(t *testing.T) {
	b := startBroker(t)
	if err := b.kafka.EnsureTransactionTopic("shop.transactions"); err != nil {
		t.Fatal(err)
	}
	framing := mapping.Framing{Key: sink.SingleObjectHeader(TransactionKeySchema), Value: sink.SingleObjectHeader(TransactionSchema)}
	run := func(src *scriptedSource, resume *cdc.TransactionProgress, until cdc.Position) {
		producer, err := b.kafka.NewProducer(sink.ProducerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stop, _ := start(t, Config{Source: src, Entities: []*mapping.Entity{itemEntity(t)}, Producer: producer, Checkpoints: b.store,
			Connector: "test", CheckpointInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
			TransactionTopic: "shop.transactions", TransactionFraming: framing, HoldTransactionBytes: 1, ResumeTransaction: resume})
		waitFor(t, "position "+string(until)+" stored", func() bool { return b.stored(t) == until })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	all := transactionBatches()
	first := &scriptedSource{batches: all.batches[:2]} // t1, and t2's first row
	run(first, nil, "0003")
	cp, _, err := b.store.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if p := cp.Transaction; p == nil || p.ID != "t2" || p.Records != 1 || p.Topics["shop.item.v1"] != 1 {
		t.Fatalf("the checkpoint inside t2 holds %+v, want t2 with 1 record sent", p)
	}
	run(&scriptedSource{batches: all.batches[2:]}, cp.Transaction, "0007")
	var got []txRecord
	for _, r := range readTopic(t, b, "shop.item.v1", 6) {
		got = append(got, transactionHeaders(t, r))
	}
	slices.SortFunc(got, func(a, b txRecord) int { return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.index, b.index)) })
	want := []txRecord{{"t1", 1, 2}, {"t1", 2, 2}, {"t2", 1, 0}, {"t2", 2, 3}, {"t2", 3, 3}, {"t3", 1, 1}}
	if !slices.Equal(got, want) {
		t.Errorf("records' transaction headers: %v, want %v", got, want)
	}
	if cp, _, _ := b.store.Load(t.Context()); cp.Transaction != nil {
		t.Errorf("the checkpoint after every transaction's end still holds %+v", cp.Transaction)
	}
}

// A batch that ends one transaction and leaves the next open sends the
// first and holds the second: its position, past the held records, is not
// stored, and the held records' keys and values survive the release of the
// memory of those sent.
func TestRecordsHeldPastABatchKeepTheirValues(t *testing.T) {
	b := startBroker(t)
	s := &scriptedSource{}
	id := int64(0)
	batch := func(open bool, txs ...string) {
		var changes []cdc.Change
		for _, tx := range txs {
			id++
			changes = append(changes, cdc.Change{Table: itemTable, Op: cdc.OpInsert, After: []cdc.Value{cdc.Int(id), cdc.String([]byte(rowName(id, tx)))},
				Position: cdc.Position(fmt.Sprintf("%04d", id)), CommitTime: time.Unix(1700000000, 0), Transaction: tx})
		}
		bt := cdc.NewBatch(changes, nil)
		bt.Position, bt.InTransaction = cdc.Position(fmt.Sprintf("%04d", id)), open
		s.batches = append(s.batches, bt)
	}
	// t1's records fill chunks of the events' memory past t2's, held.
	first := slices.Repeat([]string{"t1"}, 200)
	batch(true, append(first, "t2", "t2")...)
	for range 100 { // batches that carve memory while t2 is held, after t1's was released
		batch(true, "t2")
	}
	batch(false, "t2")
	s.before = func(i int) {
		if i != 1 {
			return
		}
		// t1 is acknowledged, its memory released; t2's first rows are held.
		b.items(t, 200)
		time.Sleep(200 * time.Millisecond)
		if stored := b.stored(t); stored != "" {
			t.Errorf("stored position %s, past the rows of t2 held: a crash now would lose them", stored)
		}
	}
	producer, err := b.kafka.NewProducer(sink.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := start(t, Config{Source: s, Entities: []*mapping.Entity{itemEntity(t)}, Producer: producer, Checkpoints: b.store,
		Connector: "test", CheckpointInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	last := cdc.Position(fmt.Sprintf("%04d", id))
	waitFor(t, "the last position stored", func() bool { return b.stored(t) == last })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	items := b.items(t, int(id))
	wrong := 0
	for i := int64(1); i <= id; i++ {
		tx := "t2"
		if i <= 200 {
			tx = "t1"
		}
		if items[i] != rowName(i, tx) {
			wrong++
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d items have another value than their row's", wrong, id)
	}
}

// rowName is a row's name of 1 KB: rows fill the events' memory fast.
func rowName(id int64, tx string) string {
	return fmt.Sprintf("row %d of %s ", id, tx) + strings.Repeat("x", 1000)
}
