package integration

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
)

// An order aggregate: the order's row, its lines (children) and its
// customer (a dimension), one record per order; beside it, a table entity
// of the customers, whose records share the pipeline's memory with the
// aggregate's.
const (
	aggregateTablesPostgres = `
CREATE TABLE agg_customer (customer_id int PRIMARY KEY, name text NOT NULL, tier text);
CREATE TABLE agg_order (order_id int PRIMARY KEY, customer_id int, status text NOT NULL, internal_note text);
CREATE TABLE agg_line (order_id int NOT NULL, line_no int NOT NULL, sku text NOT NULL, qty int NOT NULL, PRIMARY KEY (order_id, line_no));
CREATE INDEX ON agg_order (customer_id);`
	aggregateTablesMySQL = `
CREATE TABLE agg_customer (customer_id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, tier VARCHAR(20));
CREATE TABLE agg_order (order_id INT PRIMARY KEY, customer_id INT, status VARCHAR(20) NOT NULL, internal_note VARCHAR(100), KEY (customer_id));
CREATE TABLE agg_line (order_id INT NOT NULL, line_no INT NOT NULL, sku VARCHAR(20) NOT NULL, qty INT NOT NULL, PRIMARY KEY (order_id, line_no));`
	aggregateRows = `
INSERT INTO agg_customer VALUES (1, 'Ada', 'gold'), (2, 'Grace', NULL);
INSERT INTO agg_order VALUES (1, 1, 'OPEN', 'call first'), (2, NULL, 'OPEN', NULL);
INSERT INTO agg_line VALUES (1, 1, 'A-1', 2), (1, 2, 'B-7', 1);`

	orderAggregateSchema = `{"type": "record", "name": "OrderAggregate", "namespace": "agg.v1", "fields": [
  {"name": "id", "type": "int"},
  {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
    {"name": "line", "type": "int"}, {"name": "sku", "type": "string"}, {"name": "quantity", "type": "int"}]}}},
  {"name": "status", "type": "string"},
  {"name": "customer", "type": ["null", {"type": "record", "name": "Customer", "fields": [
    {"name": "id", "type": "int"}, {"name": "name", "type": "string"}, {"name": "label", "type": "string"}]}]}
]}`
	orderAggregateKey = `{"type":"record","name":"OrderAggregateKey","namespace":"agg.v1","fields":[{"name":"id","type":"int"}]}`

	orderAggregateEntity = `  - name: order_aggregate
    table: %s.agg_order
    topic: agg.order.v1
    schema: %s
    key: [id]
    fields:
      id: order_id
      status: status
    children:
      lines:
        table: %[1]s.agg_line
        join: {order_id: order_id}
        order_by: [line_no]
        fields: {line: line_no, sku: sku, quantity: qty}
    dimensions:
      customer:
        table: %[1]s.agg_customer
        join: {customer_id: customer_id}
        fields:
          id: customer_id
          name: name
          label: {expr: "name + (tier == null ? '' : ' (' + tier + ')')"}
  - name: customer
    table: %[1]s.agg_customer
    topic: agg.customer.v1
    schema: %[3]s
    key: [id]
    fields: {id: customer_id, name: name}
`
	aggregateCustomerSchema = `{"type": "record", "name": "Customer", "namespace": "agg.v1", "fields": [{"name": "id", "type": "int"}, {"name": "name", "type": "string"}]}`
)

// aggregateScenario starts a scenario with the order aggregate on its tables.
func aggregateScenario(t *testing.T, mysql bool) (*scenario, *harness.Codec) {
	t.Helper()
	s := startScenario(t, mysql)
	schema, ddl := "public", aggregateTablesPostgres
	if mysql {
		schema, ddl = s.name, aggregateTablesMySQL
	}
	s.exec(ddl, aggregateRows)
	dir := writeSchemas(t, map[string]string{"order_aggregate.avsc": orderAggregateSchema, "customer.avsc": aggregateCustomerSchema})
	s.setEntities(fmt.Sprintf(orderAggregateEntity, schema, filepath.Join(dir, "order_aggregate.avsc"), filepath.Join(dir, "customer.avsc")))
	codec, err := harness.NewCodec(filepath.Join(dir, "order_aggregate.avsc"), orderAggregateKey)
	if err != nil {
		t.Fatal(err)
	}
	return s, codec
}

