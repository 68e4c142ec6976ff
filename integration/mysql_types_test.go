package integration

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
)

const mysqlTypesTable = `CREATE TABLE types (
	id bigint PRIMARY KEY,
	ti tinyint, ti_u tinyint unsigned, si smallint, mi mediumint, mi_u mediumint unsigned,
	i int, i_u int unsigned, bi bigint, bi_u bigint unsigned, dec_ decimal(10,3),
	f float, d double, dt date, dtm datetime(6), ts timestamp(3) NULL, tm time(6), yr year,
	c char(10) CHARACTER SET utf8mb4, vc varchar(50) CHARACTER SET utf8mb4, l1 varchar(20) CHARACTER SET latin1, tx text CHARACTER SET utf8mb4,
	bin binary(4), vb varbinary(10), bl blob, b1 bit(1), b12 bit(12),
	en enum('small','large'), st set('a','b','c'), js json,
	dwide decimal(65,30), dint decimal(18,0)
) ENGINE = InnoDB`

// One row per edge of each type's range, as MySQL's manual gives them, with
// the values the entity must carry, written from the manual (Avro decoded by
// goavro: decimals as exact fractions, dates and timestamps as instants, bytes
// in hex, floats in their shortest exact form).
var mysqlTypeRows = []typeRow{
	{
		values: `-128, 0, -32768, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, -9999999.999,
			-1.1, -1.7976931348623157e308, '1000-01-01', '1000-01-01 00:00:00', '1970-01-01 00:00:01.000', '-838:59:59', 1901,
			'', '', '', '', X'00', X'', X'', b'0', b'0', 'small', '', '[]',
			-99999999999999999999999999999999999.999999999999999999999999999999, -999999999999999999`,
		want: map[string]string{"ti": "-128", "ti_u": "0", "si": "-32768", "mi": "-8388608", "mi_u": "0", "i": "-2147483648", "i_u": "0",
			"bi": "-9223372036854775808", "bi_u": "0", "dec": "-9999999.999", "f": "-1.1", "d": "-1.7976931348623157e+308",
			"dt": "1000-01-01T00:00:00Z", "dtm": "1000-01-01T00:00:00Z", "ts": "1970-01-01T00:00:01Z", "tm": "-3020399000000", "yr": "1901",
			"c": "", "vc": "", "l1": "", "tx": "", "bin": "00000000", "vb": "", "bl": "", "b1": "false", "b12": "0", "en": "small", "st": "", "js": "[]",
			"dwide": "-99999999999999999999999999999999999.999999999999999999999999999999", "dint": "-999999999999999999"},
	},
	{
		values: `127, 255, 32767, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615, 9999999.999,
			3.40282e38, 1.7976931348623157e308, '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999', '838:59:59', 2155,
			'ünïcödé', '日本語 🎉', 'café €', REPEAT('long text ', 2000), 'ab', X'00FF', X'DEADBEEF', b'1', b'111111111111', 'large', 'a,c', '{"k": [1, 2.50, "x"]}',
			99999999999999999999999999999999999.999999999999999999999999999999, 999999999999999999`,
		want: map[string]string{"ti": "127", "ti_u": "255", "si": "32767", "mi": "8388607", "mi_u": "16777215", "i": "2147483647", "i_u": "4294967295",
			"bi": "9223372036854775807", "bi_u": "18446744073709551615", "dec": "9999999.999", "f": "3.40282e+38", "d": "1.7976931348623157e+308",
			"dt": "9999-12-31T00:00:00Z", "dtm": "9999-12-31T23:59:59.999999Z", "ts": "2038-01-19T03:14:07.999Z", "tm": "3020399000000", "yr": "2155",
			"c": "ünïcödé", "vc": "日本語 🎉", "l1": "café €", "tx": strings.Repeat("long text ", 2000),
			"bin": "61620000", "vb": "00ff", "bl": "deadbeef", "b1": "true", "b12": "4095", "en": "large", "st": "a,c", "js": `{"k": [1, 2.50, "x"]}`,
			"dwide": "99999999999999999999999999999999999.999999999999999999999999999999", "dint": "999999999999999999"},
	},
	{
		values: `0, 1, 1, 1, 1, 1, 1, 1, 1, 0.5,
			0.1, 0.1, '2024-02-29', '2024-02-29 12:34:56.000001', '2024-02-29 12:34:56.123', '-00:00:00.5', 2024,
			'a', 'b', 'c', 'd', X'01020304', X'61', X'62', b'1', b'000000000001', 'small', 'b', 'null',
			0.000000000000000000000000000001, 1`,
		want: map[string]string{"ti": "0", "ti_u": "1", "si": "1", "mi": "1", "mi_u": "1", "i": "1", "i_u": "1", "bi": "1", "bi_u": "1", "dec": "0.5",
			"f": "0.1", "d": "0.1", "dt": "2024-02-29T00:00:00Z", "dtm": "2024-02-29T12:34:56.000001Z", "ts": "2024-02-29T12:34:56.123Z", "tm": "-500000", "yr": "2024",
			"c": "a", "vc": "b", "l1": "c", "tx": "d", "bin": "01020304", "vb": "61", "bl": "62", "b1": "true", "b12": "1", "en": "small", "st": "b", "js": "null",
			"dwide": "0.000000000000000000000000000001", "dint": "1"},
	},
	{
		// Zero dates, sent as NULL under zero_dates: null.
		values: `NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
			NULL, NULL, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', NULL, NULL,
			NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
		want: map[string]string{},
	},
}

// renderAvro renders a value goavro decoded in the forms the expectations use.
func renderAvro(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		for _, inner := range v {
			return renderAvro(inner)
		}
	case *big.Rat:
		if v.IsInt() {
			return v.Num().String()
		}
		return strings.TrimRight(v.FloatString(30), "0")
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case []byte:
		return hex.EncodeToString(v)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// Every type, at the edges of its range, reads the same in the snapshot (text
// protocol) and in the binlog (row events), and as the manual says.
func TestMySQLTypesInSnapshotAndStream(t *testing.T) {
	s := newEmptyMySQLScenario(t)
	s.exec("SET SESSION sql_mode = ''", mysqlTypesTable)
	insert := func(base int) {
		var stmts []string
		for i, r := range mysqlTypeRows {
			stmts = append(stmts, fmt.Sprintf("INSERT INTO types VALUES (%d, %s)", base+i, r.values))
		}
		stmts = append(stmts, fmt.Sprintf("INSERT INTO types (id) VALUES (%d)", base+len(mysqlTypeRows))) // all NULL
		// Zero dates need a permissive sql_mode, in the same session.
		s.exec(append([]string{"SET SESSION sql_mode = ''"}, stmts...)...)
	}
	insert(1) // read by the snapshot
	schema, _ := filepath.Abs("testdata/mysql-types.avsc")
	var fields strings.Builder
	for _, f := range []string{"ti", "ti_u", "si", "mi", "mi_u", "i", "i_u", "bi", "bi_u", "f", "d", "dt", "dtm", "ts", "tm", "yr",
		"c", "vc", "l1", "tx", "bin", "vb", "bl", "b1", "b12", "en", "st", "js", "dwide", "dint"} {
		fmt.Fprintf(&fields, "      %s: %s\n", f, f)
	}
	config := `name: ` + s.name + `
source: {kind: mysql, dsn: "${SHOP_MYSQL_DSN}", mysql: {zero_dates: "null"}}
kafka: {brokers: ["${KAFKA_BROKERS}"]}
http: {listen: "${CDC_HTTP_LISTEN}"}
entities:
  - name: types
    table: ` + s.name + `.types
    topic: test.types
    schema: ` + schema + `
    key: [id]
    fields:
      id: id
      dec: dec_
` + fields.String()
	if err := os.WriteFile(s.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	codec, err := harness.NewCodec(schema, `{"type":"record","name":"TypesKey","namespace":"test.mysql","fields":[{"name":"id","type":"long"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	// The row of NULLs inserted after the others.
	rows := append(mysqlTypeRows[:len(mysqlTypeRows):len(mysqlTypeRows)], typeRow{})
	s.start()
	waitRows(t, s, codec, rows, 1)
	insert(101) // read from the binlog
	waitRows(t, s, codec, rows, 1, 101)
	// MariaDB's compressed row events carry the same images, compressed.
	s.exec("SET GLOBAL log_bin_compress = ON", "SET GLOBAL log_bin_compress_min_len = 10")
	t.Cleanup(func() { s.exec("SET GLOBAL log_bin_compress = OFF") })
	insert(201)
	waitRows(t, s, codec, rows, 1, 101, 201)
}
