package mapping

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/linkedin/goavro/v2"

	"github.com/cdc-dev/cdc"
)

const orderEventSchema = `{
  "type": "record", "name": "OrderEvent", "namespace": "shop",
  "fields": [
    {"name": "order_id", "type": "long"},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["PLACED", "SHIPPED"]}},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line",
      "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}, "default": []}
  ]}`

const customerEventSchema = `{"type": "record", "name": "CustomerEvent", "namespace": "shop",
  "fields": [{"name": "customer_id", "type": "long"}, {"name": "email", "type": "string"}]}`

func outboxTable() *cdc.Table {
	return &cdc.Table{
		Name: cdc.TableName{Schema: "public", Name: "outbox"},
		Columns: []cdc.Column{
			{Name: "id", DatabaseType: "uuid", Kind: cdc.KindString},
			{Name: "aggregate_type", DatabaseType: "text", Kind: cdc.KindString},
			{Name: "aggregate_id", DatabaseType: "text", Kind: cdc.KindString, Nullable: true},
			{Name: "event_type", DatabaseType: "text", Kind: cdc.KindString, Nullable: true},
			{Name: "payload", DatabaseType: "jsonb", Kind: cdc.KindJSON, Nullable: true},
			{Name: "headers", DatabaseType: "jsonb", Kind: cdc.KindJSON, Nullable: true},
		},
		PrimaryKey: []int{0},
	}
}

func outboxEntities(t *testing.T, onError ErrorPolicy) []*Entity {
	t.Helper()
	out := outboxEntitiesFor(t)
	for _, e := range out {
		e.OnError = onError
	}
	return out
}

func outboxEntitiesFor(t testing.TB) []*Entity {
	t.Helper()
	o := &Outbox{Name: "events", Route: "aggregate_type", Key: "aggregate_id", Payload: "payload", ID: "id", Type: "event_type", Headers: "headers",
		Routes: []string{"Order", "Customer"}}
	var out []*Entity
	for _, r := range []struct{ route, schema, topic string }{{"Order", orderEventSchema, "shop.order_events"}, {"Customer", customerEventSchema, "shop.customer_events"}} {
		s, err := avro.Parse(r.schema)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &Entity{Name: "events." + r.route, Table: outboxTable().Name, Topic: r.topic, Schema: s.(*avro.RecordSchema),
			Outbox: o, Route: r.route, Origin: "cdc.yaml:30"})
	}
	return out
}

func outboxRow(route, key, payload string) []cdc.Value {
	v := func(s string) cdc.Value {
		if s == "" {
			return cdc.Null()
		}
		return cdc.String([]byte(s))
	}
	json := func(s string) cdc.Value {
		if s == "" {
			return cdc.Null()
		}
		return cdc.JSON([]byte(s))
	}
	return []cdc.Value{v("7c9e6679-7425-40de-944b-e07fc1f90ae7"), v(route), v(key), v("OrderPlaced"), json(payload), json(`{"trace": "abc"}`)}
}

const placed = `{"order_id": 42, "status": "PLACED", "total": "19.90", "placed_at": "2026-12-07T10:00:00.123456Z",
  "lines": [{"sku": "A-1", "qty": 2}]}`

func mapOutbox(t *testing.T, onError ErrorPolicy, ch cdc.Change) ([]Record, error) {
	t.Helper()
	ch.Table = outboxTable()
	m := NewMapper(outboxEntities(t, onError), Options{})
	return m.Map(&ch, nil, nil)
}

