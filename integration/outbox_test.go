package integration

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/cdc-dev/cdc/integration/harness"
)

// The shop's outbox (shop.sql, config.example.yaml): the application inserts
// events into it in the same transaction as its change; cdc routes each to
// the topic of its aggregate type, encoded with the route's schema.

const (
	outboxKeySchema   = `{"type":"record","name":"OrderEventKey","namespace":"shop.v1","fields":[{"name":"aggregate_id","type":"string"}]}`
	customerEventKey  = `{"type":"record","name":"CustomerEventKey","namespace":"shop.v1","fields":[{"name":"aggregate_id","type":"string"}]}`
	orderEventPayload = `{"order_id": "%s", "customer_id": 3, "status": "PLACED", "total": "31.40", "lines": [{"sku": "B-42", "quantity": 2}]}`
)

// outboxInsert is the statement that writes one event into the outbox.
func outboxInsert(route, key, typ, payload string) string {
	return fmt.Sprintf(`INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('%s', %s, '%s', '%s')`, route, key, typ, payload)
}

func (s *scenario) deadLetterTopic() string { return s.name + ".dead_letter" }

func TestOutboxEventsAreRoutedEncodedAndChecked(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.start()
		s.waitCustomersMatch()
		orderID := "c2aade77-7e29-4ef8-bb6d-6bb9bd380a33"
		s.exec(
			// The business change and its event, in one transaction.
			"BEGIN;\n"+
				"UPDATE customer SET email = 'ada@lovelace.org' WHERE customer_id = 1;\n"+
				outboxInsert("Customer", "'1'", "EmailChanged", `{"customer_id": 1, "email": "ada@lovelace.org", "at": "2026-12-07T10:00:00.5Z"}`)+";\n"+
				"COMMIT",
			// The usual clean-up in the same transaction: only the insert publishes.
			"BEGIN;\n"+outboxInsert("Order", "'"+orderID+"'", "OrderPlaced", fmt.Sprintf(orderEventPayload, orderID))+";\nDELETE FROM outbox;\nCOMMIT",
			// Events their schema does not describe, and one no route takes.
			outboxInsert("Order", "'o-1'", "OrderPlaced", `{"order_id": "`+orderID+`", "customer_id": 3, "total": "1.00"}`),
			outboxInsert("Customer", "'2'", "EmailChanged", `{"customer_id": "two", "email": "x@example.com", "at": 0}`),
			outboxInsert("Invoice", "'i-1'", "InvoiceSent", `{}`),
		)
		if s.mysql {
			s.exec(`ALTER TABLE outbox MODIFY aggregateid varchar(64) NULL`)
		} else {
			s.exec(`ALTER TABLE outbox ALTER COLUMN aggregateid DROP NOT NULL`)
		}
		s.exec(outboxInsert("Order", "NULL", "OrderPlaced", fmt.Sprintf(orderEventPayload, orderID)))

		letters := s.waitRecords(s.deadLetterTopic(), 4)
		var reasons []string
		for _, r := range letters {
			reasons = append(reasons, r.Headers["cdc_error"])
		}
		for _, want := range []string{
			`entity "events.Order", field "payload"`, `payload.status: is missing, and the schema gives it no default`,
			`payload.customer_id: want an integer, got the text "two"`,
			`route "Invoice" is not one of the outbox's routes (Customer, Order)`,
			`the key column is null: an event needs its aggregate's id as its key`,
		} {
			if !strings.Contains(strings.Join(reasons, "\n"), want) {
				t.Errorf("no dead letter says %q:\n%s", want, strings.Join(reasons, "\n"))
			}
		}

		customerEvents := s.waitRecords("shop.customer_events.v1", 1)
		codec := s.eventCodec("customer_event.v1.avsc", customerEventKey)
		if key, _ := codec.Key(customerEvents[0].Key); key != `{"aggregate_id":"1"}` {
			t.Errorf("customer event key %s", key)
		}
		value, err := codec.Value(customerEvents[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		if value["customer_id"] != int64(1) || value["email"] != "ada@lovelace.org" || !value["at"].(time.Time).Equal(time.Date(2026, 12, 7, 10, 0, 0, 5e8, time.UTC)) {
			t.Errorf("customer event %v", value)
		}
		h := customerEvents[0].Headers
		if h["ce_type"] != "EmailChanged" || h["cdc_op"] != "c" || h["content-type"] != "application/avro" || h["ce_id"] == "" {
			t.Errorf("customer event headers %v", h)
		}
		// Its transaction also wrote the customer's record.
		if h["cdc_tx_count"] != "2" {
			t.Errorf("the customer event's transaction counts %s records, want 2 (the customer and its event): %v", h["cdc_tx_count"], h)
		}

		orderEvents := s.waitRecords("shop.order_events.v1", 1)
		codec = s.eventCodec("order_event.v1.avsc", outboxKeySchema)
		value, err = codec.Value(orderEvents[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(value["order_id"], " ", value["status"], " ", value["total"], " ", value["lines"], " ", value["note"]); got != orderID+" PLACED 157/5 [map[quantity:2 sku:B-42]] <nil>" {
			t.Errorf("order event: %s", got)
		}
		out := s.verified()
		for _, want := range []string{
			"entity events.Order: topic shop.order_events.v1 has 1 events of outbox table", "checked that each decodes with", ": all do",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("cdc verify's output lacks %q:\n%s", want, out)
			}
		}
		time.Sleep(time.Second) // nothing more comes: the deleted rows publish nothing
		if n := s.recordCount("shop.order_events.v1") + s.recordCount("shop.customer_events.v1"); n != 2 {
			t.Errorf("the route topics hold %d records, want 2", n)
		}
		s.checkTransactions(map[string]bool{"shop.customer_events.v1": true, "shop.order_events.v1": true, s.deadLetterTopic(): true})

		// A record another producer wrote to a route's topic, which is no
		// event of its schema: verify finds it.
		s.produce(&kgo.Record{Topic: "shop.order_events.v1", Key: orderEvents[0].Key, Value: append(slices.Clone(orderEvents[0].Value), 0)})
		out, err = s.runToEnd(2*time.Minute, "verify", "--config", s.config)
		if err == nil || !strings.Contains(out, "entity events.Order: topic shop.order_events.v1 has 2 events") || !strings.Contains(out, ": 1 do not") ||
			!strings.Contains(out, "1 bytes past the end of the shop.v1.OrderEvent") {
			t.Errorf("cdc verify with a record past its schema's value (%v):\n%s", err, out)
		}
	})
}

// Under on_error: stop, an event its schema does not describe stops the
// daemon with what is wrong and where; nothing of its transaction is sent.
func TestAnOutboxEventThatDoesNotFitStopsTheDaemon(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.editConfig("    on_error: dead_letter\n    outbox:", "    on_error: stop\n    outbox:")
		s.start()
		s.waitCustomersMatch()
		s.exec("BEGIN;\n" +
			outboxInsert("Customer", "'1'", "EmailChanged", `{"customer_id": 1, "email": "a@example.com", "at": 0}`) + ";\n" +
			outboxInsert("Customer", "'1'", "EmailChanged", `{"customer_id": 1, "email": "a@example.com", "at": 0, "password": "x"}`) + ";\n" +
			"COMMIT")
		s.mustExit(`entity "events.Customer", field "payload"`, `column payload value`, `at position`,
			`payload.password: is not a field of shop.v1.CustomerEvent (has: customer_id, email, at)`,
			"fix what the application writes into the outbox, or the route's schema")
		if n := s.recordCount("shop.customer_events.v1"); n != 0 {
			t.Errorf("%d records of the stopped transaction were sent", n)
		}
	})
}

