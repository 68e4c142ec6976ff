package pipeline

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"hash/crc64"
	"time"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/metrics"
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
//	cdc_tx_*        the change's transaction (see transactions.go)
//
// The record of an outbox row (see mapping.Outbox) takes ce_id from its id
// column, ce_type from its type column (else its route) and ce_time from its
// timestamp column, where the outbox names them, and adds the headers of its
// headers column after cdc's own.
//
// Dead letters carry cdc_entity, cdc_op, cdc_position and cdc_error (the reason),
// and the cdc_tx_* headers.
//
// The compact header set (Config.CompactHeaders) leaves out the attributes
// that are the same on every record of a topic: ce_specversion, ce_source and
// content-type (a tombstone is a record without a value). On a snapshot row
// of the bench's 150-byte rows they were about 70 of its 290 bytes.
const (
	hSpecVersion = "ce_specversion"
	hID          = "ce_id"
	hSource      = "ce_source"
	hType        = "ce_type"
	hTime        = "ce_time"
	hContentType = "content-type"
	hOp          = "cdc_op"
	hPosition    = "cdc_position"
	hEntity      = "cdc_entity"
	hError       = "cdc_error"
)

var (
	specVersion = []byte("1.0")
	avroContent = []byte("application/avro")
	opCodes     = [...][]byte{cdc.OpRead: []byte("r"), cdc.OpInsert: []byte("c"), cdc.OpUpdate: []byte("u"), cdc.OpDelete: []byte("d")}
)

// events turns mapping records into Kafka records, and counts them. It is used
// by one goroutine.
type events struct {
	metrics         *metrics.Metrics
	compact         bool // the compact header set
	source          []byte
	deadLetterTopic string
	connector       []byte
	entities        map[*mapping.Entity]*entityEvents
	// The records, their headers, and their keys, values and ids are carved
	// from these, and reused once the records are acknowledged (see mark):
	// once warm, a record costs no allocation.
	records memory.Slab[sink.Record]
	headers memory.Slab[sink.Header]
	arena   memory.Arena
	// position is the last record's position as bytes, shared by the records
	// of one change.
	position   []byte
	positionOf cdc.Position
	// stamp is the last record's ce_time, shared by the records of one
	// transaction.
	stamp   []byte
	stampOf time.Time
	// tx is the last record's transaction id, shared by the records of a
	// transaction.
	tx   []byte
	txOf string
}

// eventsMark is how far events had carved memory; see events.mark.
type eventsMark struct {
	arena            memory.ArenaMark
	records, headers uint64
}

// entityEvents holds what every record of an entity shares.
type entityEvents struct {
	counts    *metrics.Entity
	typ       []byte
	iso, ecma uint64 // the id's checksums of connector and entity
	// The records of the batch under way, added to counts a batch at a time.
	ops        [cdc.OpDelete + 1]int // by cdc.Op
	tombstones int
}

