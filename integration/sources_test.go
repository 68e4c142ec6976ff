package integration

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
)

// Scenarios whose SQL both databases understand run once per source, on the
// sample shop schema of each.
var sourceScenarios = []struct {
	name  string
	start func(*testing.T) *scenario
}{
	{"postgres", newScenario},
	{"mysql", newMySQLScenario},
}

func forEachSource(t *testing.T, test func(t *testing.T, s *scenario)) {
	for _, src := range sourceScenarios {
		t.Run(src.name, func(t *testing.T) { test(t, src.start(t)) })
	}
}

func TestUpdateOfHiddenColumnsOnlyEmitsNothing(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.start()
		before := s.recordsPerKey(s.waitCustomersMatch())
		s.exec(`UPDATE customer SET password_hash = 'changed', internal_flags = 7, updated_at = now() WHERE customer_id = 1`,
			`UPDATE customer SET email = 'fence@example.com' WHERE customer_id = 2`) // a visible change after it, as a fence
		after := s.recordsPerKey(s.waitCustomersMatch())
		if after[`{"id":1}`] != before[`{"id":1}`] || after[`{"id":2}`] != before[`{"id":2}`]+1 || len(after) != len(before) {
			t.Fatalf("records per key before %v, after %v: want one more for key 2 (the fence) and none for key 1", before, after)
		}
	})
}

func TestKeyChangeEmitsTombstoneForTheOldKeyAndTheNewValue(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.start()
		s.waitCustomersMatch()
		s.exec(`UPDATE customer SET customer_id = 300 WHERE customer_id = 3`)
		records := s.waitCustomersMatch()
		last := map[string]bool{} // key -> last record is a tombstone
		for _, r := range records {
			key, _ := s.customer.Key(r.Key)
			last[key] = r.Value == nil
		}
		if tomb, ok := last[`{"id":3}`]; !ok || !tomb {
			t.Errorf("old key 3: last record is not a tombstone")
		}
		if tomb, ok := last[`{"id":300}`]; !ok || tomb {
			t.Errorf("new key 300: no value")
		}
	})
}

// snapshot.mode never streams from the start on: rows that were there before
// are not in the topic, changes after are.
func TestSnapshotModeNeverStreamsOnlyNewChanges(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.editConfig("  mode: initial", "  mode: never")
		d := s.start()
		if err := harness.Eventually(30*time.Second, func() (bool, error) {
			return strings.Contains(d.Logs(), "msg=streaming"), s.daemonsAlive()
		}); err != nil {
			t.Fatal(err)
		}
		s.exec(`UPDATE customer SET email = 'only-this@example.com' WHERE customer_id = 2`)
		if err := harness.Eventually(30*time.Second, func() (bool, error) {
			state, _, err := s.topicState("shop.customer.v1", s.customer)
			return len(state) == 1 && state[`{"id":2}`]["email"] == "only-this@example.com", err
		}); err != nil {
			t.Fatalf("want only customer 2 in the topic: %v", err)
		}
	})
}

// Rows written while the snapshot runs are neither lost nor sent twice: the
// stream starts exactly where the snapshot stands (PostgreSQL: the slot's
// exported snapshot; MySQL: the binlog position of the snapshot transaction).
func TestWritesDuringTheSnapshotAreNeitherLostNorDuplicated(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		const rows = 200_000
		snapshotMark := `msg="created replication slot"`
		if s.mysql {
			snapshotMark = `msg="snapshot started"`
		}
		s.exec(s.bulk(rows))
		w := s.startWriter(rows)
		d := s.start()
		// Count the transactions committed between the snapshot's point and the
		// start of streaming.
		var atSnapshot, atStream int64 = -1, -1
		if err := harness.Eventually(60*time.Second, func() (bool, error) {
			logs := d.Logs()
			if atSnapshot < 0 && strings.Contains(logs, snapshotMark) {
				atSnapshot = w.committed.Load()
			}
			if atSnapshot >= 0 && strings.Contains(logs, "msg=streaming") {
				atStream = w.committed.Load()
				return true, nil
			}
			return false, s.daemonsAlive()
		}); err != nil {
			t.Fatal(err)
		}
		duringSnapshot := atStream - atSnapshot
		time.Sleep(time.Second) // and some after
		total := w.finish(t)
		records := s.waitCustomersMatch()
		checkValuesRise(t, s.customer, records, "balance", repeatsRefused)
		t.Logf("%d writer transactions, about %d of them committed while the snapshot ran; %d records", total, duringSnapshot, len(records))
		if duringSnapshot == 0 {
			t.Fatal("no transaction committed during the snapshot: the test did not test the handoff (make the table larger)")
		}
	})
}

