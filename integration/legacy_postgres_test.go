package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
)

// The reading table: partitioned by region, as legacy databases split large
// tables, with REPLICA IDENTITY FULL on the table and on each partition.
var readingEntity = ownEntity{
	name: "reading", table: "reading", key: "[region, id]",
	schema: avroRecord("Reading", avroField("region", `"string"`), avroField("id", `"long"`),
		avroField("value", `{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}`)),
	fields: "region: region\nid: id\nvalue: value",
}

func newReadingScenario(t *testing.T) *scenario {
	s := newEmptyScenario(t)
	s.exec(`CREATE TABLE reading (region text NOT NULL, id bigint NOT NULL, value numeric(10,2) NOT NULL, PRIMARY KEY (region, id)) PARTITION BY LIST (region)`,
		`CREATE TABLE reading_eu PARTITION OF reading FOR VALUES IN ('eu')`,
		`CREATE TABLE reading_us PARTITION OF reading FOR VALUES IN ('us')`,
		`ALTER TABLE reading REPLICA IDENTITY FULL`, `ALTER TABLE reading_eu REPLICA IDENTITY FULL`, `ALTER TABLE reading_us REPLICA IDENTITY FULL`,
		`INSERT INTO reading SELECT (ARRAY['eu','us'])[1 + g % 2], g, g * 1.5 FROM generate_series(1, 100) g`)
	s.useEntities(readingEntity)
	return s
}

// A partitioned table is captured as the one table its users see: snapshot,
// then inserts, updates (one moving a row to another partition) and deletes,
// in partitions that existed at start and in one created while streaming; a
// table attached with rows its log never showed is backfilled; a partition
// detached takes rows out without deletes: the daemon stops, and a restart
// refuses too.
func TestPartitionedTableIsCapturedAsOneTable(t *testing.T) {
	s := newReadingScenario(t)
	s.start()
	s.verified()
	s.exec(`INSERT INTO reading VALUES ('eu', 1000, 1)`,
		`UPDATE reading SET value = value + 1 WHERE id <= 10`,
		`UPDATE reading SET region = 'eu' WHERE id = 3`, // from reading_us to reading_eu
		`DELETE FROM reading WHERE id = 4`,
		`CREATE TABLE reading_ap PARTITION OF reading FOR VALUES IN ('ap')`,
		`ALTER TABLE reading_ap REPLICA IDENTITY FULL`,
		`INSERT INTO reading VALUES ('ap', 2000, 7), ('ap', 2001, 8)`,
		`UPDATE reading SET region = 'ap' WHERE id = 5`,
		`DELETE FROM reading WHERE id = 2001`)
	s.verified()

	s.exec(`CREATE TABLE reading_sa (region text NOT NULL, id bigint NOT NULL, value numeric(10,2) NOT NULL)`,
		`INSERT INTO reading_sa SELECT 'sa', g, g FROM generate_series(3000, 3049) g`,
		`ALTER TABLE reading_sa REPLICA IDENTITY FULL`,
		`ALTER TABLE reading ATTACH PARTITION reading_sa FOR VALUES IN ('sa')`)
	out := s.verified()
	if !strings.Contains(out, "has 151 keys") {
		t.Errorf("verify does not count the attached rows:\n%s", out)
	}
	logs := s.daemons[0].Logs()
	if !strings.Contains(logs, `msg="a partition was attached with rows its log never showed: backfilling its table's entities" connector=`+s.name+` component=source table=public.reading partition=public.reading_sa`) ||
		!strings.Contains(logs, `msg="partition attached; its rows are in the log" connector=`+s.name+` component=source table=public.reading partition=public.reading_ap`) {
		t.Errorf("want reading_sa backfilled and reading_ap not:\n%s", logs)
	}

	s.exec(`ALTER TABLE reading DETACH PARTITION reading_us`)
	s.mustExit("partition public.reading_us of public.reading was detached or dropped", "new topic versions")
	s.start()
	s.mustExit("partition public.reading_us of public.reading was detached or dropped")
}