var (
	crcISO  = makeCRC64Table(crc64.ISO)
	crcECMA = makeCRC64Table(crc64.ECMA)

	crcCastagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// recordChunk is the records of a chunk: a batch's records are carved at
// once, and a slab carves at most an eighth of a chunk (the sources' batches
// hold up to 1024 changes by default).
const recordChunk = 8 * 1024

func newEvents(connector, deadLetterTopic string, m *metrics.Metrics) *events {
	return &events{metrics: m, connector: []byte(connector), source: []byte("/cdc/" + connector), deadLetterTopic: deadLetterTopic,
		entities: map[*mapping.Entity]*entityEvents{},
		records:  memory.Slab[sink.Record]{ChunkLen: recordChunk, Poison: sink.Record{Topic: releasedTopic, Key: memory.Poisoned(), Value: memory.Poisoned()}},
		headers:  memory.Slab[sink.Header]{Poison: sink.Header{Key: releasedTopic, Value: memory.Poisoned()}},
	}
}

// releasedTopic is the topic of a record read after its release in a guarded
// build (see memory.Guarded): not a topic name, so the client refuses it, if
// reading its key has not faulted first.
const releasedTopic = "cdc-guard: a record read after its release"

func (ev *events) entity(e *mapping.Entity) *entityEvents {
	ee, ok := ev.entities[e]
	if !ok {
		prefix := append(append(append(append([]byte(nil), ev.connector...), 0), e.Name...), 0)
		ee = &entityEvents{counts: ev.metrics.Entity(e.Name), typ: []byte(e.Name), iso: crcISO.update(0, prefix), ecma: crcECMA.update(0, prefix)}
		ev.entities[e] = ee
	}
	return ee
}

// mark ends a batch of records, and counts them: once they are all
// acknowledged, release with the mark lets their memory be reused. Records of
// later batches share nothing with them.
func (ev *events) mark() eventsMark {
	for _, ee := range ev.entities {
		for op, n := range ee.ops {
			if n > 0 {
				ee.counts.Op(cdc.Op(op)).Add(float64(n))
			}
		}
		if ee.tombstones > 0 {
			ee.counts.Tombstones.Add(float64(ee.tombstones))
		}
		ee.ops, ee.tombstones = [cdc.OpDelete + 1]int{}, 0
	}
	ev.position, ev.positionOf, ev.stampOf, ev.txOf = nil, "", time.Time{}, ""
	return eventsMark{arena: ev.arena.Mark(), records: ev.records.Mark(), headers: ev.headers.Mark()}
}

// release lets the memory of the records before m be reused. It is called
// from any goroutine, for the marks in the order they were taken.
func (ev *events) release(m eventsMark) {
	ev.arena.Release(m.arena)
	ev.records.Release(m.records)
	ev.headers.Release(m.headers)
}

// record builds the Kafka record of rec, the index-th of its transaction's
// count records (count 0: not known yet).
func (ev *events) record(rec *mapping.Record, index, count int) sink.Record {
	if rec.Position != ev.positionOf {
		ev.position = append(ev.arena.Bytes(len(rec.Position))[:0], rec.Position...)
		ev.positionOf = rec.Position
	}
	position := ev.position
	ee := ev.entity(rec.Entity)
	if rec.DeadLetter != nil {
		ee.counts.DeadLetters.Inc()
		headers := []sink.Header{
			{Key: hEntity, Value: ee.typ},
			{Key: hOp, Value: opCodes[rec.Op]},
			{Key: hPosition, Value: position},
			{Key: hError, Value: []byte(rec.DeadLetter.Reason)},
		}
		if rec.Transaction != "" {
			headers = ev.txHeaders(headers, rec.Transaction, index, count)
		}
		return sink.Record{Topic: ev.deadLetterTopic, Key: rec.Key, Value: rec.DeadLetter.Row, Headers: headers}
	}
	ee.ops[rec.Op]++
	if rec.Value == nil {
		ee.tombstones++
	}
	var built [11]sink.Header // at most, on the stack, for table entities; the record keeps exactly its own
	id, typ, stamp := ev.id(ee, rec, position), ee.typ, rec.CommitTime
	if e := rec.Event; e != nil {
		if e.ID != nil {
			id = e.ID
		}
		typ = e.Type
		if !e.Time.IsZero() {
			stamp = e.Time
		}
	}
	headers := built[:0]
	if !ev.compact {
		headers = append(headers, sink.Header{Key: hSpecVersion, Value: specVersion})
	}
	headers = append(headers, sink.Header{Key: hID, Value: id})
	if !ev.compact {
		headers = append(headers, sink.Header{Key: hSource, Value: ev.source})
	}
	headers = append(headers,
		sink.Header{Key: hType, Value: typ},
		sink.Header{Key: hOp, Value: opCodes[rec.Op]},
	)
	if !stamp.IsZero() {
		if !stamp.Equal(ev.stampOf) {
			ev.stamp = stamp.UTC().AppendFormat(ev.arena.Bytes(len(time.RFC3339Nano))[:0], time.RFC3339Nano)
			ev.stampOf = stamp
		}
		headers = append(headers, sink.Header{Key: hTime, Value: ev.stamp})
	}
	if rec.Value != nil && !ev.compact {
		headers = append(headers, sink.Header{Key: hContentType, Value: avroContent})
	}
	if len(position) > 0 {
		headers = append(headers, sink.Header{Key: hPosition, Value: position})
	}
	if rec.Transaction != "" {
		headers = ev.txHeaders(headers, rec.Transaction, index, count)
	}
	if e := rec.Event; e != nil {
		for _, h := range e.Headers {
			headers = append(headers, sink.Header{Key: h.Key, Value: h.Value})
		}
	}
	kept := ev.headers.Take(len(headers))
	copy(kept, headers)
	return sink.Record{Topic: rec.Entity.Topic, Key: rec.Key, Value: rec.Value, Headers: kept}
}

// tooLarge handles a record larger than its topic accepts: a value error. An
// entity under the dead_letter policy (or a dead letter itself) sends a dead
// letter of its key and the reason, without the value that did not fit;
// otherwise nothing of the batch is sent, and the error says what to raise.
func (ev *events) tooLarge(rec *mapping.Record, index, count, size, limit, deadLetterLimit int) (sink.Record, error) {
	topic := rec.Entity.Topic
	if rec.DeadLetter != nil {
		topic = ev.deadLetterTopic
	}
	reason := fmt.Sprintf("entity %q: the record for key %s %s is %d bytes, more than topic %s accepts (max.message.bytes = %d)",
		rec.Entity.Name, rec.KeyText(), at(rec.Position), size, topic, limit)
	if rec.DeadLetter == nil && rec.Entity.OnError != mapping.OnErrorDeadLetter {
		return sink.Record{}, fmt.Errorf("%s; nothing of it was written. Raise the topic's limit (kafka-configs --alter --entity-type topics --entity-name %s --add-config max.message.bytes=%d), or send such changes to the dead-letter topic (on_error: dead_letter)",
			reason, topic, size)
	}
	if rec.DeadLetter != nil {
		reason = rec.DeadLetter.Reason + "; and its dead letter " + reason
	}
	ee := ev.entity(rec.Entity)
	if rec.DeadLetter == nil {
		ee.counts.DeadLetters.Inc()
		ee.ops[rec.Op]-- // counted as an entity record by record
		if rec.Value == nil {
			ee.tombstones--
		}
	}
	letter := sink.Record{Topic: ev.deadLetterTopic, Key: rec.Key, Headers: []sink.Header{
		{Key: hEntity, Value: ee.typ},
		{Key: hOp, Value: opCodes[rec.Op]},
		{Key: hPosition, Value: []byte(rec.Position)},
		{Key: hError, Value: []byte(reason)},
	}}
	if rec.Transaction != "" {
		letter.Headers = ev.txHeaders(letter.Headers, rec.Transaction, index, count)
	}
	if size := sink.RecordSize(&letter); size > deadLetterLimit {
		return sink.Record{}, fmt.Errorf("%s, and even its dead letter, without the value, is %d bytes, more than the dead-letter topic %s accepts (max.message.bytes = %d): raise that topic's limit",
			reason, size, ev.deadLetterTopic, deadLetterLimit)
	}
	rec.DeadLetter = &mapping.DeadLetter{Reason: reason}
	return letter, nil
}

// at says where a record's change is, for messages.
func at(position cdc.Position) string {
	if position == "" {
		return "(a snapshot row)"
	}
	return fmt.Sprintf("at position %q", position)
}

// id names a change's record for an entity: connector, entity, position and the
// record's number within the change, as two 64-bit CRCs (ISO and ECMA
// polynomials; fast, and 128 bits make collisions negligible). Snapshot rows
// have no position, so theirs cover the record itself — its key and a digest
// of its value (CRC-32C and CRC-32, computed by the processor: a CRC-64 over
// every value cost a tenth of the snapshot's time) — so that a row read again
// unchanged keeps its id.
func (ev *events) id(ee *entityEvents, rec *mapping.Record, position []byte) []byte {
	iso, ecma := ee.iso, ee.ecma
	update := func(p []byte) {
		iso, ecma = crcISO.update(iso, p), crcECMA.update(ecma, p)
	}
	if len(position) > 0 {
		update(position)
		update([]byte{0, byte(rec.Seq)})
	} else {
		update(rec.Key)
		var digest [9]byte
		binary.BigEndian.PutUint32(digest[1:], crc32.Checksum(rec.Value, crcCastagnoli))
		binary.BigEndian.PutUint32(digest[5:], crc32.ChecksumIEEE(rec.Value))
		update(digest[:])
	}
	var sum [16]byte
	binary.BigEndian.PutUint64(sum[:8], iso)
	binary.BigEndian.PutUint64(sum[8:], ecma)
	out := ev.arena.Bytes(32)
	hex.Encode(out, sum[:])
	return out
}
