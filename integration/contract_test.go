package integration

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
	postgressource "github.com/cdc-dev/cdc/sources/postgres"
)

// DDL that leaves the mapped columns alone passes; a dropped or retyped mapped
// column stops the daemon before any record of the new shape is produced, and
// it stays stopped at that change after a restart.
func TestSchemaChangesUnderTheMapping(t *testing.T) {
	for _, c := range []struct{ name, ddl, want string }{
		{"dropped column", `ALTER TABLE customer DROP COLUMN first_name`, `field "first_name": column "first_name" not in public.customer`},
		{"retyped column", `ALTER TABLE customer ALTER COLUMN balance TYPE numeric(14,3)`, `column balance (numeric(14,3)) cannot be held by`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t)
			s.start()
			s.waitCustomersMatch()
			s.exec(`ALTER TABLE customer ADD COLUMN loyalty_points integer`, `UPDATE customer SET email = 'after-add@example.com', loyalty_points = 5 WHERE customer_id = 1`)
			s.waitCustomersMatch()
			records := s.recordCount("shop.customer.v1")
			s.exec(c.ddl, `UPDATE customer SET email = 'after-break@example.com' WHERE customer_id = 2`)
			s.mustExit("table public.customer changed at position", "no longer fits its mapping", c.want)
			s.start()
			s.mustExit(c.want)
			if after := s.recordCount("shop.customer.v1"); after != records {
				t.Fatalf("%d records after the breaking change, %d before: something of the new shape was produced", after, records)
			}
		})
	}
}

func TestMappingOfAMissingColumnIsRefusedBeforeAnythingStarts(t *testing.T) {
	s := newScenario(t)
	s.editConfig("      email: email\n", "      email: mail\n")
	s.start()
	logs := s.mustExit(`field "email": column "mail" not in public.customer (has: customer_id, email, first_name,`)
	if !strings.Contains(logs, s.config+":") {
		t.Errorf("the message does not name the file and line:\n%s", logs)
	}
	if s.topicExists("shop.customer.v1") {
		t.Error("the topic was created although the mapping is wrong: nothing may half-start")
	}
}

func TestFieldThatCannotHoldItsColumnIsRefused(t *testing.T) {
	s := newScenario(t)
	s.exec(`ALTER TABLE customer ALTER COLUMN balance TYPE numeric(20,2)`)
	s.start()
	s.mustExit(`field "balance": column balance (numeric(20,2)) cannot be held by`, `precision at least 20`)
}

// The refusal says what to do; a JSON log carries the fix as an attribute of
// its own, for log pipelines to pick out.
func TestTableWithoutAnIdentityIsRefusedWithTheFix(t *testing.T) {
	s := newScenario(t)
	s.exec(`ALTER TABLE orders REPLICA IDENTITY NOTHING`)
	s.editConfig("format: text", "format: json")
	s.start()
	fix := `ALTER TABLE "public"."orders" REPLICA IDENTITY DEFAULT (the primary key) or FULL`
	logs := s.mustExit(`table public.orders has REPLICA IDENTITY NOTHING`, fix)
	var found bool
	for _, line := range strings.Split(logs, "\n") {
		var record map[string]any
		if json.Unmarshal([]byte(line), &record) != nil || record["level"] != "ERROR" {
			continue
		}
		found = true
		if got := record["err_fix"]; got != fix {
			t.Errorf("err_fix = %q, want the ALTER TABLE; record: %s", got, line)
		}
		if what, _ := record["err_what"].(string); !strings.HasPrefix(what, "table public.orders has REPLICA IDENTITY NOTHING") {
			t.Errorf("err_what = %q; record: %s", what, line)
		}
	}
	if !found {
		t.Errorf("no JSON error record in the output:\n%s", logs)
	}
}

func TestExistingTopicThatIsNotCompactedIsRefused(t *testing.T) {
	s := newScenario(t)
	policy := "delete"
	if _, err := s.admin().CreateTopic(s.ctx, 3, 1, map[string]*string{"cleanup.policy": &policy}, "shop.order.v1"); err != nil {
		t.Fatal(err)
	}
	s.start()
	s.mustExit("topic shop.order.v1 exists with cleanup.policy=delete: entity topics must be compacted")
}

func TestUnreachableBrokerIsReportedClearly(t *testing.T) {
	s := newScenario(t)
	s.brokers = []string{"127.0.0.1:1"}
	s.start()
	s.mustExit("connect to Kafka brokers 127.0.0.1:1", "nothing answers at that address: check kafka.brokers and that the servers are up")
}

func TestUnreachableDatabaseIsReportedClearlyWithoutThePassword(t *testing.T) {
	s := newScenario(t)
	s.dsn = fmt.Sprintf("postgres://postgres:s3cret-pw@127.0.0.1:%d/db", unusedPort(t))
	s.start()
	if logs := s.mustExit("connect to PostgreSQL"); strings.Contains(logs, "s3cret-pw") {
		t.Fatalf("the password is in the output:\n%s", logs)
	}
}