// A partition detached while cdc is stopped is found when it starts again.
func TestPartitionDetachedWhileStoppedIsRefusedAtStart(t *testing.T) {
	s := newReadingScenario(t)
	d := s.start()
	s.verified()
	if err := d.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, d.Logs())
	}
	s.exec(`ALTER TABLE reading DETACH PARTITION reading_eu`)
	s.start()
	s.mustExit("partition public.reading_eu of public.reading was detached or dropped")
}

// A publication the user made, partition by partition, or without TRUNCATE,
// or with a row filter, would make cdc miss changes: refused with the fix.
func TestPublicationThatWouldMissChangesIsRefused(t *testing.T) {
	for _, c := range []struct{ name, create, want string }{
		{"partition by partition", `CREATE PUBLICATION cdc_%s FOR TABLE reading`, `ALTER PUBLICATION "cdc_%s" SET (publish_via_partition_root = true)`},
		{"no truncate", `CREATE PUBLICATION cdc_%s FOR TABLE reading WITH (publish = 'insert, update, delete', publish_via_partition_root = true)`, `does not publish truncate`},
		{"row filter", `CREATE PUBLICATION cdc_%s FOR TABLE reading WHERE (id > 10) WITH (publish_via_partition_root = true)`, `with a row filter (WHERE (id > 10))`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newReadingScenario(t)
			s.exec(strings.ReplaceAll(c.create, "%s", s.name))
			s.mustRefuse(strings.ReplaceAll(c.want, "%s", s.name))
		})
	}
}

// Each partition logs its own old rows: one that logs no old key is named
// with the statement that fixes it.
func TestPartitionWithoutAnIdentityIsRefused(t *testing.T) {
	s := newReadingScenario(t)
	s.exec(`ALTER TABLE reading_us REPLICA IDENTITY NOTHING`)
	s.mustRefuse(`partition public.reading_us of public.reading has REPLICA IDENTITY NOTHING`, `ALTER TABLE "public"."reading_us" REPLICA IDENTITY DEFAULT (the primary key) or FULL`)
}

// A partition may log less than its root: one left at REPLICA IDENTITY
// DEFAULT (as a partition created later is) is captured like the others:
// updates, key changes, a row moved out of it, deletes.
func TestPartitionWithTheDefaultIdentityIsCaptured(t *testing.T) {
	s := newReadingScenario(t)
	s.exec(`ALTER TABLE reading_us REPLICA IDENTITY DEFAULT`)
	s.start()
	s.verified()
	s.exec(`UPDATE reading SET value = value + 1 WHERE region = 'us'`,
		`UPDATE reading SET id = id + 1000 WHERE region = 'us' AND id < 20`,
		`UPDATE reading SET region = 'eu' WHERE id = 21`, // from reading_us to reading_eu
		`DELETE FROM reading WHERE region = 'us' AND id > 90`,
		`CREATE TABLE reading_ap PARTITION OF reading FOR VALUES IN ('ap')`,
		`INSERT INTO reading VALUES ('ap', 2000, 7)`, `UPDATE reading SET value = 8 WHERE id = 2000`,
		`INSERT INTO reading VALUES ('ap', 2001, 7)`, `DELETE FROM reading WHERE id = 2001`)
	if out := s.verified(); !strings.Contains(out, "identical") {
		t.Errorf("cdc verify:\n%s", out)
	}
}