// A route's schema that its subject's history refuses stops the daemon
// before anything is produced, as a table entity's does.
func TestTheRegistryRefusesAnIncompatibleRouteSchema(t *testing.T) {
	registry := harness.NewRegistry()
	defer registry.Close()
	older := strings.Replace(readFile(t, "../schemas/order_event.v1.avsc"), `{"name": "customer_id", "type": "long"}`, `{"name": "customer_id", "type": "string"}`, 1)
	if _, _, err := registry.RegisterSchema("shop.order_events.v1-value", sr.Schema{Schema: older}); err != nil {
		t.Fatal(err)
	}
	if err := registry.SetCompat("shop.order_events.v1-value", sr.CompatBackward); err != nil {
		t.Fatal(err)
	}
	s := newScenario(t)
	s.editConfig("# schema_registry: http://127.0.0.1:8081", "schema_registry: "+registry.URL())
	out, err := s.validateOutput()
	if err == nil || !strings.Contains(out, `entity "events.Order"`) || !strings.Contains(out, `field "customer_id"`) {
		t.Errorf("cdc validate accepts the route schema, or does not say why (%v):\n%s", err, out)
	}
	s.start()
	s.mustExit(`entity "events.Order": schema shop.v1.OrderEvent:`, "is not BACKWARD compatible with subject shop.order_events.v1-value")
	if n := s.recordCount("shop.customer.v1"); n != 0 {
		t.Fatalf("%d records produced although a route schema is incompatible", n)
	}
}

