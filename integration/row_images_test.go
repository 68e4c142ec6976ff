package integration

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
)

// The logging settings a DBA may already have, which log less than whole rows:
// PostgreSQL's REPLICA IDENTITY DEFAULT, MySQL's binlog_row_image MINIMAL and
// NOBLOB (set for the scenario's sessions, and for the server while the test
// runs, so that cdc validate sees it).
var partialImageModes = []struct {
	name  string
	mysql bool
	image string
}{
	{"postgres_replica_identity_default", false, ""},
	{"mysql_minimal", true, "MINIMAL"},
	{"mysql_noblob", true, "NOBLOB"},
}

const docSchema = `{"type": "record", "name": "Doc", "namespace": "test", "fields": [
  {"name": "id", "type": "long"},
  {"name": "title", "type": "string"},
  {"name": "body", "type": ["null", "string"], "default": null},
  {"name": "data", "type": ["null", "string"], "default": null},
  {"name": "attachment", "type": ["null", "bytes"], "default": null},
  {"name": "status", "type": "string"}]}`

// docScenario maps a table of documents with large values (past 16 KB: stored
// out of line by PostgreSQL, and left out of MINIMAL and NOBLOB images when
// unchanged), a hidden column, and a status the entity filters on.
type docScenario struct {
	*scenario
	codec *harness.Codec
	// big is an SQL expression of 19,200 random hexadecimal characters.
	big string
}