// An entity on a table that is not in the publication yet, added after the
// connector has streamed, is backfilled and then streamed.
func TestEntityOnANewTableIsStreamedAfterItsBackfill(t *testing.T) {
	s := newScenario(t)
	d := s.start()
	s.waitCustomersMatch()
	if err := d.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, d.Logs())
	}
	s.exec(`CREATE TABLE reading (region text NOT NULL, id bigint NOT NULL, value numeric(10,2) NOT NULL, PRIMARY KEY (region, id))`,
		`ALTER TABLE reading REPLICA IDENTITY FULL`, `INSERT INTO reading VALUES ('eu', 1, 1.5)`)
	s.useEntities(readingEntity)
	d = s.start()
	s.verified()
	s.exec(`INSERT INTO reading VALUES ('eu', 2, 2.5)`, `UPDATE reading SET value = 9 WHERE id = 1`)
	s.verified()
	if strings.Contains(d.Logs(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", d.Logs())
	}
}

// A generated column's values are not in the log: mapping one is refused at
// validate and at start, with why and what to do instead.
func TestGeneratedColumnCannotBeMapped(t *testing.T) {
	s := newEmptyScenario(t)
	s.exec(`CREATE TABLE item (id bigint PRIMARY KEY, price numeric(10,2) NOT NULL, price_with_tax numeric(10,2) GENERATED ALWAYS AS (price * 1.2) STORED NOT NULL)`,
		`ALTER TABLE item REPLICA IDENTITY FULL`, `INSERT INTO item (id, price) VALUES (1, 10)`)
	decimal := `{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}`
	s.useEntities(ownEntity{name: "item", table: "item", key: "[id]",
		schema: avroRecord("Item", avroField("id", `"long"`), avroField("gross", decimal)),
		fields: "id: id\ngross: price_with_tax"})
	s.mustRefuse(`column "price_with_tax" of public.item cannot be mapped: it is a generated column`, "compute the field with an expr rule")
}

// A key that does not identify rows (no primary key; a column that is not
// unique) is refused with the keys that would do.
func TestKeyThatDoesNotIdentifyRowsIsRefused(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		if s.mysql {
			s.editConfig("    key: [id]\n", "    key: [email]\n")
		} else {
			s.editConfig("    key: [id]                    # fields that form the Kafka key", "    key: [email]")
		}
		s.mustRefuse(`key [email] does not identify the rows of`, "Key the entity on fields that copy the columns of (customer_id)")
	})
}

// A mapped table renamed or dropped while cdc streams stops the daemon with
// what happened, and the restart says that the table is gone.
func TestRenamedOrDroppedTableStopsTheDaemon(t *testing.T) {
	for _, c := range []struct{ name, ddl, want, restart string }{
		{"renamed", `ALTER TABLE orders RENAME TO orders_old`, "table public.orders was renamed to public.orders_old", "table public.orders not found"},
		{"dropped", `DROP TABLE orders`, "table public.orders was dropped", "table public.orders not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t)
			s.start()
			s.waitCustomersMatch()
			s.exec(c.ddl)
			s.mustExit(c.want)
			s.start()
			s.mustExit(c.restart)
		})
	}
}

// A stored position beyond the end of the WAL (a database restored from a
// backup, a failover to a replica that was behind, a forged checkpoint) is
// refused; with snapshot.mode when_needed, cdc snapshots again.
func TestCheckpointAheadOfTheWALIsRefused(t *testing.T) {
	s := newScenario(t)
	d := s.start()
	s.waitCustomersMatch()
	if err := d.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, d.Logs())
	}
	s.storeCheckpoint("0000FFFF/00000000:0000000000")
	s.start()
	s.mustExit("is ahead of the end of the database's WAL", "restored from a backup", "pg_drop_replication_slot")

	s.editConfig("  mode: initial", "  mode: when_needed")
	s.exec(`UPDATE customer SET email = 'after-restore@example.com' WHERE customer_id = 1`)
	d = s.start()
	s.waitCustomersMatch()
	s.waitLog(d, "the stored position is ahead of the database's WAL: taking a new snapshot")
}