// Transactions of known shapes, written while the daemon is killed and
// restarted: every record says its transaction, and the transaction topic's
// record of each counts exactly what the topics received for it.
func TestTransactionBoundariesMatchWhatTheTopicsReceived(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.start()
		s.waitCustomersMatch()
		shapes := []string{
			// one row
			"UPDATE customer SET balance = balance + 1 WHERE customer_id = 1",
			// many rows over several entities, an outbox event among them
			"BEGIN;\nUPDATE customer SET balance = balance + 1 WHERE customer_id = 1;\nUPDATE customer SET balance = balance + 1 WHERE customer_id = 3;\n" +
				outboxInsert("Customer", "'3'", "BalanceChanged", `{"customer_id": 3, "email": "grace@example.com", "at": 0}`) + ";\nCOMMIT",
			// a row the entities do not show, beside one they do
			"BEGIN;\nUPDATE customer SET internal_flags = internal_flags + 1 WHERE customer_id = 1;\nUPDATE customer SET balance = balance + 1 WHERE customer_id = 3;\nCOMMIT",
			// only hidden columns: no record, no transaction record
			"BEGIN;\nUPDATE customer SET internal_flags = internal_flags + 1 WHERE customer_id = 1;\nUPDATE customer SET internal_flags = internal_flags + 1 WHERE customer_id = 3;\nCOMMIT",
			// an outbox row written and cleaned up
			"BEGIN;\n" + outboxInsert("Customer", "'1'", "Seen", `{"customer_id": 1, "email": "ada@example.com", "at": 0}`) + ";\nDELETE FROM outbox;\nCOMMIT",
		}
		if !s.mysql {
			// a row one entity filters out (order_v2's where) and another shows
			shapes = append(shapes, "UPDATE orders SET etl_batch = coalesce(etl_batch, 0) + 1, total = total + 1 WHERE order_id = 'b1ffcd88-8d1a-4ef8-bb6d-6bb9bd380a22'")
		}
		deadline := time.Now().Add(4 * time.Second)
		for round := 0; time.Now().Before(deadline); round++ {
			for _, sql := range shapes {
				s.exec(sql)
			}
			if round%5 == 4 {
				s.daemons[len(s.daemons)-1].Kill()
				s.start()
			}
		}
		s.verified()
		s.checkTransactions(map[string]bool{"shop.customer_events.v1": true})
	})
}

// eventCodec decodes an outbox route's records with an independent decoder.
func (s *scenario) eventCodec(schemaFile, keySchema string) *harness.Codec {
	s.t.Helper()
	root, _ := filepath.Abs("..")
	codec, err := harness.NewCodec(filepath.Join(root, "schemas", schemaFile), keySchema)
	if err != nil {
		s.t.Fatal(err)
	}
	return codec
}

// waitRecords waits until a topic holds at least n records, and returns them.
func (s *scenario) waitRecords(topic string, n int) []harness.Record {
	s.t.Helper()
	var records []harness.Record
	err := harness.Eventually(60*time.Second, func() (bool, error) {
		if !s.topicExists(topic) {
			return false, s.daemonsAlive()
		}
		records = s.readTopic(topic)
		return len(records) >= n, s.daemonsAlive()
	})
	if err != nil {
		s.t.Fatalf("topic %s holds %d records, want %d: %v", topic, len(records), n, err)
	}
	return records
}

