package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdc-dev/cdc/integration/harness"
)

// storeCheckpoint writes a checkpoint for the scenario's connector, as a
// forged record or a database restored from a backup would leave it.
func (s *scenario) storeCheckpoint(position string) {
	s.t.Helper()
	value, _ := json.Marshal(map[string]any{"version": 1, "position": position, "entities": []string{"customer", "order", "order_v2"}})
	s.produce(&kgo.Record{Topic: "_cdc_checkpoints", Key: []byte(s.name), Value: value})
}

// produce writes a record to the scenario's broker, as another producer would.
func (s *scenario) produce(r *kgo.Record) {
	s.t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(s.brokers...))
	if err != nil {
		s.t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if err := client.ProduceSync(ctx, r).FirstErr(); err != nil {
		s.t.Fatal(err)
	}
}

// ENUM and SET keys sort by their index in ORDER BY but compare with text as
// text: chunked by text, the snapshot would end after its first chunk. They
// are read whole, and every row reaches the topic.
func TestMySQLEnumAndSetKeysAreSnapshottedWhole(t *testing.T) {
	s := newEmptyMySQLScenario(t)
	s.exec(`CREATE TABLE tagged (kind ENUM('zeta', 'alpha', 'mid') NOT NULL, tags SET('z', 'a') NOT NULL, id INT NOT NULL,
			PRIMARY KEY (kind, tags, id)) ENGINE=InnoDB`,
		`INSERT INTO tagged SELECT ELT(1 + seq % 3, 'zeta', 'alpha', 'mid'), ELT(1 + seq % 3, 'z', 'a', 'z,a'), seq FROM seq_1_to_300`)
	s.editConfig("  chunk_size: 100000", "  chunk_size: 20")
	s.useEntities(ownEntity{name: "tagged", table: "tagged", key: "[kind, tags, id]",
		schema: avroRecord("Tagged", avroField("kind", `"string"`), avroField("tags", `"string"`), avroField("id", `"long"`)),
		fields: "kind: kind\ntags: tags\nid: id"})
	d := s.start()
	if out := s.verified(); !strings.Contains(out, "has 300 keys") {
		t.Errorf("verify:\n%s", out)
	}
	s.exec(`UPDATE tagged SET kind = 'mid' WHERE id = 3`, `DELETE FROM tagged WHERE id = 4`)
	s.verified()
	if !strings.Contains(d.Logs(), "read in one query, and whole again if the snapshot is interrupted") {
		t.Errorf("the table was not read in one query:\n%s", d.Logs())
	}
}

// Cascading foreign keys change rows without row events in the binlog: a
// mapped table they change is refused, unless accepted knowingly.
func TestMySQLCascadingForeignKeyIsRefusedUnlessAccepted(t *testing.T) {
	s := newEmptyMySQLScenario(t)
	s.exec(`CREATE TABLE parent (id INT PRIMARY KEY) ENGINE=InnoDB`,
		`CREATE TABLE child (id INT PRIMARY KEY, parent_id INT NOT NULL, CONSTRAINT child_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE) ENGINE=InnoDB`,
		`INSERT INTO parent VALUES (1), (2)`, `INSERT INTO child VALUES (10, 1), (20, 2)`)
	s.useEntities(ownEntity{name: "child", table: "child", key: "[id]",
		schema: avroRecord("Child", avroField("id", `"int"`), avroField("parent_id", `"int"`)), fields: "id: id\nparent_id: parent_id"})
	s.mustRefuse(fmt.Sprintf("table %s.child has foreign key child_parent to parent with ON DELETE CASCADE ON UPDATE RESTRICT", s.name),
		"writes none of them to the binlog", fmt.Sprintf("source.mysql.accept_unlogged_cascades: [%s.child]", s.name))

	s.editConfig("  mysql:\n", fmt.Sprintf("  mysql:\n    accept_unlogged_cascades: [%s.child]\n", s.name))
	d := s.start()
	s.verified()
	s.waitLog(d, "a mapped table is changed by foreign-key cascades that the binlog does not show; accepted")
	// What was accepted: the cascade is missed, and cdc verify tells.
	s.exec(`DELETE FROM parent WHERE id = 1`, `INSERT INTO child VALUES (30, 2)`)
	var out string
	if err := harness.Eventually(60*time.Second, func() (bool, error) {
		out, _ = s.runToEnd(2*time.Minute, "verify", "--config", s.config)
		return strings.Contains(out, "rows in the entity: 1 extra\n") && strings.Contains(out, `extra key {"id":10}`), s.daemonsAlive()
	}); err != nil {
		t.Errorf("verify does not find the cascaded delete alone: %v\n%s", err, out)
	}
}