// A snapshot killed half-way resumes with the chunks it had not stored: the
// topic ends equal to the table, changes made while cdc was down included,
// and the rows read in all stay well below twice the table. An entity added
// while cdc is down ends equal to the table too.
func TestKillNineDuringTheSnapshotResumesWithTheNextChunk(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		const rows, chunk = 100_000, 5_000
		s.exec(s.bulk(rows))
		s.editConfig("  chunk_size: 100000", fmt.Sprintf("  chunk_size: %d", chunk))
		table := int64(len(s.project(`SELECT CAST(customer_id AS CHAR(20)) AS id FROM customer`)))
		cp := s.killHalfwayThroughTheSnapshot("shop.customer.v1", table)
		stored := regexp.MustCompile(`cursor=\S*after=(\d+)\S*table=\w+\.customer\b`).FindStringSubmatch(cp)
		if stored == nil {
			t.Fatalf("checkpoint %q: want a snapshot cursor inside the customer table", cp)
		}
		// Rows the first snapshot already produced, deleted or changed while cdc is down.
		s.exec(`DELETE FROM customer WHERE customer_id <= 500`, `UPDATE customer SET balance = 7 WHERE customer_id BETWEEN 501 AND 600`)
		const changes = 600
		// An entity added meanwhile misses the chunks read before: it is
		// backfilled once the snapshot is done.
		if s.mysql {
			s.editConfig("    # watermark_table: ", "    watermark_table: ")
		}
		s.addEntity("customer", "customer_v2", "shop.customer.v1", "shop.customer.v2")
		d := s.start()
		s.waitCustomersMatch()
		s.waitMatch("shop.customer.v2", s.customer, s.customerProjection())
		if !strings.Contains(d.Logs(), "resuming an interrupted snapshot with the chunks it had not read") ||
			!strings.Contains(d.Logs(), "resumed_after_key=["+stored[1]+"]") {
			t.Errorf("the restart did not say it resumed after key %s:\n%s", stored[1], d.Logs())
		}
		read := s.recordCount("shop.customer.v1") - changes
		t.Logf("%d rows, %d records of the snapshot in the topic (%.2fx), the kill after key %s", table, read, float64(read)/float64(table), stored[1])
		if float64(read) >= 1.3*float64(table) {
			t.Errorf("the snapshots sent %d records for a table of %d rows: want fewer than 1.3x", read, table)
		}
	})
}

// A table without a primary key is read in chunks of a unique index on NOT
// NULL columns (here two, as legacy schemas often have), and an interrupted
// snapshot goes on after the last chunk stored, as with a primary key (but
// not after the table's key changed meanwhile: that restart is refused with
// the fix). (A table with neither has no key an entity could use: see
// TestKeyThatDoesNotIdentifyRowsIsRefused.)
func TestSnapshotOfATableWithoutAPrimaryKeyResumesByAUniqueIndex(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		const rows, chunk = 100_000, 500 // small chunks: a snapshot long enough to be killed in the middle
		if s.mysql {
			s.exec(`CREATE TABLE gadget (code VARCHAR(20) NOT NULL, n INT NOT NULL, label VARCHAR(50) NOT NULL, UNIQUE KEY gadget_code_n (code, n))`,
				fmt.Sprintf(`INSERT INTO gadget SELECT CONCAT('g', seq %% 100), seq, CONCAT('label ', seq) FROM seq_1_to_%d`, rows))
		} else {
			s.exec(`CREATE TABLE gadget (code text NOT NULL, n integer NOT NULL, label text NOT NULL)`,
				`CREATE UNIQUE INDEX gadget_code_n ON gadget (code, n)`, `ALTER TABLE gadget REPLICA IDENTITY FULL`,
				fmt.Sprintf(`INSERT INTO gadget SELECT 'g' || (g %% 100), g, 'label ' || g FROM generate_series(1, %d) g`, rows))
		}
		const keySchema = `{"type":"record","name":"GadgetKey","namespace":"shop.v1","fields":[{"name":"code","type":"string"},{"name":"n","type":"int"}]}`
		dir := writeSchemas(t, map[string]string{"gadget.avsc": `{"type":"record","name":"Gadget","namespace":"shop.v1","fields":[
			{"name":"code","type":"string"},{"name":"n","type":"int"},{"name":"label","type":"string"}]}`})
		codec, err := harness.NewCodec(dir+"/gadget.avsc", keySchema)
		if err != nil {
			t.Fatal(err)
		}
		schema := s.name
		if !s.mysql {
			schema = "public"
		}
		s.setEntities(fmt.Sprintf("  - name: gadget\n    table: %s.gadget\n    topic: shop.gadget.v1\n    schema: %s/gadget.avsc\n    key: [code, n]\n    fields: {code: code, n: n, label: label}\n", schema, dir))
		s.editConfig("  chunk_size: 100000", fmt.Sprintf("  chunk_size: %d", chunk))
		projection := func(table string) string {
			if s.mysql {
				return `SELECT CONCAT('{"code":"', code, '","n":', n, '}') AS k, code, CAST(n AS CHAR) AS n, label FROM ` + table
			}
			return `SELECT format('{"code":"%s","n":%s}', code, n) AS k, code, n::text AS n, label FROM ` + table
		}

		cp := s.killHalfwayThroughTheSnapshot("shop.gadget.v1", rows)
		if !regexp.MustCompile(`cursor=\S*after=g\d+&after=\d+\S*table=\w+\.gadget\b`).MatchString(cp) {
			t.Fatalf("checkpoint %q: want a snapshot cursor inside gadget, after a key of its unique index", cp)
		}
		// A key changed while the snapshot was interrupted makes the stored
		// one meaningless: the restart refuses it, with the fix.
		s.exec(`ALTER TABLE gadget ADD PRIMARY KEY (n)`)
		s.start()
		s.mustExit("its key changed meanwhile", "delete the checkpoint")
		if s.mysql {
			s.exec(`ALTER TABLE gadget DROP PRIMARY KEY`)
		} else {
			s.exec(`ALTER TABLE gadget DROP CONSTRAINT gadget_pkey`)
		}
		d := s.start()
		s.waitMatch("shop.gadget.v1", codec, projection("gadget"))
		logs := d.Logs()
		for _, want := range []string{"table without a primary key: read in chunks of a unique index on NOT NULL columns", "columns=\"[code n]\"",
			`resumed_after_key="[g`} {
			if !strings.Contains(logs, want) {
				t.Errorf("the restart did not log %q:\n%s", want, logs)
			}
		}
		read := s.recordCount("shop.gadget.v1")
		t.Logf("%d rows, %d records in the topic (%.2fx) after the kill at %s", rows, read, float64(read)/rows, cp)
		if float64(read) >= 1.3*rows {
			t.Errorf("the snapshots sent %d records for a table of %d rows: want fewer than 1.3x", read, rows)
		}
	})
}