// A record larger than its topic's max.message.bytes is a value error: the
// daemon stops with the key, size and limit, or, under on_error:
// dead_letter, sends a dead letter of the key and the reason and goes on.
func TestRecordLargerThanTheTopicAcceptsIsAValueError(t *testing.T) {
	for _, policy := range []string{"stop", "dead_letter"} {
		t.Run(policy, func(t *testing.T) {
			s := newScenario(t)
			limit := "4000"
			if _, err := s.admin().CreateTopic(s.ctx, 3, 1, map[string]*string{"cleanup.policy": ptr("compact"), "max.message.bytes": &limit}, "shop.customer.v1"); err != nil {
				t.Fatal(err)
			}
			if policy == "dead_letter" {
				s.editConfig("      created_at: created_at\n", "      created_at: created_at\n    on_error: dead_letter\n")
			}
			out, err := s.validateOutput()
			if err != nil || !strings.Contains(out, "note: topic shop.customer.v1 accepts records of up to 4000 bytes (max.message.bytes)") {
				t.Errorf("validate does not report the limit: %v\n%s", err, out)
			}
			d := s.start()
			s.waitCustomersMatch()
			s.exec(`UPDATE customer SET email = repeat('x', 5000) || '@example.com' WHERE customer_id = 2`,
				`UPDATE customer SET email = 'fence@example.com' WHERE customer_id = 1`)
			if policy == "stop" {
				s.mustExit(`entity "customer": the record for key {"id":2} at position`, "more than topic shop.customer.v1 accepts (max.message.bytes = 4000)", "--add-config max.message.bytes=")
				return
			}
			var letters []harness.Record
			if err := harness.Eventually(30*time.Second, func() (bool, error) {
				letters = s.readTopic(s.name + ".dead_letter")
				return len(letters) > 0, s.daemonsAlive()
			}); err != nil {
				t.Fatalf("no dead letter: %v", err)
			}
			if l := letters[0]; l.Value != nil || !strings.Contains(l.Headers["cdc_error"], "more than topic shop.customer.v1 accepts") {
				t.Errorf("dead letter value %q, headers %v: want no value and the reason", l.Value, l.Headers)
			}
			if err := harness.Eventually(30*time.Second, func() (bool, error) {
				state, _, err := s.topicState("shop.customer.v1", s.customer)
				return err == nil && state[`{"id":1}`]["email"] == "fence@example.com", err
			}); err != nil {
				t.Errorf("the change after the dead letter did not reach the topic: %v\n%s", err, d.Logs())
			}
		})
	}
}

// Nullability comes from today's catalog: a NULL logged before the column
// became NOT NULL, read again from the log, is a value error that says so;
// the dead_letter policy lets cdc pass it, and the topic still ends equal
// to the table (the row's later change carries a value).
func TestNullFromBeforeSetNotNullSaysWhyAndCanBePassed(t *testing.T) {
	s := newEmptyScenario(t)
	s.exec(`CREATE TABLE note (id bigint PRIMARY KEY, body text)`, `ALTER TABLE note REPLICA IDENTITY FULL`, `INSERT INTO note VALUES (1, 'a')`)
	entity := ownEntity{name: "note", table: "note", key: "[id]", fields: "id: id\nbody: body",
		schema: avroRecord("Note", avroField("id", `"long"`), avroField("body", `["null", "string"]`))}
	s.useEntities(entity)
	d := s.start()
	s.verified()
	if err := d.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, d.Logs())
	}
	// (Row 1 is written again, so that its record has the new schema too.)
	s.exec(`INSERT INTO note VALUES (2, NULL)`, `UPDATE note SET body = 'b' WHERE id = 2`, `ALTER TABLE note ALTER COLUMN body SET NOT NULL`,
		`UPDATE note SET body = 'a2' WHERE id = 1`)
	entity.schema = avroRecord("Note", avroField("id", `"long"`), avroField("body", `"string"`))
	s.useEntities(entity)
	s.start()
	s.mustExit(`public.note column body value null at position`, "the column is NOT NULL now, so the change was logged before it became so")
	entity.extra = "on_error: dead_letter"
	s.useEntities(entity)
	s.start()
	s.verified()
}