// Statements that remove or replace a mapped table's rows without row events
// stop the daemon, however they are written; a restart stops again.
func TestMySQLStatementsThatRemoveRowsWithoutRowEventsStop(t *testing.T) {
	for _, c := range []struct{ name, statement, want string }{
		{"truncate behind a comment", "/* migration 7 */ truncate table customer", "TRUNCATE removes every row"},
		{"create or replace", "CREATE OR REPLACE TABLE customer (customer_id bigint PRIMARY KEY)", "CREATE OR REPLACE TABLE drops the table"},
		{"drop table", "DROP TABLE customer", "DROP TABLE removes the table and its rows"},
		{"rename table", "RENAME TABLE customer TO customer_old", "RENAME TABLE takes it away"},
		{"truncate partition", "ALTER TABLE customer TRUNCATE PARTITION p0", "TRUNCATE PARTITION removes the partition's rows"},
		{"drop partition", "ALTER TABLE customer DROP PARTITION p1", "DROP PARTITION removes the partition's rows"},
		{"exchange partition", "ALTER TABLE customer EXCHANGE PARTITION p0 WITH TABLE customer_staging", "EXCHANGE PARTITION swaps"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newMySQLScenario(t)
			if strings.Contains(c.statement, "PARTITION") {
				s.exec(`ALTER TABLE customer PARTITION BY RANGE (customer_id) (PARTITION p0 VALUES LESS THAN (3), PARTITION p1 VALUES LESS THAN MAXVALUE)`,
					`CREATE TABLE customer_staging LIKE customer`, `ALTER TABLE customer_staging REMOVE PARTITIONING`)
			}
			s.start()
			s.waitCustomersMatch()
			s.exec(c.statement)
			s.mustExit("of the mapped table "+s.name+".customer", c.want, "snapshot again from scratch")
			if c.name == "truncate behind a comment" {
				s.start()
				s.mustExit(c.want)
			}
		})
	}
}

// A stored position the server has not reached (a database restored from a
// backup, a failover to a replica that was behind) is refused.
func TestMySQLCheckpointAheadOfTheBinlogIsRefused(t *testing.T) {
	for _, gtid := range []bool{true, false} {
		t.Run(fmt.Sprintf("gtid=%v", gtid), func(t *testing.T) {
			s := newMySQLScenario(t)
			if !gtid {
				s.editConfig("gtid: true", "gtid: false")
			}
			d := s.start()
			s.waitCustomersMatch()
			if err := d.Stop(30 * time.Second); err != nil {
				t.Fatalf("SIGTERM: %v\n%s", err, d.Logs())
			}
			stored := s.checkpoint()
			forged := regexp.MustCompile(`pos=\d+`).ReplaceAllString(stored, "pos=999999999")
			if gtid {
				forged = regexp.MustCompile(`gtid=(\d+)-(\d+)-(\d+)`).ReplaceAllStringFunc(stored, func(g string) string {
					parts := strings.Split(strings.TrimPrefix(g, "gtid="), "-")
					n, _ := strconv.Atoi(parts[2])
					return fmt.Sprintf("gtid=%s-%s-%d", parts[0], parts[1], n+1000)
				})
			}
			s.storeCheckpoint(forged)
			s.start()
			s.mustExit("is ahead of the server's binlog", "restored from a backup")
		})
	}
}

