package mysql

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// Expectations come from MySQL's documentation of the types' text forms and
// ranges, and from the proleptic Gregorian calendar, not from the code.
func TestParseTemporalText(t *testing.T) {
	for _, c := range []struct {
		text string
		kind cdc.Kind
		want int64
		err  string
	}{
		{"1970-01-01", cdc.KindDate, 0, ""},
		{"1000-01-01", cdc.KindDate, -354285, ""},
		{"9999-12-31", cdc.KindDate, 2932896, ""},
		{"2024-02-29", cdc.KindDate, 19782, ""},
		{"2023-02-29", cdc.KindDate, 0, "not a date of the calendar"},
		{"0000-00-00", cdc.KindDate, 0, "zero date"},
		{"2020-00-15", cdc.KindDate, 0, "zero date"},
		{"1970-01-01 00:00:00", cdc.KindTimestamp, 0, ""},
		{"1969-12-31 23:59:59.999999", cdc.KindTimestamp, -1, ""},
		{"2038-01-19 03:14:07.5", cdc.KindTimestamp, 2147483647_500000, ""},
		{"0000-00-00 00:00:00.000", cdc.KindTimestamp, 0, "zero date"},
		{"2020-01-01 24:00:00", cdc.KindTimestamp, 0, "not a datetime"},
		{"838:59:59", cdc.KindDuration, 3020399_000000, ""},
		{"-838:59:59.000000", cdc.KindDuration, -3020399_000000, ""},
		{"-00:00:00.5", cdc.KindDuration, -500000, ""},
		{"12:34:56.000789", cdc.KindDuration, 45296_000789, ""},
		{"12:60:00", cdc.KindDuration, 0, "not a time"},
		{"12:34", cdc.KindDuration, 0, "not a time"},
		{"12:34:5x", cdc.KindDuration, 0, "not a time"},
		{"12:34:56.1234567", cdc.KindDuration, 0, "not a time"},
		{"2020-01-01 1:00:00", cdc.KindTimestamp, 0, "not a datetime"},
		{"2020-1-01", cdc.KindDate, 0, "not a date"},
	} {
		d := &decoder{kind: c.kind, zero: ZeroDatesError}
		v, err := d.parse([]byte(c.text))
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want %q", c.text, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.text, err)
		case c.err == "" && v.Int != c.want:
			t.Errorf("%q: %d, want %d", c.text, v.Int, c.want)
		}
	}
}

func TestZeroDatesFollowTheConfiguredRule(t *testing.T) {
	null := &decoder{kind: cdc.KindTimestamp, zero: ZeroDatesNull}
	if v, err := null.parse([]byte("0000-00-00 00:00:00")); err != nil || !v.IsNull() {
		t.Errorf("zero_dates null: %v %v", v, err)
	}
	strict := &decoder{kind: cdc.KindDate, zero: ZeroDatesError}
	if _, err := strict.parse([]byte("0000-00-00")); !errors.Is(err, errZeroDate) || !strings.Contains(zeroDateHint(err), "zero_dates: null") {
		t.Errorf("zero_dates error: %v", err)
	}
	// With the null rule every date column counts as nullable, so a schema
	// without a null branch is refused at start-up rather than failing later.
	c, _ := columnType{name: "d", base: "date"}.column(ZeroDatesNull)
	if !c.Nullable {
		t.Error("a NOT NULL date column must count as nullable under zero_dates: null")
	}
}