// checkTransactions reads the entity topics (and the event topics given) and
// the transaction topic, and checks that each record's transaction headers
// agree with its transaction's record: its index within the count, and per
// topic, as many distinct records (by ce_id: a restart may send one again)
// as the transaction's record says.
func (s *scenario) checkTransactions(eventTopics map[string]bool) {
	s.t.Helper()
	topics := []string{"shop.customer.v1"}
	if !s.mysql {
		topics = append(topics, "shop.order.v1", "shop.order.v2")
	}
	for topic := range eventTopics {
		if s.topicExists(topic) {
			topics = append(topics, topic)
		}
	}
	type seen struct {
		perTopic map[string]map[string]bool // topic → ce_ids (dead letters: positions)
		indexes  map[int]bool
		count    string
	}
	txs := map[string]*seen{}
	for _, topic := range topics {
		for _, r := range s.readTopic(topic) {
			id := r.Headers["cdc_tx_id"]
			if id == "" {
				if r.Headers["cdc_op"] != "r" {
					s.t.Fatalf("a streamed record of %s at offset %d has no cdc_tx_id: %v", topic, r.Offset, r.Headers)
				}
				continue
			}
			tx := txs[id]
			if tx == nil {
				tx = &seen{perTopic: map[string]map[string]bool{}, indexes: map[int]bool{}}
				txs[id] = tx
			}
			name := cmp.Or(r.Headers["ce_id"], "dead letter of "+r.Headers["cdc_entity"]+" at "+r.Headers["cdc_position"])
			if tx.perTopic[topic] == nil {
				tx.perTopic[topic] = map[string]bool{}
			}
			tx.perTopic[topic][name] = true
			index, _ := strconv.Atoi(r.Headers["cdc_tx_index"])
			tx.indexes[index] = true
			if c := r.Headers["cdc_tx_count"]; tx.count != "" && c != tx.count {
				s.t.Errorf("transaction %s: records say %s and %s records", id, tx.count, c)
			} else {
				tx.count = c
			}
		}
	}
	codec, err := goavro.NewCodec(transactionSchema)
	if err != nil {
		s.t.Fatal(err)
	}
	ends := map[string]string{}
	for _, r := range s.readTopic("shop.transactions") {
		native, rest, err := codec.NativeFromBinary(r.Value[10:]) // after the single-object header
		if err != nil || len(rest) > 0 {
			s.t.Fatalf("transaction record %x: %v", r.Value, err)
		}
		end := native.(map[string]any)
		id := end["id"].(string)
		counts := map[string]int{}
		for _, c := range end["topics"].([]any) {
			tc := c.(map[string]any)
			counts[tc["topic"].(string)] = int(tc["count"].(int64))
		}
		text, _ := json.Marshal(end)
		if earlier, ok := ends[id]; ok && earlier != string(text) {
			s.t.Errorf("transaction %s was ended twice, differently:\n%s\n%s", id, earlier, text)
		}
		ends[id] = string(text)
		tx := txs[id]
		if tx == nil {
			s.t.Errorf("transaction %s has a record in the transaction topic but none in the topics: %s", id, text)
			continue
		}
		got := map[string]int{}
		total := 0
		for topic, records := range tx.perTopic {
			got[topic] = len(records)
			total += len(records)
		}
		if !maps.Equal(got, counts) || int64(total) != end["record_count"].(int64) {
			s.t.Errorf("transaction %s: its record counts %v (%d), the topics received %v", id, counts, end["record_count"], got)
		}
		if tx.count != "" && tx.count != strconv.Itoa(total) {
			s.t.Errorf("transaction %s: its records say cdc_tx_count %s, it wrote %d", id, tx.count, total)
		}
		for i := 1; i <= total; i++ {
			if !tx.indexes[i] {
				s.t.Errorf("transaction %s: no record has cdc_tx_index %d of %d", id, i, total)
			}
		}
	}
	missing := slices.DeleteFunc(slices.Collect(maps.Keys(txs)), func(id string) bool { _, ok := ends[id]; return ok })
	if len(missing) > 0 {
		s.t.Errorf("%d transactions have records but no end in the transaction topic: %v", len(missing), missing)
	}
	s.t.Logf("%d transactions checked", len(ends))
}