// Bytes an ascii column's charset has no character for: the same value error
// from the snapshot as from the binlog, never a '?' on one path.
func TestMySQLInvalidTextIsTheSameValueErrorOnBothPaths(t *testing.T) {
	for _, path := range []string{"snapshot", "stream"} {
		t.Run(path, func(t *testing.T) {
			s := newEmptyMySQLScenario(t)
			s.exec(`CREATE TABLE label (id INT PRIMARY KEY, code VARCHAR(10) CHARACTER SET ascii NOT NULL, name VARCHAR(20) CHARACTER SET latin1 NOT NULL) ENGINE=InnoDB`,
				`INSERT INTO label VALUES (1, 'ok', 'caf`+"\u00e9"+`')`)
			s.useEntities(ownEntity{name: "label", table: "label", key: "[id]",
				schema: avroRecord("Label", avroField("id", `"int"`), avroField("code", `"string"`), avroField("name", `"string"`)), fields: "id: id\ncode: code\nname: name"})
			bad := `INSERT INTO label VALUES (2, x'41e9', 'x')`
			if path == "snapshot" {
				s.exec(bad)
			}
			s.start()
			if path == "stream" {
				s.verified()
				s.exec(bad)
			}
			s.mustExit(`field "code": `+s.name+`.label column code value "A\xe9"`, "holds bytes that are not text in the column's character set")
		})
	}
}

// A dropped mapped table stops the daemon at the DROP; the restart says the
// table is gone instead of asking for a privilege on it.
func TestMySQLDroppedTableIsNamedAsGone(t *testing.T) {
	s := newMySQLScenario(t)
	s.start()
	s.waitCustomersMatch()
	s.exec("DROP TABLE customer")
	s.mustExit("DROP TABLE removes the table and its rows")
	s.start()
	logs := s.mustExit(fmt.Sprintf("table %s.customer does not exist (dropped or renamed since it was mapped?", s.name))
	if strings.Contains(logs, "GRANT SELECT") {
		t.Errorf("the refusal asks for a privilege on a table that is gone:\n%s", logs)
	}
}

// prepareXA prepares an XA transaction of the given statements on a
// connection that then goes away, as an XA coordinator's does: the
// transaction stays prepared until another connection ends it.
func (s *scenario) prepareXA(xid string, statements ...string) {
	s.t.Helper()
	s.exec(append(append([]string{"XA START '" + xid + "'"}, statements...), "XA END '"+xid+"'", "XA PREPARE '"+xid+"'")...)
}

// emails lists the email of every customer record in the topic, in order.
func (s *scenario) emails() []string {
	s.t.Helper()
	var out []string
	for _, r := range s.readTopic("shop.customer.v1") {
		v, err := s.customer.Value(r.Value)
		if err != nil {
			s.t.Fatal(err)
		}
		if v != nil {
			out = append(out, v["email"].(string))
		}
	}
	return out
}

// An XA transaction's rows reach the topic at its XA COMMIT (two-phase or
// one-phase), never at an unrelated commit, never after an XA ROLLBACK.
func TestMySQLXATransactionsAreSentAtTheirCommit(t *testing.T) {
	s := newMySQLScenario(t)
	s.start()
	s.waitCustomersMatch()
	s.prepareXA("rolled-back", `INSERT INTO customer (email, first_name, last_name) VALUES ('xa-rolled-back@example.com', 'X', 'A')`)
	s.prepareXA("committed", `INSERT INTO customer (email, first_name, last_name) VALUES ('xa-committed@example.com', 'X', 'A')`,
		`UPDATE customer SET email = 'xa-updated@example.com' WHERE customer_id = 1`)
	s.exec(`UPDATE customer SET email = 'unrelated@example.com' WHERE customer_id = 2`)
	s.waitMatch("shop.customer.v1", s.customer, customerProjectionMySQL) // the prepared rows are not in the table yet
	for _, e := range s.emails() {
		if strings.HasPrefix(e, "xa-") {
			t.Fatalf("a prepared XA transaction's row %s reached the topic before its commit", e)
		}
	}
	s.exec(`XA ROLLBACK 'rolled-back'`, `XA COMMIT 'committed'`,
		`XA START 'one-phase'`, `INSERT INTO customer (email, first_name, last_name) VALUES ('xa-one-phase@example.com', 'X', 'A')`,
		`XA END 'one-phase'`, `XA COMMIT 'one-phase' ONE PHASE`)
	s.waitCustomersMatch()
	got := strings.Join(s.emails(), " ")
	for _, want := range []string{"xa-committed@example.com", "xa-updated@example.com", "xa-one-phase@example.com"} {
		if !strings.Contains(got, want) {
			t.Errorf("the topic lacks %s: %s", want, got)
		}
	}
	if strings.Contains(got, "xa-rolled-back") {
		t.Errorf("a rolled-back XA transaction's row reached the topic: %s", got)
	}
}