// killHalfwayThroughTheSnapshot starts the daemon, kills it with SIGKILL once
// the topic holds half the table's rows, and returns the stored checkpoint.
func (s *scenario) killHalfwayThroughTheSnapshot(topic string, rows int64) string {
	s.t.Helper()
	d := s.start()
	// A snapshot of 100,000 rows may last a tenth of a second: look often.
	if err := harness.Poll(5*time.Millisecond, 60*time.Second, func() (bool, error) {
		return s.recordCount(topic) > rows/2, s.daemonsAlive()
	}); err != nil {
		s.t.Fatal(err)
	}
	d.Kill()
	if strings.Contains(d.Logs(), "msg=streaming") {
		s.t.Fatal("the snapshot finished before the kill: the test did not test an interrupted snapshot (make the table larger)")
	}
	return s.checkpoint()
}

// stopOnceStreamingIsStored waits for the checkpoint of a streaming position
// (no snapshot under way) and stops the daemon cleanly.
func (s *scenario) stopOnceStreamingIsStored(d *harness.Daemon) {
	s.t.Helper()
	if err := harness.Eventually(30*time.Second, func() (bool, error) {
		cp := s.checkpoint()
		return cp != "" && !strings.Contains(cp, "snapshot") && !strings.Contains(cp, "cursor"), s.daemonsAlive()
	}); err != nil {
		s.t.Fatalf("no streaming checkpoint: %v", err)
	}
	if err := d.Stop(30 * time.Second); err != nil {
		s.t.Fatal(err)
	}
}