// ordersNow computes the aggregate from the tables with plain SQL: the
// expected state of the topic, by key, as JSON.
func (s *scenario) ordersNow() map[string]string {
	s.t.Helper()
	text := func(column string) string {
		if s.mysql {
			return "CAST(" + column + " AS CHAR)"
		}
		return column + "::text"
	}
	orders := s.project("SELECT " + text("order_id") + " AS k, " + text("coalesce(customer_id, -1)") + " AS customer, status FROM agg_order")
	lines := s.project("SELECT " + concat(s.mysql, text("order_id"), "'/'", text("line_no")) + " AS k, " + text("order_id") + " AS o, " + text("line_no") + " AS n, sku, " + text("qty") + " AS q FROM agg_line")
	customers := s.project("SELECT " + text("customer_id") + " AS k, name, coalesce(tier, '') AS tier FROM agg_customer")
	byOrder := map[string][]map[string]string{}
	for _, l := range lines {
		byOrder[l["o"]] = append(byOrder[l["o"]], l)
	}
	want := map[string]string{}
	for id, o := range orders {
		ls := byOrder[id]
		sort.Slice(ls, func(i, j int) bool { return atoi(ls[i]["n"]) < atoi(ls[j]["n"]) })
		items := []any{}
		for _, l := range ls {
			items = append(items, map[string]any{"line": atoi(l["n"]), "sku": l["sku"], "quantity": atoi(l["q"])})
		}
		var customer any
		if c, ok := customers[o["customer"]]; ok {
			label := c["name"]
			if c["tier"] != "" {
				label += " (" + c["tier"] + ")"
			}
			customer = map[string]any{"id": atoi(o["customer"]), "name": c["name"], "label": label}
		}
		want[fmt.Sprintf(`{"id":%s}`, id)] = mustJSON(map[string]any{"id": atoi(id), "status": o["status"], "lines": items, "customer": customer})
	}
	return want
}

// series is a derived table of one column n, from 1 to count, in the
// scenario database's dialect.
func (s *scenario) series(count int) string {
	if s.mysql {
		return fmt.Sprintf("(SELECT seq AS n FROM seq_1_to_%d) s", count)
	}
	return fmt.Sprintf("generate_series(1, %d) n", count)
}

func concat(mysql bool, parts ...string) string {
	if mysql {
		return "CONCAT(" + strings.Join(parts, ", ") + ")"
	}
	return strings.Join(parts, " || ")
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// plain turns what goavro decoded into plain JSON values: unions unwrapped,
// numbers as float64, as encoding/json reads them back.
func plain(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			for k, inner := range v {
				if strings.Contains(k, ".") { // a union's branch, by its full name
					return plain(inner)
				}
			}
		}
		out := map[string]any{}
		for k, inner := range v {
			out[k] = plain(inner)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = plain(v[i])
		}
		return out
	case int32:
		return int(v)
	case int64:
		return int(v)
	}
	return v
}

// orderState materializes the aggregate's topic as JSON per key, and
// returns its records.
func (s *scenario) orderState(codec *harness.Codec) (map[string]string, []harness.Record, error) {
	records, err := harness.ReadTopic(s.ctx, s.brokers, "agg.order.v1")
	if err != nil {
		return nil, nil, err
	}
	state, err := codec.Materialize(records)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]string{}
	for k, v := range state {
		out[k] = mustJSON(plain(v))
	}
	return out, records, nil
}

// waitOrdersMatch waits until the aggregate's topic equals the aggregate
// computed from the tables, and returns the topic's records.
func (s *scenario) waitOrdersMatch(codec *harness.Codec) []harness.Record {
	s.t.Helper()
	var records []harness.Record
	var last string
	err := harness.Eventually(120*time.Second, func() (bool, error) {
		if err := s.daemonsAlive(); err != nil {
			return false, err
		}
		got, recs, err := s.orderState(codec)
		if err != nil {
			return false, err
		}
		records = recs
		last = diffJSON(got, s.ordersNow())
		return last == "", nil
	})
	if err != nil {
		s.t.Fatalf("the order aggregate's topic never matched its tables: %v\n%s", err, truncate(last, 3000))
	}
	return records
}