func TestAnOutboxRowBecomesARecordOfItsRoute(t *testing.T) {
	records, err := mapOutbox(t, OnErrorStop, cdc.Change{Op: cdc.OpInsert, After: outboxRow("Order", "order-42", placed), Position: "p1", Transaction: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 1 || records[0].Entity.Topic != "shop.order_events" {
		t.Fatalf("records: %+v", records)
	}
	r := records[0]
	codec, err := goavro.NewCodec(orderEventSchema)
	if err != nil {
		t.Fatal(err)
	}
	native, rest, err := codec.NativeFromBinary(r.Value)
	if err != nil || len(rest) > 0 {
		t.Fatalf("value %x does not decode: %v", r.Value, err)
	}
	text, _ := json.Marshal(native)
	for _, want := range []string{`"order_id":42`, `"status":"PLACED"`, `"note":null`, `"lines":[{"qty":2,"sku":"A-1"}]`, `"placed_at":"2026-12-07T10:00:00.123456Z"`} {
		if !strings.Contains(string(text), want) {
			t.Errorf("value %s lacks %s", text, want)
		}
	}
	if total := native.(map[string]any)["total"]; total.(interface{ FloatString(int) string }).FloatString(2) != "19.90" {
		t.Errorf("total %v, want 19.90", total)
	}
	keyCodec, _ := goavro.NewCodec(`{"type": "record", "name": "K", "fields": [{"name": "aggregate_id", "type": "string"}]}`)
	if key, _, err := keyCodec.NativeFromBinary(r.Key); err != nil || key.(map[string]any)["aggregate_id"] != "order-42" {
		t.Errorf("key %x decodes to %v (%v), want order-42", r.Key, key, err)
	}
	if r.Event == nil || string(r.Event.ID) != "7c9e6679-7425-40de-944b-e07fc1f90ae7" || string(r.Event.Type) != "OrderPlaced" ||
		len(r.Event.Headers) != 1 || r.Event.Headers[0].Key != "trace" || string(r.Event.Headers[0].Value) != "abc" {
		t.Errorf("event %+v", r.Event)
	}
	if r.Transaction != "t1" || r.Position != "p1" {
		t.Errorf("record at %q in %q", r.Position, r.Transaction)
	}
}

func TestOutboxDeletesUpdatesAndSnapshotReadsPublishNothing(t *testing.T) {
	row := outboxRow("Order", "order-42", placed)
	for _, ch := range []cdc.Change{
		{Op: cdc.OpDelete, Before: row},
		{Op: cdc.OpUpdate, Before: row, After: row},
		{Op: cdc.OpRead, After: row},
	} {
		if records, err := mapOutbox(t, OnErrorStop, ch); err != nil || len(records) != 0 {
			t.Errorf("%s: %d records, %v; want none", ch.Op, len(records), err)
		}
	}
}

func TestAnOutboxPayloadThatDoesNotFitItsSchemaIsAValueError(t *testing.T) {
	for _, c := range []struct {
		name, route, key, payload, want string
	}{
		{"missing required field", "Order", "k", `{"order_id": 1, "total": "1.00", "placed_at": 0}`, `payload.status: is missing, and the schema gives it no default`},
		{"wrong type", "Order", "k", `{"order_id": "one", "status": "PLACED", "total": "1.00", "placed_at": 0}`, `payload.order_id: want an integer, got the text "one"`},
		{"field the schema lacks", "Customer", "k", `{"customer_id": 1, "email": "a@b", "password": "x"}`, `payload.password: is not a field of shop.CustomerEvent`},
		{"symbol outside the enum", "Order", "k", `{"order_id": 1, "status": "LOST", "total": "1.00", "placed_at": 0}`, `"LOST" is not a symbol of enum shop.Status`},
		{"decimal past its scale", "Order", "k", `{"order_id": 1, "status": "PLACED", "total": "1.001", "placed_at": 0}`, `more than 2 digits after the point`},
		{"int out of range", "Order", "k", `{"order_id": 1, "status": "PLACED", "total": "1", "placed_at": 0, "lines": [{"sku": "a", "qty": 3000000000}]}`, `payload.lines[0].qty: 3000000000 is out of the range of an int`},
		{"not JSON", "Order", "k", `{"order_id": `, `the payload is not JSON`},
		{"unknown route", "Invoice", "k", placed, `route "Invoice" is not one of the outbox's routes (Order, Customer)`},
		{"null key", "Order", "", placed, `the key column is null`},
		{"null payload", "Order", "k", "", `the payload is null`},
		{"null route", "", "k", placed, `the route column is null: every outbox row names its route (Order, Customer)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := cdc.Change{Op: cdc.OpInsert, After: outboxRow(c.route, c.key, c.payload), Position: "p9"}
			records, err := mapOutbox(t, OnErrorStop, ch)
			if err == nil || !strings.Contains(err.Error(), c.want) || len(records) != 0 {
				t.Fatalf("got %d records, error %v; want none and %q", len(records), err, c.want)
			}
			if !strings.Contains(err.Error(), `at position "p9"`) {
				t.Errorf("the error does not say where: %v", err)
			}
			records, err = mapOutbox(t, OnErrorDeadLetter, ch)
			if err != nil || len(records) != 1 || records[0].DeadLetter == nil || !strings.Contains(records[0].DeadLetter.Reason, c.want) {
				t.Fatalf("under dead_letter: %d records (%+v), %v", len(records), records, err)
			}
		})
	}
}

func TestAnOutboxHeadersColumnMustHoldTextHeadersCdcDoesNotWrite(t *testing.T) {
	for headers, want := range map[string]string{
		`{"ce_id": "forged"}`:        `header "ce_id" is one cdc writes`,
		`{"Content-Type": "x"}`:      `header "Content-Type" is one cdc writes`,
		`{"trace": 7}`:               `header "trace" is not text`,
		`["trace"]`:                  `the headers column holds no JSON object`,
		`{"trace": "a", "span": "b"`: `the headers column holds no JSON object`,
	} {
		row := outboxRow("Order", "k", placed)
		row[5] = cdc.JSON([]byte(headers))
		if _, err := mapOutbox(t, OnErrorStop, cdc.Change{Op: cdc.OpInsert, After: row}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", headers, err, want)
		}
	}
}

func TestAnOutboxPayloadInAvroIsCheckedAgainstItsSchema(t *testing.T) {
	table := outboxTable()
	table.Columns[4] = cdc.Column{Name: "payload", DatabaseType: "bytea", Kind: cdc.KindBytes}
	entities := outboxEntities(t, OnErrorStop)
	framing := map[string]Framing{"events.Customer": {Key: []byte{0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, Value: []byte{0xc3, 0x01, 8, 7, 6, 5, 4, 3, 2, 1}}}
	m := NewMapper(entities, Options{Framing: framing})
	good, err := avro.Marshal(entities[1].Schema, map[string]any{"customer_id": int64(5), "email": "a@b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		payload []byte
		want    string // error; empty: a record
	}{
		{"bare", good, ""},
		{"framed as the topic's records", append(append([]byte{}, framing["events.Customer"].Value...), good...), ""},
		{"a byte past the value", append(append([]byte{}, good...), 0), "1 bytes past the end of the shop.CustomerEvent"},
		{"truncated", good[:len(good)-2], "value.email (string): the data ends inside the value"},
	} {
		row := outboxRow("Customer", "c-5", "")
		row[4] = cdc.Bytes(c.payload)
		records, err := m.Map(&cdc.Change{Table: table, Op: cdc.OpInsert, After: row}, nil, nil)
		switch {
		case c.want == "" && (err != nil || len(records) != 1 || string(records[0].Value) != string(framing["events.Customer"].Value)+string(good)):
			t.Errorf("%s: %v, %+v", c.name, err, records)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestAnOutboxNamingAMissingColumnIsRefused(t *testing.T) {
	entities := outboxEntities(t, OnErrorStop)
	entities[0].Outbox.Payload = "body"
	_, err := Compile(entities[0], outboxTable(), Framing{})
	if err == nil || !strings.Contains(err.Error(), "outbox payload column body is not a column of public.outbox") {
		t.Fatalf("got %v", err)
	}
	entities[0].Outbox.Payload, entities[0].Outbox.Key = "payload", "headers"
	if _, err := Compile(entities[0], outboxTable(), Framing{}); err == nil || !strings.Contains(err.Error(), "outbox key column headers is jsonb") {
		t.Fatalf("got %v", err)
	}
}

func TestCheckAvroAcceptsEveryEncodingOfAValueAndNothingElse(t *testing.T) {
	s, err := avro.Parse(orderEventSchema)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := appendJSONPayload(nil, s, []byte(placed))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := avro.Unmarshal(s, mine, &v); err != nil {
		t.Fatal(err)
	}
	// hamba writes arrays as blocks with their size: another encoding of the same value.
	theirs, err := avro.Marshal(s, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range [][]byte{mine, theirs} {
		if err := CheckAvro(s, ok); err != nil {
			t.Errorf("%x: %v", ok, err)
		}
	}
	small := avro.MustParse(`{"type": "record", "name": "T", "fields": [{"name": "s", "type": "string"}, {"name": "n", "type": ["null", "long"]}]}`)
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"empty":       {nil, "value.s (string): the data ends inside the value"},
		"trailing":    {[]byte{0, 0, 0}, "1 bytes past the end of the T"},
		"bad utf-8":   {[]byte{2, 0xff, 0}, "value.s (string): text that is not UTF-8"},
		"bad union":   {[]byte{0, 4}, "value.n (union): branch 2 of a union of 2"},
		"huge varint": {[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "longer than 64 bits"},
	} {
		if err := CheckAvro(small, c.data); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}

func TestALogicalMessageIsKeyedByAFieldOfItsPayload(t *testing.T) {
	s, err := avro.Parse(orderEventSchema)
	if err != nil {
		t.Fatal(err)
	}
	e := &Entity{Name: "emitted.shop.order", Table: cdc.LogicalMessages.Name, Topic: "t", Schema: s.(*avro.RecordSchema), Route: "shop.order",
		Outbox: &Outbox{Name: "emitted", Route: "prefix", Payload: "content", KeyField: "order_id", Routes: []string{"shop.order"}}}
	m := NewMapper([]*Entity{e}, Options{})
	message := func(payload string) *cdc.Change {
		return &cdc.Change{Table: cdc.LogicalMessages, Op: cdc.OpInsert, After: []cdc.Value{cdc.String([]byte("shop.order")), cdc.String([]byte(payload))}}
	}
	records, err := m.Map(message(placed), nil, nil)
	if err != nil || len(records) != 1 {
		t.Fatalf("%v, %+v", err, records)
	}
	keyCodec, _ := goavro.NewCodec(`{"type": "record", "name": "K", "fields": [{"name": "aggregate_id", "type": "string"}]}`)
	if key, _, err := keyCodec.NativeFromBinary(records[0].Key); err != nil || key.(map[string]any)["aggregate_id"] != "42" {
		t.Errorf("key %v (%v), want 42, the payload's order_id", key, err)
	}
	for payload, want := range map[string]string{
		`{"status": "PLACED"}`:                          "payload.order_id, the field that keys the record, is missing or null",
		`{"order_id": null}`:                            "payload.order_id, the field that keys the record, is missing or null",
		`{"lines": [{"order_id": 1}], "order_id": [1]}`: "payload.order_id, the field that keys the record, is neither text nor a number",
		`["order_id"]`:                                  "the payload is not a JSON object",
	} {
		if _, err := m.Map(message(payload), nil, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", payload, err, want)
		}
	}
	e.Outbox.KeyField = "lines"
	if _, err := Compile(e, cdc.LogicalMessages, Framing{}); err == nil || !strings.Contains(err.Error(), "outbox key lines is of type array in shop.OrderEvent: a key field holds text or an integer") {
		t.Errorf("a key field of an array: %v", err)
	}
}

// The payload's JSON is read straight into Avro: members in any order,
// escapes, maps, unions and defaults give what a decoder of the whole
// document would.
func TestJSONPayloadsEncodeAsTheSchemaSays(t *testing.T) {
	schema := avro.MustParse(`{"type": "record", "name": "R", "fields": [
		{"name": "s", "type": "string"},
		{"name": "m", "type": {"type": "map", "values": "long"}, "default": {}},
		{"name": "u", "type": ["null", "long", "string"], "default": null},
		{"name": "b", "type": "bytes", "default": ""},
		{"name": "d", "type": {"type": "int", "logicalType": "date"}, "default": 0}]}`)
	codec, err := goavro.NewCodec(schema.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ doc, want string }{
		{`{"s": "caf\u00e9 \ud83d\ude00 \"q\""}`, `map[b:[] d:1970-01-01 00:00:00 +0000 UTC m:map[] s:café 😀 "q" u:<nil>]`},
		{` { "d" : "2026-12-07", "u": "x", "m": {"b": 2, "a": 1}, "s": "", "b": "AAE=" } `, `map[b:[0 1] d:2026-12-07 00:00:00 +0000 UTC m:map[a:1 b:2] s: u:map[string:x]]`},
		{`{"s": "x", "u": 7}`, `map[b:[] d:1970-01-01 00:00:00 +0000 UTC m:map[] s:x u:map[long:7]]`},
	} {
		b, err := appendJSONPayload(nil, schema, []byte(c.doc))
		if err != nil {
			t.Errorf("%s: %v", c.doc, err)
			continue
		}
		native, rest, err := codec.NativeFromBinary(b)
		if err != nil || len(rest) > 0 {
			t.Errorf("%s: %x does not decode: %v", c.doc, b, err)
			continue
		}
		if got := fmt.Sprint(native); got != c.want {
			t.Errorf("%s: got %s, want %s", c.doc, got, c.want)
		}
	}
	for doc, want := range map[string]string{
		`{"s": "a", "s": "b"}`:        "payload.s: appears twice in the object",
		`{"s": "a", "u": true}`:       "payload.u: fits no branch of its union",
		`{"s": "a", "m": {"k": "v"}}`: `payload.m.k: want an integer, got the text "v"`,
		`{"s": "a",}`:                 "the payload is not JSON: want a key in an object",
		`{"s": "a"} {}`:               "the payload holds more than one JSON value",
		"{\"s\": \"\x01\"}":           "a control character in a string",
		`{"s": "a", "b": "!!"}`:       "payload.b: is not base64 text",
	} {
		if _, err := appendJSONPayload(nil, schema, []byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", doc, err, want)
		}
	}
}

// An outbox row whose log lacked a column the outbox reads, deleted before
// it could be read back, cannot be published exactly: a value error.
func TestAnOutboxRowMissingAColumnItReadsIsAValueError(t *testing.T) {
	row := outboxRow("Order", "k", placed)
	row[3] = cdc.Unknown() // the type column
	_, err := mapOutbox(t, OnErrorStop, cdc.Change{Op: cdc.OpInsert, After: row, Position: "p1"})
	if err == nil || !strings.Contains(err.Error(), "the log did not carry column event_type of this outbox row") {
		t.Fatalf("got %v", err)
	}
	row[3] = cdc.String([]byte("OrderPlaced"))
	row[5] = cdc.Unknown() // headers: also read
	if _, err := mapOutbox(t, OnErrorStop, cdc.Change{Op: cdc.OpInsert, After: row}); err == nil {
		t.Fatal("a row missing its headers was published")
	}
}
