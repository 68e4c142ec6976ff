package pipeline

import (
	"encoding/hex"
	"hash/fnv"
	"time"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/sink"
)

// Every record carries CloudEvents attributes as headers (the Kafka protocol
// binding, binary content mode: the record value is the event data), plus where
// in the database's log it came from:
//
//	ce_specversion  1.0
//	ce_id           32 hex digits, the same for the same change whenever it is sent
//	                again (consumers de-duplicate on it)
//	ce_source       /cdc/<connector name>
//	ce_type         the entity's name
//	ce_time         the commit time of the change (RFC 3339); absent for snapshot rows
//	content-type    application/avro (absent on tombstones)
//	cdc_op          c (insert), u (update), d (delete or tombstone), r (snapshot read)
//	cdc_position    the change's position in the log; absent for snapshot rows
//
// Dead letters carry cdc_entity, cdc_op, cdc_position and cdc_error (the reason).
var (
	hSpecVersion = []byte("ce_specversion")
	hID          = []byte("ce_id")
	hSource      = []byte("ce_source")
	hType        = []byte("ce_type")
	hTime        = []byte("ce_time")
	hContentType = []byte("content-type")
	hOp          = []byte("cdc_op")
	hPosition    = []byte("cdc_position")
	hEntity      = []byte("cdc_entity")
	hError       = []byte("cdc_error")

	specVersion = []byte("1.0")
	avroContent = []byte("application/avro")
	opCodes     = map[cdc.Op][]byte{cdc.OpRead: []byte("r"), cdc.OpInsert: []byte("c"), cdc.OpUpdate: []byte("u"), cdc.OpDelete: []byte("d")}
)

// events turns mapping records into Kafka records.
type events struct {
	connector       string
	source          []byte
	deadLetterTopic string
	types           map[*mapping.Entity][]byte
}

func newEvents(connector, deadLetterTopic string) *events {
	return &events{connector: connector, source: []byte("/cdc/" + connector), deadLetterTopic: deadLetterTopic,
		types: map[*mapping.Entity][]byte{}}
}

// record builds the Kafka record of rec. position is rec.Position as bytes,
// shared by the records of one change.
func (ev *events) record(rec *mapping.Record, position []byte, token any) sink.Record {
	if rec.DeadLetter != nil {
		return sink.Record{Topic: ev.deadLetterTopic, Key: rec.Key, Value: rec.DeadLetter.Row, Token: token, Headers: []sink.Header{
			{Key: hEntity, Value: []byte(rec.Entity.Name)},
			{Key: hOp, Value: opCodes[rec.Op]},
			{Key: hPosition, Value: position},
			{Key: hError, Value: []byte(rec.DeadLetter.Reason)},
		}}
	}
	typ, ok := ev.types[rec.Entity]
	if !ok {
		typ = []byte(rec.Entity.Name)
		ev.types[rec.Entity] = typ
	}
	headers := make([]sink.Header, 0, 8)
	headers = append(headers,
		sink.Header{Key: hSpecVersion, Value: specVersion},
		sink.Header{Key: hID, Value: ev.id(rec)},
		sink.Header{Key: hSource, Value: ev.source},
		sink.Header{Key: hType, Value: typ},
		sink.Header{Key: hOp, Value: opCodes[rec.Op]},
	)
	if !rec.CommitTime.IsZero() {
		headers = append(headers, sink.Header{Key: hTime, Value: rec.CommitTime.UTC().AppendFormat(nil, time.RFC3339Nano)})
	}
	if rec.Value != nil {
		headers = append(headers, sink.Header{Key: hContentType, Value: avroContent})
	}
	if len(position) > 0 {
		headers = append(headers, sink.Header{Key: hPosition, Value: position})
	}
	return sink.Record{Topic: rec.Entity.Topic, Key: rec.Key, Value: rec.Value, Headers: headers, Token: token}
}

// id names a change's record for an entity: connector, entity, position and the
// record's number within the change. Snapshot rows have no position, so theirs
// hash the record itself: a row read again unchanged keeps its id.
func (ev *events) id(rec *mapping.Record) []byte {
	h := fnv.New128a()
	h.Write([]byte(ev.connector))
	h.Write([]byte{0})
	h.Write([]byte(rec.Entity.Name))
	h.Write([]byte{0})
	if rec.Position != "" {
		h.Write([]byte(rec.Position))
		h.Write([]byte{0, byte(rec.Seq)})
	} else {
		h.Write(rec.Key)
		h.Write([]byte{0})
		h.Write(rec.Value)
	}
	var sum [16]byte
	out := make([]byte, 32)
	hex.Encode(out, h.Sum(sum[:0]))
	return out
}