// transactionSchema is the transaction topic's value schema, as docs/delivery.md gives it.
const transactionSchema = `{"type": "record", "name": "Transaction", "namespace": "cdc", "fields": [
  {"name": "id", "type": "string"},
  {"name": "commit_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "position", "type": "string"},
  {"name": "record_count", "type": "long"},
  {"name": "topics", "type": {"type": "array", "items": {"type": "record", "name": "TopicCount",
    "fields": [{"name": "topic", "type": "string"}, {"name": "count", "type": "long"}]}}}]}`

// cdc validate maps the rows an outbox holds as the daemon would map their
// inserts: a payload the application writes that its route's schema does not
// describe is found before it stops the daemon.
func TestValidateChecksTheRowsAnOutboxHolds(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.exec(outboxInsert("Customer", "'1'", "EmailChanged", `{"customer_id": 1, "email": "a@example.com", "at": 0}`))
		out, err := s.validateOutput()
		if err != nil || !strings.Contains(out, "ok: the 1 rows of outbox "+s.tableName("outbox")+" (at most 1000 read) fit their routes' schemas") {
			t.Fatalf("cdc validate on a good outbox row (%v):\n%s", err, out)
		}
		s.exec(outboxInsert("Customer", "'2'", "EmailChanged", `{"customer_id": 2, "email": "b@example.com"}`))
		out, err = s.validateOutput()
		if err == nil || !strings.Contains(out, `entity "events.Customer", field "payload"`) || !strings.Contains(out, "payload.at: is missing, and the schema gives it no default") {
			t.Fatalf("cdc validate on a row missing a field (%v):\n%s", err, out)
		}
	})
}

// On PostgreSQL, events written with pg_logical_emit_message(true, route,
// payload) are an outbox without a table, with the same checks.
func TestLogicalMessagesAreAnOutboxWithoutATable(t *testing.T) {
	s := newScenario(t)
	root, _ := filepath.Abs("..")
	s.editConfig("\n  - name: events\n", fmt.Sprintf(`
  - name: emitted
    on_error: dead_letter
    outbox:
      messages: true
      key: order_id
      routes:
        shop.order: {topic: shop.emitted_orders.v1, schema: %s/schemas/order_event.v1.avsc}

  - name: events
`, root))
	d := s.start()
	s.waitCustomersMatch()
	orderID := "d3bbef66-6f38-4ef8-bb6d-6bb9bd380a44"
	emit := func(transactional bool, prefix, payload string) string {
		return fmt.Sprintf(`SELECT pg_logical_emit_message(%t, '%s', '%s')`, transactional, prefix, payload)
	}
	s.exec(
		"BEGIN;\nINSERT INTO orders (order_id, customer_id, status_code, total) VALUES ('"+orderID+"', 3, 1, 31.40);\n"+
			emit(true, "shop.order", fmt.Sprintf(orderEventPayload, orderID))+";\nCOMMIT",
		"BEGIN;\n"+emit(true, "shop.order", fmt.Sprintf(orderEventPayload, orderID))+";\nROLLBACK",
		emit(false, "shop.order", fmt.Sprintf(orderEventPayload, orderID)),
		emit(true, "someone.else", `not json`),
		emit(true, "shop.order", `{"order_id": "`+orderID+`", "customer_id": 3, "status": "LOST", "total": "1.00"}`),
	)
	s.waitLog(d, "skipped a logical message with an outbox route's prefix written outside a transaction")
	letters := s.waitRecords(s.deadLetterTopic(), 1)
	if reason := letters[0].Headers["cdc_error"]; !strings.Contains(reason, `entity "emitted.shop.order", field "payload"`) || !strings.Contains(reason, `"LOST" is not a symbol of enum shop.v1.OrderEventStatus`) {
		t.Errorf("dead letter: %s", reason)
	}
	records := s.waitRecords("shop.emitted_orders.v1", 1)
	codec := s.eventCodec("order_event.v1.avsc", outboxKeySchema)
	if key, _ := codec.Key(records[0].Key); key != `{"aggregate_id":"`+orderID+`"}` {
		t.Errorf("key %s", key)
	}
	if value, err := codec.Value(records[0].Value); err != nil || value["order_id"] != orderID || fmt.Sprint(value["total"]) != "157/5" {
		t.Errorf("value %v (%v)", value, err)
	}
	if h := records[0].Headers; h["ce_type"] != "shop.order" || h["cdc_tx_count"] != "3" {
		t.Errorf("headers %v: want the route as ce_type, and the order's two records and the event in one transaction", h)
	}
	time.Sleep(time.Second)
	if n := s.recordCount("shop.emitted_orders.v1"); n != 1 {
		t.Errorf("%d records, want 1: the rolled back and the non-transactional messages publish nothing", n)
	}
	out := s.verified()
	if !strings.Contains(out, "entity emitted.shop.order: topic shop.emitted_orders.v1 has 1 events") {
		t.Errorf("cdc verify:\n%s", out)
	}
}

