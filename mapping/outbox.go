package mapping

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// Outbox is an outbox table: rows an application inserts in the same
// transaction as a business change, each an event it means to publish. Each
// route of an outbox is an entity of its own (Entity.Outbox and Entity.Route):
// the rows whose route column holds the route's value become records of its
// topic, keyed by the key column, their payload encoded with its schema. A
// payload the schema does not describe is a value error (the entity's
// on_error), never a record. Deletes and updates of outbox rows (the usual
// clean-up), and snapshot reads of them (events already published), publish
// nothing.
type Outbox struct {
	// Name is the outbox's entity in the configuration.
	Name string
	// The columns: Route picks the route, Key keys the record, Payload holds
	// the event (JSON text, or Avro binary in a bytes column). ID (ce_id),
	// Type (ce_type), Timestamp (ce_time) and Headers (a JSON object of text
	// values, each a Kafka header) may be empty.
	Route, Key, Payload, ID, Type, Timestamp, Headers string
	// KeyField, instead of a key column, names the payload's top-level
	// field that keys the record: for logical messages (cdc.LogicalMessages),
	// which carry nothing but the payload.
	KeyField string
	// Routes lists every route's value, for messages.
	Routes []string
}

// OutboxKeyField is the field of an outbox record's key: the key column's
// text (an aggregate's id).
const OutboxKeyField = "aggregate_id"

// Event is what an outbox row says of its record beyond key and value. Its
// bytes are carved from the record's arena.
type Event struct {
	// ID (if not empty) and Type are the record's ce_id and ce_type; Time,
	// if not zero, its ce_time.
	ID, Type []byte
	Time     time.Time
	Headers  []EventHeader
}

// EventHeader is a header an outbox row asks for.
type EventHeader struct {
	Key   string
	Value []byte
}

// outboxPlan is an outbox route compiled against its table: column indexes,
// -1 for the optional columns not configured.
type outboxPlan struct {
	route, key, payload, id, typ, timestamp, headers int
	avroPayload                                      bool
	keyField                                         string
}

func outboxKeySchema(e *Entity) (*avro.RecordSchema, error) {
	field, err := avro.NewField(OutboxKeyField, avro.NewPrimitiveSchema(avro.String, nil))
	if err != nil {
		return nil, err
	}
	return avro.NewRecordSchema(e.Schema.Name()+"Key", e.Schema.Namespace(), []*avro.Field{field})
}

// compileOutbox checks the outbox's columns against the table.
func compileOutbox(e *Entity, t *cdc.Table, framing Framing) (*Plan, error) {
	o := e.Outbox
	p := &Plan{entity: e, framing: framing, table: t, outbox: &outboxPlan{}, route: []byte(e.Route)}
	var errs []error
	column := func(role, name string, kinds ...cdc.Kind) int {
		if name == "" {
			return -1
		}
		c := t.Column(name)
		if c < 0 {
			errs = append(errs, e.errorf("", "", "outbox %s column %s is not a column of %s (has: %s)", role, name, t.Name, strings.Join(columnNames(t, allColumns(t)), ", ")))
			return -1
		}
		kind := t.Columns[c].Kind
		for _, k := range kinds {
			if k == kind {
				p.used = appendUnique(p.used, c)
				return c
			}
		}
		errs = append(errs, e.errorf("", "", "outbox %s column %s is %s: want a column of %s", role, name, t.Columns[c].DatabaseType, kindList(kinds)))
		return -1
	}
	text := []cdc.Kind{cdc.KindString, cdc.KindInt, cdc.KindUint, cdc.KindDecimal}
	op := p.outbox
	op.route = column("route", o.Route, text...)
	op.key = column("key", o.Key, text...)
	op.keyField = o.KeyField
	op.payload = column("payload", o.Payload, cdc.KindJSON, cdc.KindString, cdc.KindBytes)
	op.id = column("id", o.ID, text...)
	op.typ = column("type", o.Type, cdc.KindString)
	op.timestamp = column("timestamp", o.Timestamp, cdc.KindTimestamp)
	op.headers = column("headers", o.Headers, cdc.KindJSON, cdc.KindString)
	if op.payload >= 0 {
		op.avroPayload = t.Columns[op.payload].Kind == cdc.KindBytes
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func allColumns(t *cdc.Table) []int {
	out := make([]int, len(t.Columns))
	for i := range out {
		out[i] = i
	}
	return out
}

func kindList(kinds []cdc.Kind) string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.String()
	}
	return strings.Join(names, ", ")
}