// MySQL's latin1 is Windows-1252, with the five bytes cp1252 leaves undefined
// mapped to the C1 controls of the same code.
func TestLatin1IsWindows1252(t *testing.T) {
	got, _ := latin1ToUTF8([]byte{'a', 0x80, 0x81, 0x9f, 0xe9, 0xff})
	if want := "a\u20ac\u0081\u0178\u00e9\u00ff"; string(got) != want {
		t.Errorf("%q, want %q", got, want)
	}
	// ASCII is checked eight bytes a step: a high byte anywhere is converted.
	for _, in := range []string{"plain ascii, long enough", "abcdefg\xe9ijklmnop", "abcdefghijklmnop\xe9"} {
		got, _ := latin1ToUTF8([]byte(in))
		want := strings.ReplaceAll(in, "\xe9", "\u00e9")
		if string(got) != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestEnumAndSetFromIndexes(t *testing.T) {
	d := &decoder{t: columnType{base: "set", elements: []string{"a", "b", "c"}}, kind: cdc.KindString}
	if v, err := d.binlog(int64(5), new(memory.Arena)); err != nil || string(v.Bytes) != "a,c" {
		t.Errorf("set 0b101: %q %v", v.Bytes, err)
	}
	if _, err := d.binlog(int64(8), new(memory.Arena)); err == nil {
		t.Error("set 0b1000 names a fourth element of three: want an error")
	}
	e := &decoder{t: columnType{base: "enum", elements: []string{"small", "large"}}, kind: cdc.KindString}
	if v, err := e.binlog(int64(2), new(memory.Arena)); err != nil || string(v.Bytes) != "large" {
		t.Errorf("enum 2: %q %v", v.Bytes, err)
	}
	if v, err := e.binlog(int64(0), new(memory.Arena)); err != nil || string(v.Bytes) != "" {
		t.Errorf("enum 0 (the invalid value): %q %v", v.Bytes, err)
	}
}

func TestUnsignedNeverWraps(t *testing.T) {
	d := &decoder{t: columnType{base: "bigint", unsigned: true}, kind: cdc.KindUint}
	if v, _ := d.binlog(uint64(18446744073709551615), new(memory.Arena)); v.Uint() != 18446744073709551615 {
		t.Errorf("bigint unsigned max: %d", v.Uint())
	}
	// Read as signed bits when the binlog lacks signedness: reinterpreted, not wrapped.
	small := &decoder{t: columnType{base: "tinyint", unsigned: true}, kind: cdc.KindUint}
	if v, _ := small.binlog(int8(-1), new(memory.Arena)); v.Uint() != 255 {
		t.Errorf("tinyint unsigned 255 read as -1: %d", v.Uint())
	}
}

func TestPositionRoundTrip(t *testing.T) {
	for _, p := range []Position{
		{File: "mysql-bin.000003", Offset: 1234, Row: 5},
		{File: "mysql-bin.000003", Offset: 4, GTIDSet: "0-1-42,1-2-7"},
		{File: "binlog.000001", Offset: 157, Row: 1, GTIDSet: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11-18", Snapshot: true},
		{File: "binlog.000001", Offset: 157, Snapshot: true, GTIDSet: "0-1-42", Cursor: &cdc.SnapshotCursor{
			Done: []cdc.TableName{{Schema: "shop", Name: "a"}}, Table: cdc.TableName{Schema: "shop", Name: "b"}, After: []string{"x y=z", "7"}}},
		{File: "binlog.000002", Offset: 4, Row: 3, GTIDSet: "0-1-43", Backfill: &cdc.Backfill{Entities: []string{"order_v2"},
			Tables: []cdc.TableName{{Schema: "shop", Name: "orders"}}, Cursor: cdc.SnapshotCursor{Table: cdc.TableName{Schema: "shop", Name: "orders"}, After: []string{"9"}}}},
	} {
		got, err := ParsePosition(p.String())
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("%s: %+v %v", p, got, err)
		}
	}
	for _, bad := range []string{"", "file=a pos=1", "file=a pos=x row=0", "file=a pos=1 row=-1", "file=a pos=1 row=0 cursor=table=a.b", "00000001/00000002:0000000003"} {
		if _, err := ParsePosition(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestParseDSN(t *testing.T) {
	for dsn, want := range map[string]endpoint{
		"cdc:s3cr:t@x@tcp(db.example:3307)/shop": {host: "db.example", port: 3307, user: "cdc", password: "s3cr:t@x"},
		"root@tcp(127.0.0.1:3306)/":              {host: "127.0.0.1", port: 3306, user: "root"},
		"mysql://cdc:pw@db/shop":                 {host: "db", port: 3306, user: "cdc", password: "pw"},
		"cdc:pw@tcp(db:3306)/shop?tls=true":      {host: "db", port: 3306, user: "cdc", password: "pw", tls: "true"},
		"mysql://cdc:pw@db/shop?tls=skip-verify": {host: "db", port: 3306, user: "cdc", password: "pw", tls: "skip-verify"},
	} {
		got, err := parseDSN(dsn)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v", dsn, got, err)
		}
	}
	for _, bad := range []string{"postgres://x@y/z", "cdc:pw@unix(/tmp/sock)/shop", "cdc:pw@tcp(db:3306)/shop?tls=maybe", "cdc:pw@tcp(db:3306)/shop?parseTime=true", "cdc:secret@db"} {
		_, err := parseDSN(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error shows the password: %v", bad, err)
		}
	}
}

func BenchmarkParseDatetime(b *testing.B) {
	text := []byte("2024-02-29 12:34:56.123456")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseDatetime(text); err != nil {
			b.Fatal(err)
		}
	}
}

// Types and charsets cdc cannot read exactly are refused when the table is
// described, naming the column and what to do.
func TestUnreadableColumnsAreRefused(t *testing.T) {
	for _, c := range []struct {
		t    columnType
		want string
	}{
		{columnType{name: "title", base: "varchar", charset: "utf16", databaseType: "varchar(20)"},
			"column title (varchar(20)) uses character set utf16, which cdc cannot convert to UTF-8 yet (supported: utf8mb4, utf8mb3, latin1, ascii): convert the column to utf8mb4"},
		{columnType{name: "v", base: "vector", databaseType: "vector(3)"}, "column v has type vector(3), which cdc cannot read yet"},
	} {
		if _, err := c.t.column(ZeroDatesError); err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %q", c.t, err, c.want)
		}
	}
}

// The next chunk's query holds the last key as literals: text in hex with a
// charset introducer, so no byte of a key is ever read as SQL.
func TestKeyLiteralsCannotInjectSQL(t *testing.T) {
	for _, c := range []struct {
		kv   keyValue
		kind cdc.Kind
		want string
	}{
		{keyValue{typ: mysql.FieldValueTypeSigned, signed: -42}, cdc.KindInt, "-42"},
		{keyValue{typ: mysql.FieldValueTypeUnsigned, uns: 18446744073709551615}, cdc.KindUint, "18446744073709551615"},
		{keyValue{typ: mysql.FieldValueTypeString, raw: []byte("x' OR 1=1 -- ")}, cdc.KindString, "_utf8mb4 X'7827204f5220313d31202d2d20'"},
		{keyValue{typ: mysql.FieldValueTypeString, raw: []byte{0, 0xff}}, cdc.KindBytes, "X'00ff'"},
		{keyValue{typ: mysql.FieldValueTypeString, raw: []byte("2024-02-29 12:00:00")}, cdc.KindTimestamp, "'2024-02-29 12:00:00'"},
		{keyValue{typ: mysql.FieldValueTypeString, raw: []byte("-12.50")}, cdc.KindDecimal, "-12.50"},
	} {
		if got, err := keyLiteral(columnType{base: "int"}, c.kind, c.kv.text()); err != nil || got != c.want {
			t.Errorf("%s key %q: %s, %v, want %s", c.kind, c.kv.raw, got, err, c.want)
		}
	}
	// A resumed snapshot reads keys back from the checkpoint: only what a
	// column of the kind prints is taken unquoted.
	for _, c := range []struct {
		kind cdc.Kind
		text string
	}{
		{cdc.KindInt, "1 OR 1=1"}, {cdc.KindDecimal, "1e9"}, {cdc.KindTimestamp, "2024' OR '1"}, {cdc.KindDate, ""}, {cdc.KindFloat, "1.5"},
	} {
		if got, err := keyLiteral(columnType{base: "int"}, c.kind, c.text); err == nil {
			t.Errorf("%s key %q became the literal %s", c.kind, c.text, got)
		}
	}
}

// A kept key survives the driver reusing its buffer for the next row.
func TestKeptKeyOwnsItsBytes(t *testing.T) {
	buf := []byte("abc")
	var kv keyValue
	v := mysql.NewFieldValue(mysql.FieldValueTypeString, 0, buf)
	kv.keep(&v)
	copy(buf, "xyz")
	if got, _ := keyLiteral(columnType{base: "varchar", charset: "utf8mb4"}, cdc.KindString, kv.text()); got != "_utf8mb4 X'616263'" {
		t.Errorf("literal %s after the buffer changed", got)
	}
}

// The snapshot's values survive the driver reusing its buffer for the next
// row, and integers decode to their kinds.
func TestSnapshotValuesOwnTheirBytes(t *testing.T) {
	cases := []struct {
		typ  columnType
		in   mysql.FieldValue
		want string
	}{
		{columnType{base: "varchar", charset: "utf8mb4"}, mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte("zürich")), "zürich"},
		{columnType{base: "decimal", precision: 12, scale: 2}, mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte("-234.56")), "-234.56"},
		{columnType{base: "varbinary", length: 8}, mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte{0, 1, 2}), "000102"},
		{columnType{base: "json"}, mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte(`{"a": 1}`)), `{"a": 1}`},
		{columnType{base: "datetime", fsp: 6}, mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte("2024-01-10 17:36:00.500000")), "2024-01-10T17:36:00.5Z"},
		{columnType{base: "date"}, mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte("2024-02-29")), "2024-02-29"},
		{columnType{base: "bigint"}, mysql.NewFieldValue(mysql.FieldValueTypeSigned, uint64(1<<63|12345), nil), "-9223372036854763463"},
		{columnType{base: "year"}, mysql.NewFieldValue(mysql.FieldValueTypeUnsigned, 2024, nil), "2024"},
		{columnType{base: "bit", bits: 12}, mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte{0x01, 0x02}), "258"},
	}
	for _, c := range cases {
		col, err := c.typ.column(ZeroDatesError)
		if err != nil {
			t.Fatal(err)
		}
		var arena memory.Arena
		v, err := newDecoder(c.typ, col, ZeroDatesError).snapshot(&c.in, &arena)
		if err != nil {
			t.Fatalf("%s: %v", c.typ.base, err)
		}
		clear(c.in.AsString()) // the next row
		if got := v.String(); got != c.want {
			t.Errorf("%s: %q after the driver's buffer changed, want %q", c.typ.base, got, c.want)
		}
	}
}