// Killed between an XA PREPARE and its XA COMMIT, with checkpoints stored in
// between, the daemon still sends the XA transaction's rows at its commit:
// committed while the daemon was down, or after it came back.
func TestMySQLXAPreparedAcrossACrashIsNotLost(t *testing.T) {
	for _, gtid := range []bool{true, false} {
		for _, commitWhileDown := range []bool{true, false} {
			t.Run(fmt.Sprintf("gtid=%v/commit_while_down=%v", gtid, commitWhileDown), func(t *testing.T) {
				s := newMySQLScenario(t)
				if !gtid {
					s.editConfig("gtid: true", "gtid: false")
				}
				d := s.start()
				s.waitCustomersMatch()
				s.prepareXA("across", `INSERT INTO customer (email, first_name, last_name) VALUES ('xa-across@example.com', 'X', 'A')`)
				s.exec(`UPDATE customer SET email = 'after-prepare@example.com' WHERE customer_id = 2`)
				s.waitCustomersMatch()
				// A checkpoint past the prepare, that still leads back to it.
				if err := harness.Eventually(30*time.Second, func() (bool, error) {
					return strings.Contains(s.checkpoint(), " xa="), s.daemonsAlive()
				}); err != nil {
					t.Fatalf("no checkpoint names the prepared XA transaction: %q", s.checkpoint())
				}
				d.Kill()
				if commitWhileDown {
					s.exec(`XA COMMIT 'across'`)
				}
				s.start()
				if !commitWhileDown {
					s.waitCustomersMatch()
					s.exec(`XA COMMIT 'across'`)
				}
				s.waitCustomersMatch()
				got := strings.Join(s.emails(), " ")
				if !strings.Contains(got, "xa-across@example.com") {
					t.Fatalf("the XA transaction's row is not in the topic: %s", got)
				}
				// The transactions read again for the prepared rows are not sent again.
				if n := strings.Count(got, "after-prepare@example.com"); n != 1 {
					t.Errorf("the change after the prepare, stored before the crash, is in the topic %d times: %s", n, got)
				}
				s.exec(`UPDATE customer SET email = 'later@example.com' WHERE customer_id = 3`)
				s.waitCustomersMatch()
				if err := harness.Eventually(30*time.Second, func() (bool, error) {
					return !strings.Contains(s.checkpoint(), " xa="), s.daemonsAlive()
				}); err != nil {
					t.Errorf("the checkpoint still names a prepared XA transaction once none is: %q", s.checkpoint())
				}
			})
		}
	}
}

// A snapshot waits for XA transactions prepared when it starts: their rows
// are in the binlog before its position, and in the table only after it.
func TestMySQLSnapshotWaitsForPreparedXATransactions(t *testing.T) {
	s := newMySQLScenario(t)
	s.prepareXA("before-snapshot", `INSERT INTO customer (email, first_name, last_name) VALUES ('xa-before@example.com', 'X', 'A')`)
	d := s.start()
	s.waitLog(d, "waiting for prepared XA transactions to end before reading starts")
	s.exec(`XA COMMIT 'before-snapshot'`)
	s.waitCustomersMatch()
	if got := strings.Join(s.emails(), " "); !strings.Contains(got, "xa-before@example.com") {
		t.Fatalf("the XA transaction's row is not in the topic: %s", got)
	}
}