// mapOutbox maps a change of an outbox table, whose routes' plans are given:
// an insert becomes a record of the route its row names; anything else is
// not an event.
func (m *Mapper) mapOutbox(ch *cdc.Change, plans []*Plan, out []Record, arena *memory.Arena) ([]Record, error) {
	if ch.Op != cdc.OpInsert {
		if m.opts.OnSkip != nil {
			m.opts.OnSkip(plans[0].entity, SkipFiltered)
		}
		return out, nil
	}
	first := plans[0]
	route := ch.After[first.outbox.route]
	if route.Kind != cdc.KindNull {
		m.text = route.AppendText(m.text[:0])
		for _, p := range plans {
			if string(m.text) == p.entity.Route {
				return p.Map(ch, out, arena)
			}
		}
	}
	err := &fieldFault{field: "route", column: first.outbox.route, err: fmt.Errorf("route %q is not one of the outbox's routes (%s): add it to outbox.routes, with its topic and schema",
		m.text, strings.Join(first.entity.Outbox.Routes, ", "))}
	if route.Kind == cdc.KindNull {
		err.err = fmt.Errorf("the route column is null: every outbox row names its route (%s)", strings.Join(first.entity.Outbox.Routes, ", "))
	}
	fault := first.valueError(ch, ch.After, err)
	if first.entity.OnError != OnErrorDeadLetter {
		return out, fault
	}
	return append(out, first.deadLetter(ch, fault)), nil
}

// event maps an outbox row of the plan's route to its record.
func (p *Plan) event(ch *cdc.Change, out []Record, arena *memory.Arena) ([]Record, error) {
	o, row := p.outbox, ch.After
	fault := func(column int, field string, format string, args ...any) error {
		return p.valueError(ch, row, &fieldFault{field: field, column: column, err: fmt.Errorf(format, args...)})
	}
	for _, c := range p.used {
		if row[c].Kind == cdc.KindUnknown {
			return out, fault(c, p.table.Columns[c].Name, "the log did not carry column %s of this outbox row (binlog_row_image MINIMAL logs only the columns an INSERT sets), and the row was deleted before cdc could read it back, so its event cannot be published exactly: set binlog_row_image = FULL for the sessions that write the outbox, or have them set every column the outbox reads",
				p.table.Columns[c].Name)
		}
	}
	payload := row[o.payload]
	if payload.Kind == cdc.KindNull {
		return out, fault(o.payload, "payload", "the payload is null: an event's payload must be a %s", p.entity.Schema.FullName())
	}
	var keyText []byte
	if o.keyField != "" {
		var err error
		if keyText, err = payloadField(payload.Bytes, o.keyField); err != nil {
			return out, fault(o.payload, "payload", "%w", err)
		}
	} else if key := row[o.key]; key.Kind == cdc.KindNull {
		return out, fault(o.key, OutboxKeyField, "the key column is null: an event needs its aggregate's id as its key")
	} else {
		keyText = key.AppendText(p.text[:0])
		p.text = keyText
	}
	buf := appendBytes(append(p.scratch[:0], p.framing.Key...), keyText)
	encodedKey := copyOut(buf, arena)
	buf = append(buf[:0], p.framing.Value...)
	var err error
	if o.avroPayload {
		buf, err = appendAvroPayload(buf, p.entity.Schema, p.framing.Value, payload.Bytes)
	} else {
		buf, err = appendJSONPayload(buf, p.entity.Schema, payload.Bytes)
	}
	p.scratch = buf[:0]
	if err != nil {
		return out, fault(o.payload, "payload", "%w", err)
	}
	value := copyOut(buf, arena)
	ev := &Event{Type: p.route}
	if o.id >= 0 && row[o.id].Kind != cdc.KindNull {
		p.text = row[o.id].AppendText(p.text[:0])
		ev.ID = copyOut(p.text, arena)
	}
	if o.typ >= 0 && row[o.typ].Kind != cdc.KindNull {
		ev.Type = copyOut(row[o.typ].Bytes, arena)
	}
	if o.timestamp >= 0 && row[o.timestamp].Kind == cdc.KindTimestamp {
		ev.Time = time.UnixMicro(row[o.timestamp].Int).UTC()
	}
	if o.headers >= 0 && row[o.headers].Kind != cdc.KindNull {
		if ev.Headers, err = eventHeaders(row[o.headers].Bytes, arena); err != nil {
			return out, fault(o.headers, "headers", "%w", err)
		}
	}
	return append(out, Record{Entity: p.entity, plan: p, Op: cdc.OpInsert, Key: encodedKey, Value: value, Event: ev}), nil
}