// Under binlog_row_image MINIMAL an INSERT logs only the columns it sets: the
// outbox's other columns are read back. A row deleted before that (the
// usual clean-up, in the same transaction) must not lose its event: it is a
// value error, never a silent delete.
func TestAnOutboxRowTheLogCutShortIsNeverLost(t *testing.T) {
	s := newMySQLScenario(t)
	s.rowImage = "MINIMAL"
	// MariaDB logs a default of current_timestamp, not a constant one.
	s.exec("ALTER TABLE outbox MODIFY created_at timestamp(6) NOT NULL DEFAULT '2026-01-01 00:00:00'")
	s.start()
	s.waitCustomersMatch()
	s.exec(
		// created_at, which gives ce_time, is the column's default: not logged, read back.
		outboxInsert("Customer", "'1'", "EmailChanged", `{"customer_id": 1, "email": "a@example.com", "at": 0}`),
		// ... and gone before it could be.
		"BEGIN;\n"+outboxInsert("Customer", "'2'", "EmailChanged", `{"customer_id": 2, "email": "b@example.com", "at": 0}`)+";\nDELETE FROM outbox WHERE aggregateid = '2';\nCOMMIT",
	)
	records := s.waitRecords("shop.customer_events.v1", 1)
	if key, _ := s.eventCodec("customer_event.v1.avsc", customerEventKey).Key(records[0].Key); key != `{"aggregate_id":"1"}` || records[0].Headers["ce_time"] != "2026-01-01T00:00:00Z" {
		t.Errorf("the event read back: key %s, headers %v", key, records[0].Headers)
	}
	letters := s.waitRecords(s.deadLetterTopic(), 1)
	if reason := letters[0].Headers["cdc_error"]; !strings.Contains(reason, "the log did not carry column created_at of this outbox row") {
		t.Errorf("dead letter: %s", reason)
	}
	time.Sleep(time.Second)
	if n := s.recordCount("shop.customer_events.v1"); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
}

// With kafka.headers: compact, records carry what tells them apart and not
// what every record of a topic shares; the topics stay equal to the tables.
func TestCompactHeadersKeepWhatTellsRecordsApart(t *testing.T) {
	s := newScenario(t)
	s.editConfig("  exactly_once: false", "  exactly_once: false\n  headers: compact")
	s.start()
	s.waitCustomersMatch()
	s.exec(`UPDATE customer SET email = 'compact@example.com' WHERE customer_id = 1`)
	records := s.waitRecords("shop.customer.v1", 4)
	for _, r := range records {
		h := r.Headers
		if h["ce_id"] == "" || h["ce_type"] != "customer" || h["cdc_op"] == "" || h["ce_specversion"] != "" || h["ce_source"] != "" || h["content-type"] != "" {
			t.Errorf("record at offset %d of partition %d: headers %v", r.Offset, r.Partition, h)
		}
		if h["cdc_op"] == "u" && (h["cdc_position"] == "" || h["cdc_tx_id"] == "" || h["ce_time"] == "") {
			t.Errorf("the update's record lacks its position, transaction or time: %v", h)
		}
	}
	s.verified()
}
