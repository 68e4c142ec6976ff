package integration

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdc-dev/cdc/integration/harness"
)

// PostgreSQL streams a transaction larger than logical_decoding_work_mem (64 kB
// on the test cluster) while it is decoded, in blocks interleaved with other
// transactions; cdc holds it and publishes it at its commit. What it
// publishes must be exactly what a connector sent whole transactions
// publishes: the same records, values, event ids and transaction headers.

// TestStreamedTransactionsPublishWhatWholeOnesDo runs two connectors on one
// database: one as configured by default (binary values, streamed
// transactions), the other with streaming and binary off, each to a broker
// of its own. A workload of streamed commits (two interleaved, the later
// one committing first), a rolled-back subtransaction, a streamed
// transaction rolled back whole and small transactions committed in the
// middle of streamed ones must give both brokers the same records.
func TestStreamedTransactionsPublishWhatWholeOnesDo(t *testing.T) {
	skipWithout(t, "streaming")
	s := newScenario(t)
	s.start()
	s.waitCustomersMatch()
	whole := s.twin("whole", "    slot: ", "    streaming: false\n    binary: false\n    slot: ")

	streamed, other := s.conn(), s.conn()
	defer streamed.Close(s.ctx)
	defer other.Close(s.ctx)
	on := func(conn *pgx.Conn) func(string) {
		return func(sql string) {
			t.Helper()
			if _, err := conn.Exec(s.ctx, sql); err != nil {
				t.Fatalf("%v\nin: %s", err, sql)
			}
		}
	}
	run, runOther := on(streamed), on(other)
	run(`BEGIN`)
	run(s.bulk(3000))
	// Another large transaction, streamed in blocks between this one's, which
	// commits first.
	runOther(`BEGIN`)
	runOther(strings.Replace(s.bulk(2000), "'bulk'", "'other'", 1))
	// Committed while the large transactions are open (and partly streamed):
	// published before them.
	s.exec(`UPDATE customer SET balance = balance + 1 WHERE customer_id = 1`, `UPDATE customer SET balance = balance + 2 WHERE customer_id = 2`)
	runOther(`UPDATE customer SET last_name = 'Other' WHERE email LIKE 'other%'`)
	runOther(`COMMIT`)
	run(`SAVEPOINT renamed`)
	run(`UPDATE customer SET first_name = 'RolledBack' WHERE email LIKE 'bulk%'`)
	run(`ROLLBACK TO SAVEPOINT renamed`)
	run(`SAVEPOINT pruned`)
	run(`DELETE FROM customer WHERE customer_id % 5 = 0 AND email LIKE 'bulk%'`)
	run(`RELEASE SAVEPOINT pruned`)
	run(`UPDATE customer SET last_name = 'Kept' WHERE customer_id % 3 = 0`)
	run(outboxInsert("Customer", "'1'", "EmailChanged", `{"customer_id": 1, "email": "streamed@example.com", "at": "2026-12-07T10:00:00Z"}`))
	run(`COMMIT`)
	// Streamed, then rolled back: nothing of it is published.
	s.exec(`BEGIN` + ";\n" + strings.Replace(s.bulk(3000), "'bulk'", "'aborted'", 1) + ";\nROLLBACK")
	s.exec(`UPDATE customer SET email = 'last@example.com' WHERE customer_id = 3`)

	records := s.waitCustomersMatch()
	for _, r := range records {
		if v, err := s.customer.Value(r.Value); err == nil && v != nil && v["first_name"] == "RolledBack" {
			t.Fatalf("a change of a rolled-back subtransaction was published: %v", v)
		}
	}
	if n := s.slotStat("cdc_"+s.name, "stream_txns"); n < 3 {
		t.Fatalf("the server streamed %d transactions to the default connector, want the three large ones: the test tests nothing", n)
	}
	if n := s.slotStat("cdc_"+s.name+"_whole", "stream_txns"); n != 0 {
		t.Fatalf("the server streamed %d transactions to the connector with streaming off", n)
	}
	for _, topic := range []string{"shop.customer.v1", "shop.customer_events.v1", "shop.transactions"} {
		s.sameStreamedRecords(topic, whole)
	}
}

