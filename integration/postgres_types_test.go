package integration

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
)

const postgresTypesTable = `CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE types (
	id bigint PRIMARY KEY,
	b boolean, s smallint, i integer, bi bigint, o oid, r real, d double precision,
	n numeric(12,3), nu numeric, dt date, tm time, tm3 time(3), tstz timestamptz, tstz3 timestamptz(3),
	ts timestamp, lts timestamp, u uuid, by bytea, tx text, vc varchar(20), ch char(5), en mood,
	js json, jb jsonb, arr integer[], iv interval, inet inet);
ALTER TABLE types REPLICA IDENTITY FULL`

// Expected Avro values, as goavro decodes them and renderAvro writes them:
// computed here from the calendar (Go's time), not by cdc.
func day(y int, m time.Month, d int) string {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Format(time.RFC3339Nano)
}

func instant(micros int64) string {
	return time.Unix(micros/1e6, micros%1e6*1e3).UTC().Format(time.RFC3339Nano)
}

func days(n int64) string {
	return time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(n)).Format(time.RFC3339Nano)
}

// One row per edge of each type's range, as PostgreSQL's manual gives them,
// one of the special values (infinities, NaN), and one of NULLs, with what
// the README's type table promises for each.
var postgresTypeRows = []typeRow{
	{
		values: `false, -32768, -2147483648, -9223372036854775808, 0, -3.4028235e38, -1.7976931348623157e308,
			-999999999.999, -0.000000000000000000001, '4713-11-24 BC', '00:00:00', '00:00:00',
			'4714-11-24 00:00:00+00 BC', '4714-11-24 00:00:00+00 BC', '4714-11-24 00:00:00 BC', '4714-11-24 00:00:00 BC',
			'00000000-0000-0000-0000-000000000000', '\x', '', '', '', 'sad', '[]', '{}', '{}', '-178000000 years', '0.0.0.0'`,
		want: map[string]string{"b": "false", "s": "-32768", "i": "-2147483648", "bi": "-9223372036854775808", "o": "0",
			"r": "-3.4028235e+38", "d": "-1.7976931348623157e+308", "n": "-999999999.999", "nu": "-0.000000000000000000001",
			"dt": day(-4712, 11, 24), "tm": "0s", "tm3": "0s",
			"tstz": day(-4713, 11, 24), "tstz3": day(-4713, 11, 24), "ts": day(-4713, 11, 24),
			"lts": strconv.FormatInt(time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC).UnixMicro(), 10),
			"u":   "00000000-0000-0000-0000-000000000000", "by": "", "tx": "", "vc": "", "ch": "     ", "en": "sad",
			"js": "[]", "jb": "{}", "arr": "{}", "iv": "-178000000 years", "inet": "0.0.0.0"},
	},
	{
		values: `true, 32767, 2147483647, 9223372036854775807, 4294967295, 3.4028235e38, 1.7976931348623157e308,
			999999999.999, 123456789012345678901234567890.123456789, '5874897-12-31', '24:00:00', '23:59:59.999',
			'294246-12-31 23:59:59.999999+00', '294246-12-31 23:59:59.999+00', '294246-12-31 23:59:59.999999', '294246-12-31 23:59:59.999999',
			'ffffffff-ffff-ffff-ffff-ffffffffffff', '\xdeadbeef00', 'ünïcödé 日本語 🎉', 'ab''c\d', 'abcde', 'happy',
			'{"k": [1, 2.50]}', '{"k": [1,   2.50]}', '{1,NULL,3}', '178000000 years 1 mon 2 days 03:04:05.678901', '2001:db8::1/128'`,
		want: map[string]string{"b": "true", "s": "32767", "i": "2147483647", "bi": "9223372036854775807", "o": "4294967295",
			"r": "3.4028235e+38", "d": "1.7976931348623157e+308", "n": "999999999.999", "nu": "123456789012345678901234567890.123456789",
			"dt": day(5874897, 12, 31), "tm": "24h0m0s", "tm3": "23h59m59.999s",
			"tstz":  instant(time.Date(294246, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()),
			"tstz3": instant(time.Date(294246, 12, 31, 23, 59, 59, 999000000, time.UTC).UnixMicro()),
			"ts":    instant(time.Date(294246, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()),
			"lts":   strconv.FormatInt(time.Date(294246, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro(), 10),
			"u":     "ffffffff-ffff-ffff-ffff-ffffffffffff", "by": "deadbeef00", "tx": "ünïcödé 日本語 🎉", "vc": `ab'c\d`, "ch": "abcde", "en": "happy",
			"js": `{"k": [1, 2.50]}`, "jb": `{"k": [1, 2.50]}`, "arr": "{1,NULL,3}", "iv": "178000000 years 1 mon 2 days 03:04:05.678901", "inet": "2001:db8::1"},
	},
	{
		// The special values: infinite dates and timestamps become the
		// largest and smallest value of the field's type; floats keep
		// theirs.
		values: `NULL, NULL, NULL, NULL, NULL, 'NaN', '-Infinity', NULL, 'NaN', 'infinity', NULL, NULL,
			'infinity', '-infinity', 'infinity', '-infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
		want: map[string]string{"r": "NaN", "d": "-Inf", "nu": "NaN", "dt": days(math.MaxInt32),
			"tstz": instant(math.MaxInt64), "tstz3": time.UnixMilli(math.MinInt64).UTC().Format(time.RFC3339Nano),
			"ts": instant(math.MaxInt64), "lts": strconv.FormatInt(math.MinInt64, 10)},
	},
	{values: strings.TrimSuffix(strings.Repeat("NULL, ", 27), ", "), want: map[string]string{}},
}

// Every type of the README's table, at the edges of its range and with its
// special values, reads the same in the snapshot (COPY) and in the stream
// (pgoutput), and as the README promises: in text mode, where a column of a
// type cdc decodes in text only keeps the stream, and in binary mode, on the
// types cdc decodes in binary (all but arrays, intervals, network types and
// enums).
func TestPostgresTypesInSnapshotAndStream(t *testing.T) {
	for _, mode := range []string{"text", "binary"} {
		t.Run(mode, func(t *testing.T) { postgresTypes(t, mode == "binary") })
	}
}

// textOnly are the columns of the types table whose types cdc decodes in
// text only.
var textOnly = []string{"en", "arr", "iv", "inet"}

func postgresTypes(t *testing.T, binary bool) {
	s := newEmptyScenario(t)
	// The rows go into types_all, which has every type, and are copied to
	// types, the mapped table: without the text-only columns in binary mode.
	s.exec(strings.ReplaceAll(postgresTypesTable, "TABLE types ", "TABLE types_all "))
	columns := []string{"b", "s", "i", "bi", "o", "r", "d", "n", "nu", "dt", "tm", "tm3", "tstz", "tstz3", "ts", "lts",
		"u", "by", "tx", "vc", "ch", "en", "js", "jb", "arr", "iv", "inet"}
	if binary {
		columns = slices.DeleteFunc(columns, func(c string) bool { return slices.Contains(textOnly, c) })
	}
	kept := "id, " + strings.Join(columns, ", ")
	s.exec("CREATE TABLE types AS SELECT "+kept+" FROM types_all WITH NO DATA", "ALTER TABLE types ADD PRIMARY KEY (id)", "ALTER TABLE types REPLICA IDENTITY FULL")
	insert := func(base int) {
		var stmts []string
		for i, r := range postgresTypeRows {
			stmts = append(stmts, fmt.Sprintf("INSERT INTO types_all VALUES (%d, %s)", base+i, r.values))
		}
		stmts = append(stmts, fmt.Sprintf("INSERT INTO types SELECT %s FROM types_all WHERE id >= %d", kept, base))
		s.exec(stmts...)
	}
	insert(1) // read by the snapshot
	schema := typesSchema(t, columns)
	var fields strings.Builder
	for _, f := range columns {
		fmt.Fprintf(&fields, "      %s: %s\n", f, f)
	}
	config := `name: ` + s.name + `
source: {kind: postgres, dsn: "${SHOP_DSN}"}
kafka: {brokers: ["${KAFKA_BROKERS}"]}
http: {listen: "${CDC_HTTP_LISTEN}"}
entities:
  - name: types
    table: public.types
    topic: test.types
    schema: ` + schema + `
    key: [id]
    fields:
      id: id
` + fields.String()
	if err := os.WriteFile(s.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	codec, err := harness.NewCodec(schema, `{"type":"record","name":"TypesKey","namespace":"test.postgres","fields":[{"name":"id","type":"long"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	rows := slices.Clone(postgresTypeRows)
	for i := range rows {
		rows[i].want = maps.Clone(rows[i].want)
		maps.DeleteFunc(rows[i].want, func(field, _ string) bool { return !slices.Contains(columns, field) })
	}
	d := s.start()
	waitRows(t, s, codec, rows, 1)
	if binary {
		s.waitLog(d, "format=binary")
	} else {
		s.waitLog(d, `msg="the stream stays in text mode: cdc decodes binary values of the built-in base types only" connector=`+s.name+` component=source column="public.types.en (mood)"`)
		s.waitLog(d, "format=text")
	}
	insert(101) // read from the stream
	s.exec(`UPDATE types SET tx = tx || '' WHERE id >= 101`)
	waitRows(t, s, codec, rows, 1, 101)
}

// typesSchema writes the value schema of the types entity with the fields
// given (and id), and returns its path.
func typesSchema(t *testing.T, columns []string) string {
	t.Helper()
	var schema map[string]any
	if err := json.Unmarshal([]byte(readFile(t, "testdata/postgres-types.avsc")), &schema); err != nil {
		t.Fatal(err)
	}
	schema["fields"] = slices.DeleteFunc(schema["fields"].([]any), func(f any) bool {
		name := f.(map[string]any)["name"].(string)
		return name != "id" && !slices.Contains(columns, name)
	})
	text, err := json.Marshal(schema)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "types.avsc")
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A timestamp past what microseconds since 1970 in a long can count
// (PostgreSQL goes to 294276 AD) is a value error naming the row, in the
// snapshot as in the stream: never a wrapped value.
func TestPostgresTimestampPastTheLongRangeIsAValueError(t *testing.T) {
	for _, path := range []string{"snapshot", "stream"} {
		t.Run(path, func(t *testing.T) {
			s := newEmptyScenario(t)
			s.exec(`CREATE TABLE event (id bigint PRIMARY KEY, at timestamptz NOT NULL)`, `ALTER TABLE event REPLICA IDENTITY FULL`,
				`INSERT INTO event VALUES (1, '2024-01-01 00:00:00+00')`)
			s.useEntities(ownEntity{name: "event", table: "event", key: "[id]",
				schema: avroRecord("Event", avroField("id", `"long"`), avroField("at", `{"type":"long","logicalType":"timestamp-micros"}`)),
				fields: "id: id\nat: at"})
			far := `INSERT INTO event VALUES (7, '294270-01-01 00:00:00+00')`
			if path == "snapshot" {
				s.exec(far)
			}
			s.start()
			want := `in the snapshot row id=7`
			if path == "stream" {
				s.verified()
				s.exec(far)
				want = `at position`
			}
			s.mustExit(`field "at": public.event column at value 294270-01-01 00:00:00+00`, want, "years 290308 BC to 294246 AD")
		})
	}
}

// typeRow is a row of a type catalogue test: its SQL values after the id,
// and each field's expected value as renderAvro writes it ("null" where
// none is given).
type typeRow struct {
	values string
	want   map[string]string
}

// waitRows waits until the topic test.types holds the expected rows at each
// base id (the rows' ids are base, base+1, ...).
func waitRows(t *testing.T, s *scenario, codec *harness.Codec, rows []typeRow, bases ...int) {
	t.Helper()
	var problems []string
	err := harness.Eventually(60*time.Second, func() (bool, error) {
		if err := s.daemonsAlive(); err != nil {
			return false, err
		}
		records, err := harness.ReadTopic(s.ctx, s.brokers, "test.types")
		if err != nil {
			return false, err
		}
		state, err := codec.Materialize(records)
		if err != nil {
			return false, err
		}
		problems = nil
		for _, base := range bases {
			for i, row := range rows {
				key := fmt.Sprintf(`{"id":%d}`, base+i)
				got, ok := state[key]
				if !ok {
					problems = append(problems, "missing "+key)
					continue
				}
				for field, value := range got {
					if field == "id" {
						continue
					}
					expected, ok := row.want[field]
					if !ok {
						expected = "null"
					}
					if r := renderAvro(value); r != expected {
						problems = append(problems, fmt.Sprintf("%s %s: got %s, want %s", key, field, truncate(r, 60), truncate(expected, 60)))
					}
				}
			}
		}
		return len(problems) == 0, nil
	})
	if err != nil {
		t.Fatalf("%v:\n%s", err, strings.Join(problems, "\n"))
	}
}

// A column of a type cdc decodes in text only, added while the stream is in
// binary mode, arrives in binary: the stream is restarted, in text mode,
// from the checkpoint, and the change is not lost.
func TestAColumnAddedThatBinaryModeCannotCarryRestartsTheStreamInText(t *testing.T) {
	skipWithout(t, "binary")
	s := newScenario(t)
	d := s.start()
	s.waitCustomersMatch()
	s.waitLog(d, "format=binary")
	s.exec(`ALTER TABLE customer ADD COLUMN tags text[]`,
		`UPDATE customer SET tags = '{a,b}', email = 'tagged@example.com' WHERE customer_id = 1`)
	s.waitLog(d, "column tags (text[]) sent in binary, which cdc cannot decode for its type: cdc restarts the stream, which stays in text mode while the column exists")
	s.waitLog(d, "format=text")
	s.waitCustomersMatch()
}
