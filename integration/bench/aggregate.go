package main

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/cdc-dev/cdc/integration/harness"
)

// The aggregate stage: an order with its lines (children) and customer (a
// dimension), computed from the tables by cdc.
const (
	aggregateOrders = 100_000 // orders of customer 1: the fan-out of its rename
	aggregateTopic  = "bench.order.v1"
	markerTopic     = "bench.marker.v1"

	aggregateSchema = `{"type": "record", "name": "Order", "namespace": "bench.v1", "fields": [
  {"name": "id", "type": "long"},
  {"name": "status", "type": "string"},
  {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
    {"name": "line", "type": "int"}, {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}}]}}},
  {"name": "customer", "type": ["null", {"type": "record", "name": "Customer", "fields": [
    {"name": "id", "type": "long"}, {"name": "name", "type": "string"}]}]}]}`
	markerSchema = `{"type": "record", "name": "Marker", "namespace": "bench.v1", "fields": [{"name": "id", "type": "long"}]}`

	aggregateEntities = `
entities:
  - name: order_aggregate
    table: %[1]s.agg_order
    topic: ` + aggregateTopic + `
    schema: %[2]s/order.avsc
    key: [id]
    fields: {id: order_id, status: status}
    children:
      lines: {table: %[1]s.agg_line, join: {order_id: order_id}, order_by: [line_no], fields: {line: line_no, sku: sku, qty: qty, price: price}}
    dimensions:
      customer: {table: %[1]s.agg_customer, join: {customer_id: customer_id}, fields: {id: customer_id, name: name}}
  - name: marker
    table: %[1]s.agg_marker
    topic: ` + markerTopic + `
    schema: %[2]s/marker.avsc
    key: [id]
    fields: {id: id}
`
)

// aggregate measures an aggregate entity: the initial snapshot of its
// roots, the fan-out of a dimension change to 100,000 roots, and the drain
// of a backlog of mixed changes to its tables (with the queries and rows it
// read per change), against the table entity's drain of the same run.
func (b *bench) aggregate(ctx context.Context, t *table, db database, env []string, dir, source string, admin *kadm.Client, tableDrain float64) error {
	progress("loading the aggregate's tables")
	err := db.exec(ctx,
		`CREATE TABLE agg_customer (customer_id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL)`,
		`CREATE TABLE agg_order (order_id BIGINT PRIMARY KEY, customer_id BIGINT, status VARCHAR(20) NOT NULL, note VARCHAR(100))`,
		`CREATE INDEX agg_order_customer ON agg_order (customer_id)`,
		`CREATE TABLE agg_line (order_id BIGINT NOT NULL, line_no INT NOT NULL, sku VARCHAR(20) NOT NULL, qty INT NOT NULL, price DECIMAL(10,2) NOT NULL, PRIMARY KEY (order_id, line_no))`,
		`CREATE TABLE agg_marker (id BIGINT PRIMARY KEY)`,
		`INSERT INTO agg_customer SELECT n, 'customer name' FROM `+db.series(1, 1001),
		fmt.Sprintf(`INSERT INTO agg_order SELECT n, 1, 'OPEN', NULL FROM %s`, db.series(1, aggregateOrders)),
		fmt.Sprintf(`INSERT INTO agg_line SELECT n, 1, 'SKU-1', 1, 9.99 FROM %s`, db.series(1, aggregateOrders)),
		fmt.Sprintf(`INSERT INTO agg_line SELECT n, 2, 'SKU-2', 2, 19.99 FROM %s`, db.series(1, aggregateOrders)))
	if err != nil {
		return err
	}
	for name, text := range map[string]string{"order.avsc": aggregateSchema, "marker.avsc": markerSchema} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	config := filepath.Join(dir, "aggregate.yaml")
	if err := os.WriteFile(config, []byte(configText("bench_agg", db, fmt.Sprintf(aggregateEntities, db.schema(), dir))), 0o644); err != nil {
		return err
	}

	progress("snapshot of the aggregate")
	warmBrokerMemory()
	start := time.Now()
	d, err := b.startDaemon(env, config, source, "aggregate")
	if err != nil {
		return err
	}
	if err := waitTopicRecords(ctx, admin, d, aggregateTopic, aggregateOrders, 10*time.Minute); err != nil {
		return err
	}
	snapshot := float64(aggregateOrders) / time.Since(start).Seconds()
	t.add("aggregate", "cdc run (snapshot, roots)", snapshot, "table drain (rows)", tableDrain)

	progress("fan-out of a dimension change to %d roots", aggregateOrders)
	marker := 0
	mark := func() error {
		marker++
		return db.exec(ctx, fmt.Sprintf(`INSERT INTO agg_marker VALUES (%d)`, marker))
	}
	start = time.Now()
	if err := db.exec(ctx, `UPDATE agg_customer SET name = 'renamed' WHERE customer_id = 1`); err != nil {
		return err
	}
	if err := mark(); err != nil {
		return err
	}
	if err := waitTopicRecords(ctx, admin, d, markerTopic, int64(marker), 10*time.Minute); err != nil {
		return err
	}
	fanOut := float64(aggregateOrders) / time.Since(start).Seconds()
	t.add("aggregate", "cdc run (fan-out, roots)", fanOut, "table drain (rows)", tableDrain)
	if err := d.Stop(time.Minute); err != nil {
		return fmt.Errorf("stop after the fan-out: %v\n%s", err, d.Logs())
	}

	progress("writing a backlog of mixed changes to the aggregate's tables")
	changes, err := writeMixedBacklog(ctx, db)
	if err != nil {
		return err
	}
	if err := mark(); err != nil {
		return err
	}
	before, err := topicEnd(ctx, admin, aggregateTopic)
	if err != nil {
		return err
	}
	warmBrokerMemory()
	start = time.Now()
	if d, err = b.startDaemon(env, config, source, "aggregate-drain"); err != nil {
		return err
	}
	cpu := startCPU(d.Pid())
	if err := waitTopicRecords(ctx, admin, d, markerTopic, int64(marker), 10*time.Minute); err != nil {
		return err
	}
	elapsed := time.Since(start).Seconds()
	t.cpu("aggregate drain", cpu.stop(changes))
	after, err := topicEnd(ctx, admin, aggregateTopic)
	if err != nil {
		return err
	}
	addr, err := d.MetricsAddress(30 * time.Second)
	if err != nil {
		return err
	}
	m, err := harness.Scrape(addr)
	if err != nil {
		return err
	}
	label := `{entity="order_aggregate"}`
	t.add("aggregate", "cdc run (mixed backlog, changes)", float64(changes)/elapsed, "table drain (rows)", tableDrain)
	t.figure("aggregate drain: aggregate records per second", float64(after-before)/elapsed, "/s")
	t.figure("aggregate drain: records per change", float64(after-before)/float64(changes), "")
	t.figure("aggregate drain: queries per 1,000 changes", 1000*m["cdc_aggregate_queries_total"+label]/float64(changes), "")
	t.figure("aggregate drain: rows read per change", m["cdc_aggregate_rows_read_total"+label]/float64(changes), "")
	if err := d.Stop(time.Minute); err != nil {
		return fmt.Errorf("stop after the aggregate drain: %v\n%s", err, d.Logs())
	}
	return nil
}