func diffJSON(got, want map[string]string) string {
	var b strings.Builder
	n := 0
	for k, w := range want {
		if g := got[k]; g != w && n < 10 {
			n++
			fmt.Fprintf(&b, "key %s: topic %s, tables %s\n", k, orNone(g), w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && n < 10 {
			n++
			fmt.Fprintf(&b, "key %s: topic %s, not in the tables\n", k, g)
		}
	}
	if len(got) != len(want) {
		fmt.Fprintf(&b, "%d keys in the topic, %d in the tables\n", len(got), len(want))
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// recordsOf counts the records of a key.
func recordsOf(t *testing.T, codec *harness.Codec, records []harness.Record, key string) int {
	t.Helper()
	n := 0
	for _, r := range records {
		k, err := codec.Key(r.Key)
		if err != nil {
			t.Fatal(err)
		}
		if k == key {
			n++
		}
	}
	return n
}

// The order aggregate on both sources: a snapshot, an order inserted with
// its lines in one transaction (one record), line updates, a line moved to
// another order, deletes, a customer rename fanning out to more roots than
// a chunk, writers racing the recompute, a kill -9 in the middle of a
// fan-out; cdc verify finds the topic equal to the tables after each.
func TestOrderAggregate(t *testing.T) {
	for _, mysql := range []bool{false, true} {
		t.Run(map[bool]string{false: "postgres", true: "mysql"}[mysql], func(t *testing.T) {
			s, codec := aggregateScenario(t, mysql)
			s.start()
			s.waitOrdersMatch(codec)
			verify := func(when string) {
				t.Helper()
				out, err := s.runToEnd(2*time.Minute, "verify", "--config", s.config)
				if err != nil {
					t.Fatalf("cdc verify after %s: %v\n%s", when, err, out)
				}
			}

			// One transaction, one record.
			s.exec(`BEGIN;
INSERT INTO agg_order VALUES (3, 2, 'OPEN', 'x');
INSERT INTO agg_line VALUES (3, 1, 'C-1', 1), (3, 2, 'C-2', 2), (3, 3, 'C-3', 3);
COMMIT`)
			records := s.waitOrdersMatch(codec)
			if n := recordsOf(t, codec, records, `{"id":3}`); n != 1 {
				t.Errorf("order 3, inserted with its lines in one transaction, has %d records, want 1", n)
			}

			// Children change, move and go; a root goes with its children.
			s.exec(`UPDATE agg_line SET qty = 5 WHERE order_id = 1 AND line_no = 1`,
				`UPDATE agg_line SET order_id = 3, line_no = 4 WHERE order_id = 1 AND line_no = 2`,
				`DELETE FROM agg_line WHERE order_id = 3 AND line_no = 1`,
				`UPDATE agg_order SET internal_note = 'hidden' WHERE order_id = 3`,
				`UPDATE agg_order SET customer_id = 1 WHERE order_id = 2`)
			s.waitOrdersMatch(codec)
			s.exec("BEGIN;\nDELETE FROM agg_line WHERE order_id = 1;\nDELETE FROM agg_order WHERE order_id = 1;\nCOMMIT")
			records = s.waitOrdersMatch(codec)
			if last := lastOf(t, codec, records, `{"id":1}`); last == nil || last.Value != nil {
				t.Errorf("order 1 was deleted: its last record must be a tombstone")
			}

			// A dimension change fans out to every order of the customer:
			// 1,200 of them, more than two chunks of 500.
			s.exec(`INSERT INTO agg_order SELECT 1000 + n, 2, 'OPEN', NULL FROM `+s.series(1200),
				`INSERT INTO agg_line SELECT 1000 + n, 1, 'F-1', 1 FROM `+s.series(1200))
			s.waitOrdersMatch(codec)
			s.exec(`UPDATE agg_customer SET name = 'Grace H.', tier = 'silver' WHERE customer_id = 2`)
			s.waitOrdersMatch(codec)
			verify("the fan-out")

			// Writers racing the recompute.
			s.raceOrders(4, 3*time.Second)
			s.waitOrdersMatch(codec)
			verify("concurrent writers")

			// kill -9 while a fan-out is sent: the restart computes every
			// root of the customer again. 20,000 orders make the fan-out
			// long enough to kill it in the middle.
			s.exec(`INSERT INTO agg_order SELECT 10000 + n, 2, 'OPEN', NULL FROM ` + s.series(20000))
			s.waitOrdersMatch(codec)
			d := s.daemons[len(s.daemons)-1]
			addr, err := d.MetricsAddress(30 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			roots := func() float64 {
				m, err := harness.Scrape(addr)
				if err != nil {
					t.Fatal(err)
				}
				return m[`cdc_aggregate_roots_total{entity="order_aggregate"}`]
			}
			before := roots()
			s.exec(`UPDATE agg_customer SET name = 'Grace Hopper' WHERE customer_id = 2`)
			var seen float64
			if err := harness.Eventually(60*time.Second, func() (bool, error) { seen = roots(); return seen >= before+500, nil }); err != nil {
				t.Fatal(err)
			}
			d.Kill()
			if n := seen - before; n < 21000 {
				t.Logf("killed after %.0f roots of the fan-out were recomputed", n)
			} else {
				t.Log("the kill came after the whole fan-out was sent; the restart is checked all the same")
			}
			s.start()
			s.waitOrdersMatch(codec)
			verify("kill -9 during a fan-out")
		})
	}
}

func lastOf(t *testing.T, codec *harness.Codec, records []harness.Record, key string) *harness.Record {
	t.Helper()
	var last *harness.Record
	for i := range records {
		k, err := codec.Key(records[i].Key)
		if err != nil {
			t.Fatal(err)
		}
		if k == key {
			last = &records[i]
		}
	}
	return last
}

// raceOrders runs writers that change lines, move them between orders and
// rename customers, each in transactions of a few statements, for a while.
func (s *scenario) raceOrders(writers int, d time.Duration) {
	s.t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	deadline := time.Now().Add(d)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for time.Now().Before(deadline) {
				o := 1001 + rng.Intn(50)
				statements := []string{
					fmt.Sprintf(`UPDATE agg_line SET qty = qty + 1 WHERE order_id = %d`, o),
					fmt.Sprintf(`UPDATE agg_line SET order_id = %d, line_no = %d WHERE order_id = %d AND line_no = 1`, o+1, 100+rng.Intn(1000000), o),
					fmt.Sprintf(`UPDATE agg_customer SET tier = '%d' WHERE customer_id = 1`, rng.Intn(100)),
					fmt.Sprintf(`UPDATE agg_order SET customer_id = %d WHERE order_id = %d`, 1+rng.Intn(2), o),
					fmt.Sprintf(`INSERT INTO agg_line VALUES (%d, %d, 'R', 1)`, o, 2000000+w*1000000+rng.Intn(1000000)),
				}
				rng.Shuffle(len(statements), func(i, j int) { statements[i], statements[j] = statements[j], statements[i] })
				tx := "BEGIN;\n" + strings.Join(statements[:1+rng.Intn(3)], ";\n") + ";\nCOMMIT"
				var err error
				if s.mysql {
					err = maria.Exec(s.name, tx)
				} else {
					err = harness.Exec(s.ctx, s.dsn, tx)
				}
				if err == nil {
					mu.Lock()
					done++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if done == 0 {
		s.t.Fatal("no writer's transaction committed")
	}
	s.t.Logf("%d writers committed %d transactions", writers, done)
}

// An aggregate added to a connector that has streamed is backfilled while
// it streams: its root table is read in chunks, each root computed from a
// view, under writers that change its tables meanwhile.
func TestAggregateAddedLaterIsBackfilled(t *testing.T) {
	for _, mysql := range []bool{false, true} {
		t.Run(map[bool]string{false: "postgres", true: "mysql"}[mysql], func(t *testing.T) {
			s, codec := aggregateScenario(t, mysql)
			s.exec(`INSERT INTO agg_order SELECT 1000 + n, 1 + n % 2, 'OPEN', NULL FROM `+s.series(3000),
				`INSERT INTO agg_line SELECT 1000 + n, 1, 'F-1', 1 FROM `+s.series(3000))
			if mysql {
				s.editConfig("    # watermark_table: ", "    watermark_table: ")
			}
			full, err := os.ReadFile(s.config)
			if err != nil {
				t.Fatal(err)
			}
			head, rest, _ := strings.Cut(string(full), "  - name: order_aggregate\n")
			_, customer, _ := strings.Cut(rest, "  - name: customer\n")
			if err := os.WriteFile(s.config, []byte(head+"  - name: customer\n"+customer), 0o644); err != nil {
				t.Fatal(err)
			}
			d := s.start()
			if err := harness.Eventually(60*time.Second, func() (bool, error) {
				recs, err := harness.ReadTopic(s.ctx, s.brokers, "agg.customer.v1")
				return len(recs) >= 2, err
			}); err != nil {
				t.Fatal(err)
			}
			if err := d.Stop(30 * time.Second); err != nil {
				t.Fatal(err)
			}

			if err := os.WriteFile(s.config, full, 0o644); err != nil {
				t.Fatal(err)
			}
			d = s.start()
			s.raceOrders(2, 2*time.Second)
			s.waitOrdersMatch(codec)
			if !strings.Contains(d.Logs(), "entities added after the initial snapshot are backfilled while streaming") {
				t.Errorf("the daemon did not say it backfills the aggregate:\n%s", d.Logs())
			}
			if out, err := s.runToEnd(2*time.Minute, "verify", "--config", s.config); err != nil {
				t.Fatalf("cdc verify: %v\n%s", err, out)
			}
		})
	}
}

// A mapping mistake in an edge is reported by cdc validate and at start-up
// with its line, before anything is produced.
func TestAggregateMistakesAreRefusedWithTheirLine(t *testing.T) {
	s, _ := aggregateScenario(t, false)
	s.editConfig("join: {order_id: order_id}", "join: {order: order_id}")
	out, err := s.runToEnd(time.Minute, "validate", "--config", s.config)
	want := regexp.MustCompile(`cdc\.yaml:\d+: entity "order_aggregate", field "lines": join: public\.agg_line has no column order`)
	if err == nil || !want.MatchString(out) {
		t.Errorf("cdc validate: %v, want an error matching %s:\n%s", err, want, out)
	}
	s.start()
	s.mustExit("join: public.agg_line has no column order")
}

// A column an edge reads changed type under the running daemon, with no
// row change to show it in the log: the recheck of the catalog finds it no
// longer fits the edge's field, and the daemon stops before a view reads it.
func TestAggregateEdgeColumnRetypedStopsTheDaemon(t *testing.T) {
	s, codec := aggregateScenario(t, false)
	s.start()
	s.waitOrdersMatch(codec)
	s.exec(`ALTER TABLE agg_line ALTER COLUMN qty TYPE bigint`)
	s.mustExit(`the mapped tables changed`, `entity "order_aggregate", field "lines.quantity": column qty (bigint) cannot be held by "int"`)
}

// A dimension marked propagate: false recomputes no root when it changes:
// its values in a root's record are those read when the root last changed.
func TestFrozenDimensionKeepsTheValuesOfTheRootsLastChange(t *testing.T) {
	s, codec := aggregateScenario(t, false)
	s.editConfig("        join: {customer_id: customer_id}\n", "        join: {customer_id: customer_id}\n        propagate: false\n")
	s.start()
	s.waitOrdersMatch(codec)
	before, _, err := s.orderState(codec)
	if err != nil {
		t.Fatal(err)
	}
	s.exec(`UPDATE agg_customer SET name = 'Ada L.' WHERE customer_id = 1`,
		`UPDATE agg_order SET status = 'PAID' WHERE order_id = 2`) // a fence: order 2 has no customer
	records := waitRecordOf(t, s, codec, `{"id":2}`, `"status":"PAID"`)
	after, _, err := s.orderState(codec)
	if err != nil {
		t.Fatal(err)
	}
	if after[`{"id":1}`] != before[`{"id":1}`] {
		t.Errorf("order 1's record changed when its frozen customer did:\n%s\n%s", before[`{"id":1}`], after[`{"id":1}`])
	}
	if n := recordsOf(t, codec, records, `{"id":1}`); n != 1 {
		t.Errorf("order 1 has %d records, want 1 (the snapshot's)", n)
	}
	s.exec(`UPDATE agg_order SET status = 'PAID' WHERE order_id = 1`)
	waitRecordOf(t, s, codec, `{"id":1}`, `"name":"Ada L."`)
}

// waitRecordOf waits until the topic's last value of key contains text, and
// returns the topic's records.
func waitRecordOf(t *testing.T, s *scenario, codec *harness.Codec, key, text string) []harness.Record {
	t.Helper()
	var records []harness.Record
	var last string
	err := harness.Eventually(60*time.Second, func() (bool, error) {
		state, recs, err := s.orderState(codec)
		records, last = recs, state[key]
		return strings.Contains(last, text), err
	})
	if err != nil {
		t.Fatalf("the record of %s never held %s (last: %s): %v", key, text, last, err)
	}
	return records
}