// With no change to the mapped tables but WAL written elsewhere, in another
// database of the cluster or in an unmapped table, the slot's confirmed
// position still advances: an idle connector must not make the server keep WAL
// forever.
func TestIdleSlotKeepsAdvancing(t *testing.T) {
	s := newScenario(t)
	s.start()
	s.waitCustomersMatch()
	elsewhere, err := pg.CreateDatabase(s.ctx, s.name+"_elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	conn := s.conn()
	defer conn.Close(s.ctx)
	for _, where := range []struct{ what, dsn, table string }{
		{"another database", elsewhere, "busy"},
		{"an unmapped table", s.dsn, "unmapped"},
	} {
		writes := []string{fmt.Sprintf(`CREATE TABLE %s (id serial PRIMARY KEY, payload text)`, where.table)}
		for range 20 {
			writes = append(writes, fmt.Sprintf(`INSERT INTO %s (payload) SELECT repeat('x', 100) FROM generate_series(1, 1000)`, where.table))
		}
		if err := harness.Exec(s.ctx, where.dsn, writes...); err != nil {
			t.Fatal(err)
		}
		var written string
		if err := conn.QueryRow(s.ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&written); err != nil {
			t.Fatal(err)
		}
		var confirmed string
		err := harness.Eventually(30*time.Second, func() (bool, error) {
			var passed bool
			err := conn.QueryRow(s.ctx, `SELECT confirmed_flush_lsn::text, confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`,
				"cdc_"+s.name, written).Scan(&confirmed, &passed)
			return passed, err
		})
		if err != nil {
			t.Fatalf("after writes in %s, the slot stayed at %s, behind the WAL written (%s)", where.what, confirmed, written)
		}
	}
}

// With heartbeat_message_interval set, cdc writes logical messages into the
// database's WAL: a second slot, decoding with test_decoding, sees them.
func TestHeartbeatMessagesAreWritten(t *testing.T) {
	s := newScenario(t)
	s.editConfig("  postgres:\n", "  postgres:\n    heartbeat_message_interval: 1s\n")
	probe := s.name + "_probe"
	s.exec(fmt.Sprintf(`SELECT pg_create_logical_replication_slot('%s', 'test_decoding')`, probe))
	defer s.exec(fmt.Sprintf(`SELECT pg_drop_replication_slot('%s')`, probe))
	s.start()
	s.waitCustomersMatch()
	conn := s.conn()
	defer conn.Close(s.ctx)
	want := "prefix: " + postgressource.HeartbeatMessagePrefix
	var heartbeats int
	err := harness.Eventually(30*time.Second, func() (bool, error) {
		err := conn.QueryRow(s.ctx, `SELECT count(*) FROM pg_logical_slot_peek_changes($1, NULL, NULL) WHERE data LIKE '%' || $2 || '%'`,
			probe, want).Scan(&heartbeats)
		return heartbeats >= 3, err
	})
	if err != nil {
		t.Fatalf("%d heartbeat messages in the WAL after the daemon ran, want 3 or more: %v\n%s", heartbeats, err, s.daemons[0].Logs())
	}
}

func unusedPort(t *testing.T) int {
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// cdc validate lists every problem (mapping, database, topics) with its fix and
// exits non-zero; on a ready setup it exits 0 and creates nothing.
func TestValidateListsEveryProblemAndGatesOnThem(t *testing.T) {
	s := newScenario(t)
	validate := func() (string, error) {
		cmd := exec.Command(cdcBin, "validate", "--config", s.config)
		cmd.Env = append(cmd.Environ(), "SHOP_DSN="+s.dsn, "KAFKA_BROKERS="+strings.Join(s.brokers, ","))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := validate()
	if err != nil || !strings.Contains(out, "ok: mappings of 3 tables") ||
		!strings.Contains(out, "cdc run will create shop.customer.v1, shop.order.v1") {
		t.Fatalf("a ready setup: %v\n%s", err, out)
	}
	if s.topicExists("shop.customer.v1") {
		t.Fatal("validate created a topic")
	}

	s.exec(`ALTER TABLE orders REPLICA IDENTITY NOTHING`)
	s.editConfig("      last_name: last_name\n", "      last_name: surname\n")
	out, err = validate()
	for _, want := range []string{
		"table public.orders has REPLICA IDENTITY NOTHING: its updates and deletes are logged without the key of the row they change\n    fix: ALTER TABLE \"public\".\"orders\" REPLICA IDENTITY DEFAULT (the primary key) or FULL\n",
		`field "last_name": column "surname" not in public.customer`,
		"problems (database",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1", err)
	}
}

// A value its field cannot hold (NaN is a valid numeric(12,2) but no Avro
// decimal) stops the daemon with the entity, field, value and position; nothing
// of that change is produced, and a restart stops at the same change.
func TestValueTheSchemaCannotHoldStopsTheDaemon(t *testing.T) {
	s := newScenario(t)
	s.start()
	s.waitCustomersMatch()
	before := s.recordCount("shop.customer.v1")
	s.exec(`UPDATE customer SET balance = 'NaN' WHERE customer_id = 3`)
	want := `entity "customer", field "balance": public.customer column balance value NaN at position`
	s.mustExit(want, "the schema cannot hold it, so nothing was written")
	s.start()
	s.mustExit(want)
	if after := s.recordCount("shop.customer.v1"); after != before {
		t.Fatalf("%d records after the NaN, %d before", after, before)
	}
}

// When the server ends the replication connection, the daemon restarts the
// connector in-process from its checkpoint, after a backoff, and loses
// nothing written meanwhile; it logs the failure once and says when it runs
// again.
func TestLostReplicationConnectionIsRetriedFromTheCheckpoint(t *testing.T) {
	s := newScenario(t)
	d := s.start()
	s.waitCustomersMatch()
	s.exec(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '` + "cdc_" + s.name + `'`)
	s.exec(`UPDATE customer SET email = 'while-down@example.com' WHERE customer_id = 1`, `DELETE FROM customer WHERE customer_id = 2`)
	s.waitCustomersMatch()
	s.waitRunningAgain(d)
	logs := d.Logs()
	for _, want := range []string{"transient failure: restarting from the last stored checkpoint", "replication connection to slot cdc_" + s.name + " lost", "connector running again"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
}