// TestKillNineInTheMiddleOfAStreamedTransaction kills the daemon while it
// holds a streamed transaction on disk (streaming_memory_mib: 1), before its
// commit. The files it held leave nothing behind; the server streams the
// transaction again to the next run, which publishes every row exactly once.
func TestKillNineInTheMiddleOfAStreamedTransaction(t *testing.T) {
	skipWithout(t, "streaming")
	const rows = 20_000
	s := newScenario(t)
	spill := t.TempDir()
	s.editConfig("    slot: ", fmt.Sprintf("    streaming_memory_mib: 1\n    spill_directory: %s\n    slot: ", spill))
	d := s.start()
	base := len(s.waitCustomersMatch())

	open := s.conn()
	defer open.Close(s.ctx)
	for _, sql := range []string{`BEGIN`, s.bulk(rows)} {
		if _, err := open.Exec(s.ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	s.waitMetrics(d, "a streamed transaction held on disk", func(m map[string]float64) bool {
		return m[`cdc_source_held_transaction_bytes{where="disk"}`] > 0 && m[`cdc_source_held_transaction_bytes{where="memory"}`] > 0
	})
	if entries, _ := os.ReadDir(spill); len(entries) != 0 {
		t.Fatalf("the spill directory lists %d files: held transactions must be unlinked files, which a crash cannot leave behind", len(entries))
	}
	d.Kill()
	if _, err := open.Exec(s.ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	s.start()
	records := s.waitCustomersMatch()
	if got := len(records) - base; got != rows {
		t.Fatalf("%d records for the %d rows of the transaction, want each exactly once", got, rows)
	}
	for key, n := range s.recordsPerKey(records) {
		if n != 1 {
			t.Fatalf("key %s has %d records", key, n)
		}
	}
	if n := s.slotStat("cdc_"+s.name, "stream_txns"); n < 2 {
		t.Fatalf("the server streamed %d transactions, want the one transaction twice (before the kill and after)", n)
	}
}

// optionOff says the suite runs with a setting of the PostgreSQL source
// turned off (CDC_TEST_POSTGRES_OPTIONS, make test-postgres-modes).
func optionOff(setting string) bool {
	return strings.Contains(os.Getenv("CDC_TEST_POSTGRES_OPTIONS"), setting+": false")
}

// skipWithout skips a test of a mode of the PostgreSQL source when the suite
// runs with that mode off: it tests nothing then.
func skipWithout(t *testing.T, setting string) {
	if optionOff(setting) {
		t.Skipf("CDC_TEST_POSTGRES_OPTIONS turns %s off; make test runs this test", setting)
	}
}

// twin starts a second connector on the scenario's database, its
// configuration the scenario's with oldNew replaced, under its own name, slot
// and broker. It returns the twin broker's addresses.
func (s *scenario) twin(suffix string, oldNew ...string) []string {
	s.t.Helper()
	kafka, err := harness.StartKafka(0, "")
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(kafka.Close)
	config, err := os.ReadFile(s.config)
	if err != nil {
		s.t.Fatal(err)
	}
	edited := strings.NewReplacer(append([]string{"name: " + s.name + "\n", "name: " + s.name + "_" + suffix + "\n", "cdc_" + s.name, "cdc_" + s.name + "_" + suffix}, oldNew...)...).Replace(string(config))
	path := s.config + "." + suffix
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		s.t.Fatal(err)
	}
	brokers := kafka.ListenAddrs()
	d, err := harness.StartDaemon(cdcBin, append([]string{"SHOP_DSN=" + s.dsn, "KAFKA_BROKERS=" + strings.Join(brokers, ",")}, s.env...), "run", "--config", path)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		d.Kill()
		if s.t.Failed() {
			s.t.Logf("twin daemon log:\n%s", d.Logs())
		}
	})
	// Its slot's snapshot is where it starts: the workload must come after.
	conn := s.conn()
	defer conn.Close(s.ctx)
	if err := harness.Eventually(60*time.Second, func() (bool, error) {
		var ready bool
		err := conn.QueryRow(s.ctx, `SELECT count(*) > 0 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND confirmed_flush_lsn IS NOT NULL`, "cdc_"+s.name+"_"+suffix).Scan(&ready)
		if d.Exited() {
			return false, fmt.Errorf("the twin daemon exited:\n%s", d.Logs())
		}
		return ready, err
	}); err != nil {
		s.t.Fatal(err)
	}
	return brokers
}

// sameStreamedRecords waits until a topic holds the same streamed records
// (those of transactions, not of the snapshot) on the scenario's broker and
// on the twin's: keys, values and headers but ce_source, which names the
// connector, and ce_id, made from the connector's name and cdc_position.
func (s *scenario) sameStreamedRecords(topic string, twin []string) {
	s.t.Helper()
	streamed := func(brokers []string) ([]string, error) {
		records, err := harness.ReadTopic(s.ctx, brokers, topic)
		if err != nil {
			return nil, err
		}
		slices.SortStableFunc(records, func(a, b harness.Record) int { return int(a.Partition - b.Partition) })
		var out []string
		for _, r := range records {
			if r.Headers["cdc_tx_id"] == "" && !strings.Contains(topic, "transactions") {
				continue
			}
			var headers []string
			for k, v := range r.Headers {
				if k != "ce_source" && k != "ce_id" {
					headers = append(headers, k+"="+v)
				}
			}
			slices.Sort(headers)
			out = append(out, fmt.Sprintf("partition %d key %x value %x headers %v", r.Partition, r.Key, r.Value, headers))
		}
		return out, nil
	}
	var mine, theirs []string
	err := harness.Eventually(90*time.Second, func() (bool, error) {
		var err error
		if mine, err = streamed(s.brokers); err != nil {
			return false, err
		}
		theirs, err = streamed(twin)
		return err == nil && len(mine) > 0 && slices.Equal(mine, theirs), err
	})
	if err != nil {
		for i := range min(len(mine), len(theirs)) {
			if mine[i] != theirs[i] {
				s.t.Fatalf("%s: record %d differs:\nstreamed: %s\nwhole:    %s", topic, i, mine[i], theirs[i])
			}
		}
		s.t.Fatalf("%s: %d records streamed, %d whole: %v", topic, len(mine), len(theirs), err)
	}
	s.t.Logf("%s: the same %d records", topic, len(mine))
}

// slotStat reads a counter of pg_stat_replication_slots for a slot, waiting
// for the server to report it (the walsender flushes its counters about once a
// second).
func (s *scenario) slotStat(slot, counter string) int64 {
	s.t.Helper()
	conn := s.conn()
	defer conn.Close(s.ctx)
	var n int64
	_ = harness.Eventually(5*time.Second, func() (bool, error) {
		err := conn.QueryRow(s.ctx, `SELECT coalesce((SELECT `+counter+` FROM pg_catalog.pg_stat_replication_slots WHERE slot_name = $1), 0)`, slot).Scan(&n)
		return n > 0, err
	})
	return n
}