func newDocScenario(t *testing.T, mysql bool, image string) *docScenario {
	var d docScenario
	if mysql {
		d.scenario = newEmptyMySQLScenario(t)
		d.rowImage = image
		d.exec(`CREATE TABLE doc (id bigint PRIMARY KEY, title varchar(100) NOT NULL, body mediumtext, data json,
			attachment mediumblob, secret varchar(100), status varchar(20) NOT NULL DEFAULT 'open') ENGINE = InnoDB`)
		d.exec("SET GLOBAL binlog_row_image = '" + image + "'")
		t.Cleanup(func() { _ = maria.Exec(d.name, "SET GLOBAL binlog_row_image = 'FULL'") })
		d.big = `(SELECT GROUP_CONCAT(MD5(RAND()) SEPARATOR '') FROM seq_1_to_600)`
	} else {
		d.scenario = newEmptyScenario(t)
		d.exec(`CREATE TABLE doc (id bigint PRIMARY KEY, title text NOT NULL, body text, data jsonb, attachment bytea,
			secret text, status text NOT NULL DEFAULT 'open')`, `ALTER TABLE doc REPLICA IDENTITY DEFAULT`)
		d.big = `(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 600))`
	}
	dir := t.TempDir()
	schema := filepath.Join(dir, "doc.avsc")
	if err := os.WriteFile(schema, []byte(docSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	source, table := `{kind: postgres, dsn: "${SHOP_DSN}"}`, "public.doc"
	if mysql {
		source, table = `{kind: mysql, dsn: "${SHOP_MYSQL_DSN}"}`, d.name+".doc"
	}
	config := `name: ` + d.name + `
source: ` + source + `
kafka: {brokers: ["${KAFKA_BROKERS}"]}
http: {listen: "${CDC_HTTP_LISTEN}"}
entities:
  - name: doc
    table: ` + table + `
    topic: test.doc
    schema: ` + schema + `
    key: [id]
    where: 'status != "hidden"'
    fields: {id: id, title: title, body: body, data: data, attachment: attachment, status: status}
`
	if err := os.WriteFile(d.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if d.codec, err = harness.NewCodec(schema, `{"type":"record","name":"DocKey","namespace":"test","fields":[{"name":"id","type":"long"}]}`); err != nil {
		t.Fatal(err)
	}
	return &d
}

// row inserts a document whose large values are all set, or all NULL.
func (d *docScenario) row(id int, status string, large bool) string {
	if !large {
		return fmt.Sprintf(`INSERT INTO doc (id, title, status) VALUES (%d, 'doc %d', '%s')`, id, id, status)
	}
	if d.mysql {
		return fmt.Sprintf(`INSERT INTO doc VALUES (%d, 'doc %d', %s, JSON_OBJECT('text', %s), UNHEX(%s), 'secret', '%s')`, id, id, d.big, d.big, d.big, status)
	}
	return fmt.Sprintf(`INSERT INTO doc VALUES (%d, 'doc %d', %s, jsonb_build_object('text', %s), decode(%s, 'hex'), 'secret', '%s')`, id, id, d.big, d.big, d.big, status)
}

// waitMatch waits until the topic holds the rows the filter keeps, the large
// values compared by their MD5.
func (d *docScenario) waitMatch() []harness.Record {
	d.t.Helper()
	query := `SELECT format('{"id":%s}', id) AS key, id::text AS id, title, coalesce(md5(body), 'null') AS body,
		coalesce(md5(data::text), 'null') AS data, coalesce(md5(attachment), 'null') AS attachment, status FROM doc WHERE status <> 'hidden'`
	if d.mysql {
		query = "SELECT CONCAT('{\"id\":', id, '}') AS `key`, CAST(id AS CHAR) AS id, title, COALESCE(MD5(body), 'null') AS body," +
			" COALESCE(MD5(data), 'null') AS data, COALESCE(MD5(attachment), 'null') AS attachment, status FROM doc WHERE status <> 'hidden'"
	}
	var records []harness.Record
	var last string
	err := harness.Eventually(90*time.Second, func() (bool, error) {
		if err := d.daemonsAlive(); err != nil {
			return false, err
		}
		var err error
		if records, err = harness.ReadTopic(d.ctx, d.brokers, "test.doc"); err != nil {
			return false, err
		}
		state, err := d.codec.Materialize(records)
		if err != nil {
			return false, err
		}
		last = diff(digests(state), d.project(query))
		return last == "", nil
	})
	if err != nil {
		d.t.Fatalf("topic test.doc never matched the table: %v\n%s", err, truncate(last, 3000))
	}
	return records
}

// digests renders a materialized topic like the projection of waitMatch.
func digests(state map[string]map[string]any) map[string]map[string]string {
	out := map[string]map[string]string{}
	for key, fields := range state {
		row := map[string]string{}
		for name, v := range fields {
			if union, ok := v.(map[string]any); ok {
				for _, inner := range union {
					v = inner
				}
			}
			switch v := v.(type) {
			case string:
				if name == "body" || name == "data" {
					sum := md5.Sum([]byte(v))
					row[name] = hex.EncodeToString(sum[:])
					continue
				}
			case []byte:
				sum := md5.Sum(v)
				row[name] = hex.EncodeToString(sum[:])
				continue
			}
			row[name] = normalize(v)
		}
		out[key] = row
	}
	return out
}

// On the logging settings that leave values out, the topic still equals the
// table: large values left unchanged, changed, set to NULL and back; rows
// entering and leaving the filter, keys changing, deletes, inserts that leave
// columns to their defaults, and rows changed again or gone by the time cdc
// reads them back. cdc validate says how the table is logged, and cdc verify
// finds the topic equal to the table.
func TestPartialRowImagesKeepTopicsEqualToTables(t *testing.T) {
	for _, mode := range partialImageModes {
		t.Run(mode.name, func(t *testing.T) {
			d := newDocScenario(t, mode.mysql, mode.image)
			d.exec(d.row(1, "open", true), d.row(2, "open", false), d.row(3, "hidden", true), d.row(4, "open", true))
			out, err := d.validateOutput()
			logged := "logging: " + d.tableName("doc") + ": "
			if mode.mysql {
				logged += "binlog_row_image " + mode.image
			} else {
				logged += "REPLICA IDENTITY DEFAULT"
			}
			if err != nil || !strings.Contains(out, logged) {
				t.Fatalf("cdc validate: %v, want a line %q:\n%s", err, logged, out)
			}
			daemon := d.start()
			d.waitMatch()

			// Large values left alone by an update, changed, set to NULL and back.
			d.exec(`UPDATE doc SET title = 'one' WHERE id = 1`)
			d.waitMatch()
			// The large values were not in the log: read back, and counted.
			d.waitMetrics(daemon, "a row read back", func(m map[string]float64) bool {
				return m["cdc_source_read_back_rows_total"] >= 1 && m["cdc_source_read_back_queries_total"] >= 1
			})
			d.exec(`UPDATE doc SET body = `+d.big+` WHERE id = 1`, `UPDATE doc SET attachment = NULL, data = NULL WHERE id = 4`)
			d.waitMatch()
			d.exec(`UPDATE doc SET body = NULL WHERE id = 1`, `UPDATE doc SET title = 'one again' WHERE id = 1`)
			d.waitMatch()
			bringBack := `UPDATE doc SET attachment = decode(` + d.big + `, 'hex'), data = jsonb_build_object('back', true) WHERE id = 4`
			if d.mysql {
				bringBack = `UPDATE doc SET attachment = UNHEX(` + d.big + `), data = JSON_OBJECT('back', true) WHERE id = 4`
			}
			d.exec(`UPDATE doc SET body = `+d.big+` WHERE id = 1`, bringBack)
			before := recordsPerKey(t, d.codec, d.waitMatch())

			// An update of the hidden column only, then a visible one as a fence.
			d.exec(`UPDATE doc SET secret = 'changed' WHERE id = 1`, `UPDATE doc SET title = 'fence' WHERE id = 2`)
			records := d.waitMatch()
			after := recordsPerKey(t, d.codec, records)
			again := after[`{"id":1}`] - before[`{"id":1}`]
			// PostgreSQL logs no old row: the entity's value is sent again,
			// once. MySQL's images say which columns the update set: nothing.
			if want := map[bool]int{false: 1, true: 0}[mode.mysql]; again != want {
				t.Errorf("an update of the hidden column sent %d records, want %d", again, want)
			}
			if again == 1 {
				last, previous := lastTwo(records, d.codec, `{"id":1}`)
				if string(last.Value) != string(previous.Value) {
					t.Error("the record sent again for an update of the hidden column differs from the one before it")
				}
			}

			// With the daemon stopped, changes pile up: when it reads them,
			// the rows it reads back are newer than the changes, or gone.
			if err := daemon.Stop(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			d.exec(`UPDATE doc SET status = 'hidden' WHERE id = 4`, // leaves the entity
				`UPDATE doc SET status = 'open' WHERE id = 3`, // enters it, its large values unchanged
				`UPDATE doc SET id = 40 WHERE id = 4`,         // a key change outside the entity
				`UPDATE doc SET id = 10 WHERE id = 1`,         // and inside it
				`UPDATE doc SET title = 'ten' WHERE id = 10`,
				`DELETE FROM doc WHERE id = 40`, // a delete of a row outside the entity
				`DELETE FROM doc WHERE id = 2`,
				`INSERT INTO doc (id, title) VALUES (5, 'five')`, // the status left to its default
				d.row(6, "open", true), `UPDATE doc SET title = 'six' WHERE id = 6`, `DELETE FROM doc WHERE id = 6`,
				`UPDATE doc SET title = 'three' WHERE id = 3`, `UPDATE doc SET body = 'short now' WHERE id = 3`)
			d.start()
			d.waitMatch()
			if out, err := d.runToEnd(2*time.Minute, "verify", "--config", d.config); err != nil {
				t.Fatalf("cdc verify: %v\n%s", err, out)
			}
		})
	}
}

// lastTwo returns a key's last two records in the topic.
func lastTwo(records []harness.Record, codec *harness.Codec, key string) (last, previous harness.Record) {
	for _, r := range records {
		if k, _ := codec.Key(r.Key); k == key {
			previous, last = last, r
		}
	}
	return last, previous
}
