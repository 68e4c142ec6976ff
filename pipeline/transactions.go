package pipeline

import (
	"encoding/binary"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/sink"
)

// Every streamed record says which database transaction wrote it, so that a
// consumer can apply a transaction's records together, or wait for all of them:
//
//	cdc_tx_id     the transaction (cdc.Change.Transaction)
//	cdc_tx_index  the record's number in the transaction, from 1, over every topic
//	cdc_tx_count  how many records the transaction wrote, over every topic
//
// The records of a transaction are held until its end is read, so that each
// carries the count, up to Config.HoldTransactionBytes of memory: the
// records of a larger transaction are sent as they come, without cdc_tx_count
// (the transaction topic's record still counts them). Snapshot rows carry none
// of these headers.
const (
	hTxID    = "cdc_tx_id"
	hTxIndex = "cdc_tx_index"
	hTxCount = "cdc_tx_count"
)

// DefaultHoldTransactionBytes bounds the memory of the records of one
// transaction held until its end (see Config.HoldTransactionBytes): as much
// again as the producer buffers (sink.DefaultMaxBufferedBytes).
const DefaultHoldTransactionBytes = 16 << 20

// heldRecordBytes is what a held record takes beyond its key and value: the
// mapping.Record itself.
const heldRecordBytes = int(unsafe.Sizeof(mapping.Record{}))

// The transaction topic (Config.TransactionTopic) receives one record per
// transaction that wrote records, after them: keyed by its id, with its commit
// time, its last change's position and the count of its records per topic.
var (
	TransactionKeySchema = avro.MustParse(`{"type": "record", "name": "TransactionKey", "namespace": "cdc",
		"fields": [{"name": "id", "type": "string"}]}`)
	TransactionSchema = avro.MustParse(`{"type": "record", "name": "Transaction", "namespace": "cdc",
		"doc": "The end of a database transaction: how many records it wrote to each topic (see cdc_tx_id, cdc_tx_index, cdc_tx_count)",
		"fields": [
			{"name": "id", "type": "string"},
			{"name": "commit_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
			{"name": "position", "type": "string"},
			{"name": "record_count", "type": "long"},
			{"name": "topics", "type": {"type": "array", "items": {"type": "record", "name": "TopicCount",
				"fields": [{"name": "topic", "type": "string"}, {"name": "count", "type": "long"}]}}}
		]}`)
)

// TransactionEnd is a record of the transaction topic, decoded.
type TransactionEnd struct {
	ID          string       `avro:"id" json:"id"`
	CommitTime  time.Time    `avro:"commit_time" json:"commit_time"`
	Position    string       `avro:"position" json:"position"`
	RecordCount int64        `avro:"record_count" json:"record_count"`
	Topics      []TopicCount `avro:"topics" json:"topics"`
}

// TopicCount is how many records a transaction wrote to a topic.
type TopicCount struct {
	Topic string `avro:"topic" json:"topic"`
	Count int64  `avro:"count" json:"count"`
}

// transactions numbers the records of each transaction. It is used by the
// send loop only.
type transactions struct {
	log       *slog.Logger
	holdBytes int
	// topic and framing are the transaction topic's; topic is empty without one.
	topic   string
	framing mapping.Framing
	// open counts the records of the transaction numbered last, until its end.
	open cdc.TransactionProgress
	// left is the transaction the last batch left open ("" if none), and
	// sending the one whose records outgrew holdBytes: they are sent as they
	// come, without their count.
	left, sending string
	// resume is the progress a checkpoint stored inside a transaction whose
	// records were being sent as they came (see cdc.Checkpoint.Transaction).
	resume *cdc.TransactionProgress
}

// leftOpen returns the transaction the batch leaves open, and how many of
// the records, in log order, can be sent: all but those of that transaction,
// which are held until its end unless they outgrow the bound.
func (tx *transactions) leftOpen(records []mapping.Record, b *cdc.Batch) (open string, ready int) {
	if !b.InTransaction {
		tx.left = ""
		return "", len(records)
	}
	open = tx.left
	for i := len(b.Changes) - 1; i >= 0; i-- {
		if id := b.Changes[i].Transaction; id != "" {
			open = id
			break
		}
	}
	tx.left = open
	first := len(records)
	for first > 0 && open != "" && records[first-1].Transaction == open {
		first--
	}
	if open == "" || open == tx.sending {
		return open, len(records)
	}
	size := 0
	for _, r := range records[first:] {
		size += len(r.Key) + len(r.Value) + heldRecordBytes
	}
	if size > tx.holdBytes {
		tx.sending = open
		tx.log.Info("a transaction's records outgrew what is held until its end: they are sent as they come, without cdc_tx_count (the transaction topic's record counts them)",
			"transaction", open, "held_bytes", size, "hold_bytes", tx.holdBytes)
		return open, len(records)
	}
	return open, first
}