// payloadField is the text of a JSON payload's top-level field that keys its
// record: text, or a number as written. It is valid until doc changes.
func payloadField(doc []byte, name string) ([]byte, error) {
	sc := jsonScanner{data: doc}
	if c, err := sc.peek(); err != nil || c != '{' {
		return nil, fmt.Errorf("the payload is not a JSON object")
	}
	sc.at++
	for first := true; ; first = false {
		more, err := sc.more('}', first)
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		key, err := sc.key()
		if err != nil {
			return nil, err
		}
		if string(key) != name {
			if err := sc.skip(); err != nil {
				return nil, err
			}
			continue
		}
		switch c, err := sc.peek(); {
		case err != nil:
			return nil, err
		case c == '"':
			return sc.str()
		case c == '-' || (c >= '0' && c <= '9'):
			return sc.number()
		case c != 'n':
			return nil, fmt.Errorf("payload.%s, the field that keys the record, is neither text nor a number", name)
		}
		break // null
	}
	return nil, fmt.Errorf("payload.%s, the field that keys the record, is missing or null", name)
}

// checkKeyField checks that the field that keys an outbox's records is a
// top-level field of the route's schema holding text or an integer.
func checkKeyField(e *Entity) error {
	f := schemaField(e.Schema, e.Outbox.KeyField)
	if f == nil {
		return e.errorf("", "", "outbox key %s is not a field of %s (%s): the records of logical messages are keyed by a top-level field of their payload", e.Outbox.KeyField, e.Schema.FullName(), e.SchemaFile)
	}
	switch f.Type().Type() {
	case avro.String, avro.Int, avro.Long:
		return nil
	}
	return e.errorf("", "", "outbox key %s is of type %s in %s: a key field holds text or an integer", e.Outbox.KeyField, f.Type().Type(), e.Schema.FullName())
}

func copyOut(b []byte, arena *memory.Arena) []byte {
	if arena == nil {
		return append([]byte{}, b...)
	}
	return arena.Copy(b)
}

// eventHeaders reads a headers column: a JSON object of text values. Names
// cdc writes itself are refused: a consumer must be able to trust them.
func eventHeaders(text []byte, arena *memory.Arena) ([]EventHeader, error) {
	sc := jsonScanner{data: text}
	if c, err := sc.peek(); err != nil || c != '{' {
		return nil, fmt.Errorf("the headers column holds no JSON object: want {\"name\": \"text\", ...}")
	}
	var headers []EventHeader
	sc.at++
	for first := true; ; first = false {
		more, err := sc.more('}', first)
		if err != nil {
			return nil, fmt.Errorf("the headers column holds no JSON object (%v): want {\"name\": \"text\", ...}", err)
		}
		if !more {
			break
		}
		key, err := sc.key()
		if err != nil {
			return nil, err
		}
		name := string(key)
		if strings.HasPrefix(name, "ce_") || strings.HasPrefix(name, "cdc_") || strings.EqualFold(name, "content-type") {
			return nil, fmt.Errorf("header %q is one cdc writes (ce_*, cdc_*, content-type): name it otherwise", name)
		}
		if c, err := sc.peek(); err != nil || c != '"' {
			return nil, fmt.Errorf("header %q is not text: the headers column holds a JSON object of text values", name)
		}
		value, err := sc.str()
		if err != nil {
			return nil, err
		}
		headers = append(headers, EventHeader{Key: name, Value: copyOut(value, arena)})
	}
	slices.SortFunc(headers, func(a, b EventHeader) int { return strings.Compare(a.Key, b.Key) })
	return headers, nil
}

// appendAvroPayload appends a payload already in Avro: the binary encoding of
// one value of schema, bare or framed as the topic's records are (framing).
// It must decode as exactly that value, to its last byte.
func appendAvroPayload(dst []byte, schema avro.Schema, framing, payload []byte) ([]byte, error) {
	body := payload
	if len(framing) > 0 && bytes.HasPrefix(payload, framing) {
		body = payload[len(framing):]
	}
	if err := CheckAvro(schema, body); err != nil {
		return dst, fmt.Errorf("the Avro payload (%d bytes, bare or after the topic's header %x) is not exactly one %s: %v", len(body), framing, schemaName(schema), err)
	}
	return append(dst, body...), nil
}

func schemaName(s avro.Schema) string {
	if named, ok := s.(avro.NamedSchema); ok {
		return named.FullName()
	}
	return s.String()
}