// A snapshot row the source cannot decode stops it with the table or the
// column named.
func TestSnapshotRowErrorsNameTheirColumn(t *testing.T) {
	state := testTableState(t, []columnType{{name: "id", base: "bigint"}, {name: "name", base: "varchar", charset: "utf8mb4"}}, nil)
	state.table.Name = cdc.TableName{Schema: "shop", Name: "customer"}
	q := &tableQuery{table: state.table, decoders: state.decoders}
	id := mysql.NewFieldValue(mysql.FieldValueTypeSigned, 7, nil)
	for _, c := range []struct {
		row  []mysql.FieldValue
		want string
	}{
		{[]mysql.FieldValue{id}, "table shop.customer has 1 columns, not the 2 described: its definition changed during the snapshot; restart cdc"},
		{[]mysql.FieldValue{id, mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte{'a', 0xff})}, `column name: not valid UTF-8: "a\xff"`},
	} {
		var arena memory.Arena
		if _, err := q.decode(c.row, &arena); err == nil || err.Error() != c.want {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

// A key column is read in chunks only where a literal compares as ORDER BY
// sorts: ENUM and SET sort by their index, BIT comes as raw bytes; text in a
// single-byte charset is written back as the column's own bytes.
func TestKeysThatSortUnlikeTheirLiteralsAreNotChunked(t *testing.T) {
	for _, c := range []struct {
		t    columnType
		kind cdc.Kind
	}{
		{columnType{base: "enum", charset: "utf8mb4"}, cdc.KindString},
		{columnType{base: "set", charset: "utf8mb4"}, cdc.KindString},
		{columnType{base: "bit", bits: 8}, cdc.KindUint},
		{columnType{base: "float"}, cdc.KindFloat},
		{columnType{base: "json"}, cdc.KindJSON},
	} {
		if k := literalKind(c.t, c.kind); k != "" {
			t.Errorf("%s: keys written back as %s literals", c.t.base, k)
		}
	}
	latin1 := columnType{base: "varchar", charset: "latin1"}
	if got, err := keyLiteral(latin1, cdc.KindString, "caf\xe9"); err != nil || got != "_latin1 X'636166e9'" {
		t.Errorf("latin1 key: %s, %v", got, err)
	}
}

// Bytes a single-byte charset has no character for decode to an invalid
// value (a value error when mapped) from the binlog and from the snapshot
// alike, never to '?' on one path and a stop on the other.
func TestTextOutsideItsCharsetIsInvalidOnBothPaths(t *testing.T) {
	ascii := columnType{name: "a", base: "varchar", charset: "ascii"}
	col, _ := ascii.column(ZeroDatesError)
	d := newDecoder(ascii, col, ZeroDatesError)
	var arena memory.Arena
	fromBinlog, err := d.binlog([]byte("A\xe9"), &arena)
	if err != nil || fromBinlog.Kind != cdc.KindInvalid || fromBinlog.String() != `"A\xe9"` {
		t.Errorf("binlog: %v %v, %v", fromBinlog.Kind, fromBinlog, err)
	}
	v := mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte("A\xe9"))
	fromSnapshot, err := d.snapshot(&v, &arena)
	if err != nil || !fromSnapshot.Equal(fromBinlog) {
		t.Errorf("snapshot: %v %v, %v; binlog gave %v", fromSnapshot.Kind, fromSnapshot, err, fromBinlog)
	}
	latin1 := columnType{name: "l", base: "varchar", charset: "latin1"}
	col, _ = latin1.column(ZeroDatesError)
	d = newDecoder(latin1, col, ZeroDatesError)
	v = mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte("caf\xe9 \x80"))
	if got, err := d.snapshot(&v, &arena); err != nil || got.String() != "café €" {
		t.Errorf("latin1 snapshot: %v, %v", got, err)
	}
}
