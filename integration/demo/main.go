// Command demo runs cdc end to end on throwaway components: a private PostgreSQL
// cluster with the sample shop schema, an in-process Kafka-protocol broker, and
// the real daemon (a separate process) with config.example.yaml. It writes rows,
// and prints the entity events the daemon produced, decoded by `cdc tail`.
//
//	go run ./integration/demo -cdc bin/cdc [-keep]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc/integration/harness"
	"github.com/cdc-dev/cdc/pipeline"
	"github.com/cdc-dev/cdc/sink"
)

func main() {
	bin := flag.String("cdc", "bin/cdc", "the cdc binary")
	config := flag.String("config", "config.example.yaml", "the configuration to run")
	keep := flag.Bool("keep", false, "keep the database, broker and daemon running until interrupted")
	flag.Parse()
	if err := run(*bin, *config, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin, config string, keep bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	step("starting a throwaway PostgreSQL (wal_level=logical)")
	pg, err := harness.StartPostgres()
	if err != nil {
		return err
	}
	defer pg.Stop()
	dsn, err := pg.CreateDatabase(ctx, "shop")
	if err != nil {
		return err
	}
	if err := harness.Exec(ctx, dsn, harness.ShopSQL); err != nil {
		return err
	}
	fmt.Printf("  %s\n  loaded the sample shop schema: 3 customers, 2 orders (integration/harness/shop.sql)\n", dsn)

	step("starting an in-process Kafka-protocol broker")
	kafka, err := harness.StartKafka(0, "")
	if err != nil {
		return err
	}
	defer kafka.Close()
	brokers := kafka.ListenAddrs()
	fmt.Printf("  listening on %s\n", strings.Join(brokers, ","))

	env := []string{"SHOP_DSN=" + dsn, "KAFKA_BROKERS=" + strings.Join(brokers, ",")}
	step("running the daemon: " + bin + " run --config " + config)
	daemon := exec.Command(bin, "run", "--config", config)
	daemon.Env = append(os.Environ(), env...)
	logs, _ := daemon.StderrPipe()
	if err := daemon.Start(); err != nil {
		return err
	}
	go prefix(logs, "  [cdc] ")
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	defer func() {
		if daemon.ProcessState == nil {
			_ = daemon.Process.Kill()
		}
	}()

	wait := func(topic string, n int) error {
		return harness.Eventually(30*time.Second, func() (bool, error) {
			select {
			case err := <-exited:
				return false, fmt.Errorf("the daemon exited: %v", err)
			default:
			}
			records, err := harness.ReadTopic(ctx, brokers, topic)
			return len(records) >= n, err
		})
	}
	if err := wait("shop.customer.v1", 3); err != nil {
		return err
	}
	if err := wait("shop.order.v1", 2); err != nil {
		return err
	}
	tail := func(entity string, flags ...string) error {
		fmt.Printf("\n  $ cdc tail --entity %s%s\n", entity, strings.Join(append([]string{""}, flags...), " "))
		cmd := exec.CommandContext(ctx, bin, append([]string{"tail", "--config", config, "--entity", entity}, flags...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		fmt.Print(indent(string(out)))
		return err
	}
	step("the snapshot, as entity events (password_hash, internal_flags, updated_at and etl_batch stay hidden)")
	if err := tail("customer"); err != nil {
		return err
	}

	changes := []string{
		`INSERT INTO customer (email, first_name, last_name, balance) VALUES ('edsger@example.com', 'Edsger', 'Dijkstra', 42.00)`,
		`UPDATE customer SET email = 'ada@lovelace.org' WHERE customer_id = 1`,
		`UPDATE customer SET password_hash = md5('new'), internal_flags = 3 WHERE customer_id = 1   -- hidden columns only: no event`,
		`UPDATE orders SET status_code = 3, note = 'shipped' WHERE order_id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'`,
		`DELETE FROM customer WHERE customer_id = 2   -- cascades to order b1ffcd88…: two tombstones`,
		// The outbox pattern: the business change and the event it means, in one transaction.
		`BEGIN;
    INSERT INTO orders (order_id, customer_id, status_code, total) VALUES ('c2aade77-7e29-4ef8-bb6d-6bb9bd380a33', 3, 1, 31.40);
    INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('Order', 'c2aade77-7e29-4ef8-bb6d-6bb9bd380a33', 'OrderPlaced',
      '{"order_id": "c2aade77-7e29-4ef8-bb6d-6bb9bd380a33", "customer_id": 3, "status": "PLACED", "total": "31.40", "lines": [{"sku": "B-42", "quantity": 2}]}');
    DELETE FROM outbox;   -- the application's clean-up: publishes nothing
  COMMIT`,
		`INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('Order', 'c2aade77-7e29-4ef8-bb6d-6bb9bd380a33', 'OrderPaid',
    '{"order_id": "c2aade77-7e29-4ef8-bb6d-6bb9bd380a33", "customer_id": 3, "status": "PAYED", "total": "31.40"}')   -- not a symbol of the schema: a dead letter, not a record`,
	}
	step("writing to the database")
	for _, sql := range changes {
		fmt.Println("  " + sql)
		if err := harness.Exec(ctx, dsn, sql); err != nil {
			return err
		}
	}
	if err := wait("shop.customer.v1", 3+3); err != nil {
		return err
	}
	if err := wait("shop.order.v1", 2+2+1); err != nil {
		return err
	}
	if err := wait("shop.dead_letter", 1); err != nil {
		return err
	}
	step("the topics now (a tombstone is a key with \"value\": null; compaction keeps the last record per key)")
	if err := tail("customer"); err != nil {
		return err
	}
	if err := tail("order"); err != nil {
		return err
	}
	if err := wait("shop.order.v2", 2+2); err != nil {
		return err
	}
	step("version 2 of the order entity, from the same table: enum status, nested amount, computed fields; with the CloudEvents headers every record carries")
	if err := tail("order_v2", "--headers"); err != nil {
		return err
	}
	step("the outbox's event, encoded with its route's schema; the event whose status the schema lacks went to shop.dead_letter instead")
	if err := tail("events.Order", "--headers"); err != nil {
		return err
	}
	step("the transaction topic: each transaction's records per topic (every record above carries cdc_tx_id, cdc_tx_index and cdc_tx_count)")
	if err := tailTransactions(ctx, brokers); err != nil {
		return err
	}

	if keep {
		step("running until interrupted: try psql " + dsn + " and kcat -b " + brokers[0] + " -C -t shop.customer.v1")
		select {
		case <-ctx.Done():
		case err := <-exited:
			return fmt.Errorf("the daemon exited: %v", err)
		}
	}
	step("stopping the daemon (SIGTERM: in-flight records acknowledged, checkpoint stored)")
	_ = daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("the daemon did not stop cleanly: %v", err)
		}
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the daemon did not stop within 30s")
	}
	step("checking every topic against its table (materialized topic = mapping applied to the rows)")
	fmt.Println("  $ cdc verify --config " + config)
	verify := exec.CommandContext(ctx, bin, "verify", "--config", config)
	verify.Env = append(os.Environ(), env...)
	out, err := verify.Output() // the report; its log lines are left out
	fmt.Print(indent(string(out)))
	if err != nil {
		return fmt.Errorf("cdc verify: %v", err)
	}
	step("done")
	return nil
}

// tailTransactions prints the records of the transaction topic.
func tailTransactions(ctx context.Context, brokers []string) error {
	records, err := harness.ReadTopic(ctx, brokers, "shop.transactions")
	if err != nil {
		return err
	}
	header := sink.SingleObjectHeader(pipeline.TransactionSchema)
	for _, r := range records {
		var end pipeline.TransactionEnd
		if err := avro.Unmarshal(pipeline.TransactionSchema, bytes.TrimPrefix(r.Value, header), &end); err != nil {
			return fmt.Errorf("transaction topic, offset %d: %w", r.Offset, err)
		}
		line, _ := json.Marshal(end)
		fmt.Println("  " + string(line))
	}
	return nil
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

func prefix(r io.Reader, p string) {
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		fmt.Println(p + scanner.Text())
	}
}
