package integration

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
)

// An entity added to a connector that has streamed (here a v2 topic of the
// customer table beside v1) is backfilled while streaming goes on, under a
// workload that updates and deletes the rows being read. The v2 topic ends
// equal to the table, with no value of a key older than one before it; v1
// gets no read again.
func TestOnlineBackfillOfAnAddedEntityUnderWrites(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		const rows = 20_000
		s.exec(s.bulk(rows))
		s.editConfig("  backfill_chunk_size: 10000", "  backfill_chunk_size: 1000")
		d := s.start()
		s.waitCustomersMatch()
		if err := d.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		v1Reads := s.readsIn("shop.customer.v1")

		w := s.startWriter(rows)
		if s.mysql {
			s.editConfig("    # watermark_table: ", "    watermark_table: ")
		}
		s.addEntity("customer", "customer_v2", "shop.customer.v1", "shop.customer.v2")
		d = s.start()
		s.waitTableRead(d, "customer")
		if n := w.finish(t); n < 100 {
			t.Errorf("the writer committed %d transactions during the backfill: too few to test its windows", n)
		}
		records := s.waitMatch("shop.customer.v2", s.customer, s.customerProjection())
		checkValuesRise(t, s.customer, records, "balance", repeatsAllowed)
		s.waitCustomersMatch()
		if n := s.readsIn("shop.customer.v1"); n != v1Reads {
			t.Errorf("v1 holds %d snapshot reads after the backfill of v2, %d before: the backfill was sent to v1 too", n, v1Reads)
		}
		for _, want := range []string{"entities added after the initial snapshot are backfilled while streaming", "backfill of table started"} {
			if !strings.Contains(d.Logs(), want) {
				t.Errorf("the daemon did not log %q", want)
			}
		}
	})
}

// cdc snapshot --online asks the running daemon, through the database's log,
// to fill an entity again while it streams. Killed half-way, the daemon goes
// on with the chunk after the last one stored; the topic ends equal to the
// table, with no value of a key older than one before it (in exactly-once
// mode, where a restart sends nothing twice).
func TestOnlineSnapshotCommandRefillsWhileStreamingAndResumesAfterAKill(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		const rows = 100_000
		s.exec(s.bulk(rows))
		// Small chunks: the backfill takes seconds (a chunk is a transaction
		// of its own), and the kill falls inside it.
		s.editConfig("  backfill_chunk_size: 10000", "  backfill_chunk_size: 100", "exactly_once: false", "exactly_once: true")
		// Asked where it cannot be met, the request is refused with the fix:
		// before the connector's first start (PostgreSQL: no slot to see it),
		// without a watermark table (MySQL).
		want := "the connector has not started"
		if s.mysql {
			want = "set source.mysql.watermark_table"
		}
		if out, err := s.runToEnd(60*time.Second, "snapshot", "--online", "--config", s.config); err == nil || !strings.Contains(out, want) {
			t.Errorf("cdc snapshot --online where it cannot be met: %v, want an error saying %q:\n%s", err, want, out)
		}
		if s.mysql {
			s.editConfig("    # watermark_table: ", "    watermark_table: ")
		}
		d := s.start()
		s.waitCustomersMatch()
		before := s.readsIn("shop.customer.v1")

		w := s.startWriter(rows)
		out, err := s.runToEnd(60*time.Second, "snapshot", "--online", "--entity", "customer", "--config", s.config)
		if err != nil || !strings.Contains(out, "asked the connector's cdc run to backfill") {
			t.Fatalf("cdc snapshot --online: %v\n%s", err, out)
		}
		ordersBefore := 0
		if !s.mysql {
			// A second request while the first runs adds its table to it.
			ordersBefore = s.readsIn("shop.order.v1")
			if out, err := s.runToEnd(60*time.Second, "snapshot", "--online", "--entity", "order", "--config", s.config); err != nil {
				t.Fatalf("cdc snapshot --online --entity order: %v\n%s", err, out)
			}
		}
		// A backfill that ends before its progress is seen is reported below.
		// The stored position carries the backfill while it runs, and the
		// last key it read once a chunk is handed over.
		if err := harness.Eventually(60*time.Second, func() (bool, error) {
			return strings.Contains(s.checkpoint(), "after="), s.daemonsAlive()
		}); err != nil {
			t.Fatalf("no backfill progress stored: %v", err)
		}
		d.Kill()
		if !strings.Contains(s.checkpoint(), " backfill=") {
			t.Fatal("the backfill finished before the kill: the test did not test a resumed backfill (make the table larger)")
		}
		d = s.start()
		s.waitTableRead(d, "customer")
		w.finish(t)
		if !regexp.MustCompile(`backfill of table started.*resumed_after_key=\[\d+\]`).MatchString(d.Logs()) {
			t.Errorf("the restart did not resume the backfill after a key:\n%s", d.Logs())
		}
		records := s.waitCustomersMatch()
		checkValuesRise(t, s.customer, records, "balance", repeatsAllowed)
		if !s.mysql {
			s.waitMatch("shop.order.v1", s.order, orderProjection)
			if s.readsIn("shop.order.v1") == ordersBefore {
				t.Error("the second request did not backfill the orders")
			}
		}
		reads := s.readsIn("shop.customer.v1") - before
		t.Logf("%d backfill reads for a table of about %d rows", reads, rows)
		if reads >= 2*rows {
			t.Errorf("%d backfill reads for a table of %d rows: the restart read it from the start again", reads, rows)
		}
	})
}

// addEntity adds an entity to the configuration: a copy of an existing one
// under another name and topic.
func (s *scenario) addEntity(from, name, fromTopic, topic string) {
	s.t.Helper()
	data, err := os.ReadFile(s.config)
	if err != nil {
		s.t.Fatal(err)
	}
	start := strings.Index(string(data), "  - name: "+from+"\n")
	if start < 0 {
		s.t.Fatalf("addEntity: no entity %s in the configuration", from)
	}
	block := string(data[start:])
	if end := strings.Index(block, "\n\n"); end >= 0 {
		block = block[:end+1]
	}
	added := strings.NewReplacer("name: "+from+"\n", "name: "+name+"\n", fromTopic, topic).Replace(block)
	s.editConfig(block, block+"\n"+added)
}

// readsIn counts a topic's snapshot and backfill reads.
func (s *scenario) readsIn(topic string) int {
	s.t.Helper()
	n := 0
	for _, r := range s.readTopic(topic) {
		if r.Headers["cdc_op"] == "r" {
			n++
		}
	}
	return n
}