// A snapshot read by several workers sends what the serial one sends: every
// row once, field for field. Started while a writer updates, inserts and
// deletes, it hands over to streaming with neither gap nor repeat: the
// workers read one view, the one streaming starts after.
func TestParallelSnapshotEqualsTheSerialOne(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		const rows = 30_000
		s.exec(s.bulk(rows))
		s.editConfig("  chunk_size: 100000", "  chunk_size: 1000")
		if out, err := s.runToEnd(2*time.Minute, "snapshot", "--config", s.config); err != nil {
			t.Fatalf("serial cdc snapshot: %v\n%s", err, out)
		}
		// Another connector, on the same topics, reads them with 4 workers.
		s.editConfig("name: "+s.name, "name: "+s.name+"_parallel", "cdc_"+s.name, "cdc_"+s.name+"_p",
			"  chunk_size: 1000", "  chunk_size: 1000\n  parallelism: 4")
		out, err := s.runToEnd(2*time.Minute, "snapshot", "--config", s.config)
		if err != nil || !strings.Contains(out, "snapshot workers share one view") || !strings.Contains(out, "workers=4") {
			t.Fatalf("parallel cdc snapshot: %v, want its 4 workers logged:\n%s", err, out)
		}
		topics := []struct {
			name  string
			codec *harness.Codec
		}{{"shop.customer.v1", s.customer}}
		if !s.mysql { // the MySQL example maps the customers only
			topics = append(topics, struct {
				name  string
				codec *harness.Codec
			}{"shop.order.v1", s.order})
		}
		for _, topic := range topics {
			reads := s.valuesByKey(topic.name, topic.codec)
			if topic.name == "shop.customer.v1" && len(reads) < rows {
				t.Fatalf("%s holds %d keys", topic.name, len(reads))
			}
			for key, values := range reads {
				if len(values) != 2 {
					t.Fatalf("%s key %s: %d records after a serial and a parallel snapshot, want one each", topic.name, key, len(values))
				}
				if d := diff(map[string]map[string]string{key: values[1]}, map[string]map[string]string{key: values[0]}); d != "" {
					t.Fatalf("%s: the parallel snapshot differs from the serial one:\n%s", topic.name, d)
				}
			}
			t.Logf("%s: %d keys, each read once by each snapshot, the same values", topic.name, len(reads))
		}

		// A third connector, under writes: its records alone end equal to the
		// table (the keys the writer deleted before it started are the other
		// connectors' to delete), each key's balance only rises, and no value
		// comes twice (no restart here, so no change is sent again).
		before := map[int32]int64{}
		for _, r := range s.readTopic("shop.customer.v1") {
			before[r.Partition] = max(before[r.Partition], r.Offset+1)
		}
		s.editConfig("name: "+s.name+"_parallel", "name: "+s.name+"_live", "cdc_"+s.name+"_p", "cdc_"+s.name+"_l")
		w := s.startWriter(rows)
		d := s.start()
		s.waitTableRead(d, "customer")
		if !strings.Contains(d.Logs(), "snapshot workers share one view") {
			t.Errorf("the snapshot was not parallel:\n%s", d.Logs())
		}
		if n := w.finish(t); n < 20 {
			t.Errorf("the writer committed %d transactions: too few to test the handover", n)
		}
		var live []harness.Record
		var last string
		if err := harness.Eventually(90*time.Second, func() (bool, error) {
			live = live[:0]
			for _, r := range s.readTopic("shop.customer.v1") {
				if r.Offset >= before[r.Partition] {
					live = append(live, r)
				}
			}
			state, err := s.customer.Materialize(live)
			if err != nil {
				return false, err
			}
			last = diff(normalizeState(state), s.project(s.customerProjection()))
			return last == "", s.daemonsAlive()
		}); err != nil {
			t.Fatalf("the third connector's records never matched the table: %v\n%s", err, truncate(last, 3000))
		}
		checkValuesRise(t, s.customer, live, "balance", repeatsRefused)
	})
}

// valuesByKey reads a topic's values, rendered like a projection, by key.
func (s *scenario) valuesByKey(topic string, codec *harness.Codec) map[string][]map[string]string {
	s.t.Helper()
	out := map[string][]map[string]string{}
	for _, r := range s.readTopic(topic) {
		key, err := codec.Key(r.Key)
		if err != nil {
			s.t.Fatal(err)
		}
		value, err := codec.Value(r.Value)
		if err != nil {
			s.t.Fatal(err)
		}
		fields := map[string]string{}
		for name, v := range value {
			fields[name] = normalize(v)
		}
		out[key] = append(out[key], fields)
	}
	return out
}

// A stored position the database no longer has (PostgreSQL: the slot was
// dropped; MariaDB: its binlog purged, here with GTIDs, so that the server is
// the one to find it gone when the stream starts) stops snapshot.mode initial
// with what to do. when_needed takes a new snapshot instead: the topic ends
// equal to the table, the changes made meanwhile included.
func TestSnapshotModeWhenNeededSnapshotsAgainWhenTheLogIsGone(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		d := s.start()
		s.waitCustomersMatch()
		s.stopOnceStreamingIsStored(d)
		s.exec(`UPDATE customer SET email = 'while-the-log-was-lost@example.com' WHERE customer_id = 1`, s.bulk(5))
		if s.mysql {
			s.purgeBinlogOf(s.checkpoint())
		} else {
			s.exec(fmt.Sprintf(`SELECT pg_drop_replication_slot('cdc_%s')`, s.name))
		}
		s.start()
		if s.mysql {
			s.mustExit("the server cannot send it", "snapshot.mode: when_needed")
		} else {
			s.mustExit("replication slot cdc_"+s.name+" is missing", "snapshot.mode: when_needed")
		}

		s.editConfig("  mode: initial", "  mode: when_needed")
		d = s.start()
		s.waitCustomersMatch()
		if !strings.Contains(d.Logs(), "taking a new snapshot (snapshot.mode when_needed)") {
			t.Errorf("the daemon did not say it snapshots again:\n%s", d.Logs())
		}
	})
}