// writeMixedBacklog writes transactions an order system writes: an order
// with three lines, a line's quantity, a line moved to another order, a
// customer renamed (about five orders each). It returns the row changes.
func writeMixedBacklog(ctx context.Context, db database) (int, error) {
	rng := rand.New(rand.NewSource(1))
	changes := 0
	tx := func(statements ...string) error {
		changes += len(statements)
		return db.exec(ctx, append(append([]string{"BEGIN"}, statements...), "COMMIT")...)
	}
	const orders = 5000
	for i := range orders {
		id := 1_000_000 + i
		err := tx(fmt.Sprintf(`INSERT INTO agg_order VALUES (%d, %d, 'NEW', NULL)`, id, 2+i%1000),
			fmt.Sprintf(`INSERT INTO agg_line VALUES (%d, 1, 'A', 1, 1.00)`, id),
			fmt.Sprintf(`INSERT INTO agg_line VALUES (%d, 2, 'B', 1, 2.00)`, id),
			fmt.Sprintf(`INSERT INTO agg_line VALUES (%d, 3, 'C', 1, 3.00)`, id))
		if err == nil {
			err = tx(fmt.Sprintf(`UPDATE agg_line SET qty = qty + 1 WHERE order_id = %d AND line_no = 1`, 1+rng.Intn(aggregateOrders)))
		}
		if err == nil && i%5 == 4 {
			err = tx(fmt.Sprintf(`UPDATE agg_customer SET name = '%s' WHERE customer_id = %d`, strings.Repeat("n", 1+rng.Intn(20)), 2+rng.Intn(1000)))
		}
		if err == nil && i%5 == 2 && i > 0 {
			err = tx(fmt.Sprintf(`UPDATE agg_line SET order_id = %d, line_no = %d WHERE order_id = %d AND line_no = 3`, id, 10+i, id-1))
		}
		if err != nil {
			return 0, err
		}
	}
	return changes, nil
}