// begin starts numbering the records of transaction id, unless they are
// being numbered already.
func (tx *transactions) begin(id string) {
	if id == tx.open.ID {
		return
	}
	tx.open.ID, tx.open.Records = id, 0
	clear(tx.open.Topics) // the map is reused: a transaction may be a single row
	if r := tx.resume; r != nil && r.ID == id {
		tx.open.Records = r.Records
		tx.countTopics()
		maps.Copy(tx.open.Topics, r.Topics)
		tx.sending = id // its first records went out, uncounted, before the restart
	}
	tx.resume = nil
}

// count counts a record of the open transaction, written to topic. Topics
// are counted for the transaction topic's record only.
func (tx *transactions) count(topic string) {
	tx.open.Records++
	if tx.topic != "" {
		tx.countTopics()
		tx.open.Topics[topic]++
	}
}

func (tx *transactions) countTopics() {
	if tx.open.Topics == nil {
		tx.open.Topics = map[string]int{}
	}
}

// progress is the open transaction's, for a checkpoint stored inside it: only
// one whose records are sent as they come has a checkpoint inside it.
func (tx *transactions) progress() *cdc.TransactionProgress {
	if tx.open.ID == "" || tx.open.ID != tx.sending {
		return nil
	}
	p := tx.open
	p.Topics = maps.Clone(p.Topics)
	return &p
}

// end closes the open transaction, whose last record is of a change at
// position, committed at commitTime, and returns its record for the
// transaction topic (ok false without one).
func (tx *transactions) end(ev *events, position cdc.Position, commitTime time.Time) (rec sink.Record, ok bool) {
	open := tx.open
	tx.open.ID = ""
	if tx.sending == open.ID {
		tx.sending = ""
	}
	if tx.topic == "" {
		return sink.Record{}, false
	}
	// The Avro encodings of TransactionKeySchema and TransactionSchema,
	// written out: a transaction may be a single row.
	key := append(ev.arena.Bytes(len(tx.framing.Key) + binary.MaxVarintLen64 + len(open.ID))[:0], tx.framing.Key...)
	key = appendAvroString(key, open.ID)
	value := append(ev.arena.Bytes(len(tx.framing.Value) + 64 + len(open.ID) + len(position) + 32*len(open.Topics))[:0], tx.framing.Value...)
	value = appendAvroString(value, open.ID)
	value = binary.AppendVarint(value, commitTime.UnixMicro())
	value = appendAvroString(value, string(position))
	value = binary.AppendVarint(value, int64(open.Records))
	if len(open.Topics) > 0 {
		value = binary.AppendVarint(value, int64(len(open.Topics)))
		for _, topic := range slices.Sorted(maps.Keys(open.Topics)) {
			value = appendAvroString(value, topic)
			value = binary.AppendVarint(value, int64(open.Topics[topic]))
		}
	}
	value = binary.AppendVarint(value, 0) // the array's end
	return sink.Record{
		Topic: tx.topic,
		Key:   key,
		Value: value,
		Headers: []sink.Header{
			{Key: hContentType, Value: avroContent},
			{Key: hTxID, Value: key[len(key)-len(open.ID):]},
		},
	}, true
}

// appendAvroString appends s in Avro's binary encoding: its length as a
// zig-zag varint (a long), then its bytes.
func appendAvroString(dst []byte, s string) []byte {
	return append(binary.AppendVarint(dst, int64(len(s))), s...)
}

// txHeaders appends a record's transaction headers: count 0 is unknown.
func (ev *events) txHeaders(headers []sink.Header, id string, index, count int) []sink.Header {
	number := func(n int) []byte {
		return strconv.AppendInt(ev.arena.Bytes(20)[:0], int64(n), 10)
	}
	if id != ev.txOf {
		ev.tx = append(ev.arena.Bytes(len(id))[:0], id...)
		ev.txOf = id
	}
	headers = append(headers, sink.Header{Key: hTxID, Value: ev.tx}, sink.Header{Key: hTxIndex, Value: number(index)})
	if count > 0 {
		headers = append(headers, sink.Header{Key: hTxCount, Value: number(count)})
	}
	return headers
}
