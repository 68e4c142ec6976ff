package mapping

import (
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/linkedin/goavro/v2"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

const customerSchema = `{
  "type": "record", "name": "Customer", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "email", "type": "string"},
    {"name": "balance", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "born", "type": ["null", {"type": "int", "logicalType": "date"}], "default": null},
    {"name": "created", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "active", "type": "boolean"},
    {"name": "score", "type": ["null", "double"], "default": null}
  ]}`

func customerTable() *cdc.Table {
	return &cdc.Table{
		Name: cdc.TableName{Schema: "public", Name: "customer"},
		Columns: []cdc.Column{
			{Name: "customer_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64},
			{Name: "email", DatabaseType: "text", Kind: cdc.KindString},
			{Name: "balance", DatabaseType: "numeric(10,2)", Kind: cdc.KindDecimal, Precision: 10, Scale: 2},
			{Name: "birth_date", DatabaseType: "date", Kind: cdc.KindDate, Nullable: true},
			{Name: "created_at", DatabaseType: "timestamp with time zone", Kind: cdc.KindTimestamp, FractionDigits: 6, WithTimeZone: true},
			{Name: "active", DatabaseType: "boolean", Kind: cdc.KindBool},
			{Name: "score", DatabaseType: "double precision", Kind: cdc.KindFloat, Bits: 64, Nullable: true},
			{Name: "password_hash", DatabaseType: "text", Kind: cdc.KindString},
		},
		PrimaryKey: []int{0},
	}
}

func customerEntity(tb testing.TB) *Entity {
	tb.Helper()
	s, err := avro.Parse(customerSchema)
	if err != nil {
		tb.Fatal(err)
	}
	return &Entity{
		Name: "customer", Table: cdc.TableName{Schema: "public", Name: "customer"}, Topic: "shop.customer.v1",
		Schema: s.(*avro.RecordSchema), SchemaFile: "schemas/customer.avsc", Key: []string{"id"}, Origin: "cdc.yaml:10",
		Fields: []Field{
			{Name: "id", Column: "customer_id", Origin: "cdc.yaml:14"},
			{Name: "email", Column: "email", Origin: "cdc.yaml:15"},
			{Name: "balance", Column: "balance", Origin: "cdc.yaml:16"},
			{Name: "born", Column: "birth_date", Origin: "cdc.yaml:17"},
			{Name: "created", Column: "created_at", Origin: "cdc.yaml:18"},
			{Name: "active", Column: "active", Origin: "cdc.yaml:19"},
			{Name: "score", Column: "score", Origin: "cdc.yaml:20"},
		},
	}
}

func customerRow(id int64, email, balance string) []cdc.Value {
	return []cdc.Value{
		cdc.Int(id), cdc.String([]byte(email)), cdc.Decimal([]byte(balance)), cdc.Null(),
		cdc.Timestamp(1_700_000_000_123_456), cdc.Bool(true), cdc.Float(0.5), cdc.String([]byte("secret")),
	}
}

func mustCompile(t *testing.T, e *Entity, tbl *cdc.Table) *Plan {
	t.Helper()
	p, err := Compile(e, tbl, Framing{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

// decode reads an encoded record with goavro, an implementation independent of ours.
func decode(t *testing.T, schema string, data []byte) map[string]any {
	t.Helper()
	codec, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	native, rest, err := codec.NativeFromBinary(data)
	if err != nil {
		t.Fatalf("goavro cannot decode %x: %v", data, err)
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left after the record", len(rest))
	}
	return native.(map[string]any)
}

func TestInsertEncodesEveryFieldExactly(t *testing.T) {
	e := customerEntity(t)
	p := mustCompile(t, e, customerTable())
	recs, err := p.Map(&cdc.Change{Table: customerTable(), Op: cdc.OpInsert, After: customerRow(42, "a@example.com", "-1234.50")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Value == nil {
		t.Fatalf("want one upsert, got %+v", recs)
	}
	v := decode(t, customerSchema, recs[0].Value)
	if v["id"] != int64(42) || v["email"] != "a@example.com" || v["active"] != true {
		t.Errorf("id, email, active = %v %v %v", v["id"], v["email"], v["active"])
	}
	if r := v["balance"].(*big.Rat); r.Cmp(big.NewRat(-123450, 100)) != 0 {
		t.Errorf("balance = %v, want -1234.50", r.FloatString(2))
	}
	if v["born"] != nil {
		t.Errorf("born = %v, want null", v["born"])
	}
	want := time.Date(2023, 11, 14, 22, 13, 20, 123_456_000, time.UTC)
	if got := v["created"].(time.Time); !got.Equal(want) {
		t.Errorf("created = %v, want %v", got, want)
	}
	if got := v["score"].(map[string]any)["double"]; got != 0.5 {
		t.Errorf("score = %v", got)
	}
	ks, _ := e.KeySchema()
	k := decode(t, ks.String(), recs[0].Key)
	if k["id"] != int64(42) || len(k) != 1 {
		t.Errorf("key = %v, want {id: 42}", k)
	}
}

// Records are encoded in a scratch buffer the plan reuses: each record's key
// and value must be copies of their own, in an arena as when allocated.
func TestRecordsMappedIntoAnArenaKeepTheirBytes(t *testing.T) {
	p := mustCompile(t, customerEntity(t), customerTable())
	var arena memory.Arena
	first, err := p.Map(&cdc.Change{Op: cdc.OpInsert, After: customerRow(1, "first@example.com", "1.00")}, nil, &arena)
	if err != nil {
		t.Fatal(err)
	}
	key, value := string(first[0].Key), string(first[0].Value)
	second, err := p.Map(&cdc.Change{Op: cdc.OpInsert, After: customerRow(2, "second@example.com", "2.00")}, nil, &arena)
	if err != nil {
		t.Fatal(err)
	}
	if string(first[0].Key) != key || string(first[0].Value) != value {
		t.Fatal("mapping a second change overwrote the first record's bytes")
	}
	alone, err := p.Map(&cdc.Change{Op: cdc.OpInsert, After: customerRow(2, "second@example.com", "2.00")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(second[0].Key) != string(alone[0].Key) || string(second[0].Value) != string(alone[0].Value) {
		t.Error("a record carved from an arena differs from the same record allocated")
	}
}

func TestHeadersPrecedeEncodedRecords(t *testing.T) {
	e := customerEntity(t)
	p, err := Compile(e, customerTable(), Framing{Key: []byte{0, 0, 0, 0, 7}, Value: []byte{0, 0, 0, 0, 8}})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := p.Map(&cdc.Change{Op: cdc.OpRead, After: customerRow(1, "x", "0")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(recs[0].Key[:5]) != "\x00\x00\x00\x00\x07" || string(recs[0].Value[:5]) != "\x00\x00\x00\x00\x08" {
		t.Fatalf("headers missing: key %x value %x", recs[0].Key, recs[0].Value)
	}
	decode(t, customerSchema, recs[0].Value[5:])
}

func TestUpdateOfHiddenColumnsOnlyEmitsNothing(t *testing.T) {
	p := mustCompile(t, customerEntity(t), customerTable())
	before, after := customerRow(1, "a@x", "1.00"), customerRow(1, "a@x", "1.00")
	after[7] = cdc.String([]byte("new-secret"))
	recs, err := p.Map(&cdc.Change{Op: cdc.OpUpdate, Before: before, After: after}, nil, nil)
	if err != nil || len(recs) != 0 {
		t.Fatalf("want nothing, got %d records, err %v", len(recs), err)
	}
}

func TestUpdateOfMappedColumnEmitsNewValue(t *testing.T) {
	p := mustCompile(t, customerEntity(t), customerTable())
	recs, err := p.Map(&cdc.Change{Op: cdc.OpUpdate, Before: customerRow(1, "a@x", "1.00"), After: customerRow(1, "b@x", "1.00")}, nil, nil)
	if err != nil || len(recs) != 1 {
		t.Fatalf("want 1 record, got %d, err %v", len(recs), err)
	}
	if got := decode(t, customerSchema, recs[0].Value)["email"]; got != "b@x" {
		t.Errorf("email = %v", got)
	}
}

func TestKeyChangeEmitsTombstoneForOldKeyThenNewValue(t *testing.T) {
	e := customerEntity(t)
	p := mustCompile(t, e, customerTable())
	recs, err := p.Map(&cdc.Change{Op: cdc.OpUpdate, Before: customerRow(1, "a@x", "1.00"), After: customerRow(2, "a@x", "1.00")}, nil, nil)
	if err != nil || len(recs) != 2 {
		t.Fatalf("want 2 records, got %d, err %v", len(recs), err)
	}
	ks, _ := e.KeySchema()
	if recs[0].Value != nil || decode(t, ks.String(), recs[0].Key)["id"] != int64(1) {
		t.Errorf("first record should be the tombstone of key 1: %+v", recs[0])
	}
	if recs[1].Value == nil || decode(t, ks.String(), recs[1].Key)["id"] != int64(2) {
		t.Errorf("second record should be the value of key 2: %+v", recs[1])
	}
}

func TestDeleteEmitsTombstone(t *testing.T) {
	e := customerEntity(t)
	recs, err := mustCompile(t, e, customerTable()).Map(&cdc.Change{Op: cdc.OpDelete, Before: customerRow(9, "a@x", "1.00")}, nil, nil)
	if err != nil || len(recs) != 1 || recs[0].Value != nil || recs[0].Op != cdc.OpDelete {
		t.Fatalf("want one tombstone, got %+v, err %v", recs, err)
	}
	ks, _ := e.KeySchema()
	if decode(t, ks.String(), recs[0].Key)["id"] != int64(9) {
		t.Error("tombstone has the wrong key")
	}
}

func TestUnchangedToastValueIsTakenFromOldRow(t *testing.T) {
	p := mustCompile(t, customerEntity(t), customerTable())
	before, after := customerRow(1, "long@x", "1.00"), customerRow(1, "", "2.00")
	after[1] = cdc.Unchanged()
	recs, err := p.Map(&cdc.Change{Op: cdc.OpUpdate, Before: before, After: after}, nil, nil)
	if err != nil || len(recs) != 1 {
		t.Fatalf("got %d records, err %v", len(recs), err)
	}
	if got := decode(t, customerSchema, recs[0].Value)["email"]; got != "long@x" {
		t.Errorf("email = %v, want the old value", got)
	}
	before[1] = cdc.Unchanged()
	after[1] = cdc.Unchanged()
	if _, err := p.Map(&cdc.Change{Op: cdc.OpUpdate, Before: before, After: after, Position: "p1"}, nil, nil); err == nil ||
		!strings.Contains(err.Error(), "without an old value") {
		t.Errorf("want an error that says the value is missing, got %v", err)
	}
}

// keyOnlyRow is a customer's old row as a log that carries only the primary
// key of old rows has it (REPLICA IDENTITY DEFAULT, binlog_row_image MINIMAL).
func keyOnlyRow(id int64) []cdc.Value {
	row := customerRow(id, "", "")
	for i := 1; i < len(row); i++ {
		row[i] = cdc.Unknown()
	}
	return row
}

func identityTable() *cdc.Table {
	t := customerTable()
	t.Identity = t.PrimaryKey
	return t
}

func TestKeyOnlyOldRows(t *testing.T) {
	e := customerEntity(t)
	e.Where = Condition{Expr: "active", Origin: "cdc.yaml:40"}
	p := mustCompile(t, e, identityTable())
	inactive := customerRow(2, "b@x", "1.00")
	inactive[5] = cdc.Bool(false)
	for _, tc := range []struct {
		name string
		ch   cdc.Change
		want []cdc.Op
	}{
		// The filter reads a column the old row lacks: the row may have been
		// part of the entity, so its delete is tombstoned.
		{"delete", cdc.Change{Op: cdc.OpDelete, Before: keyOnlyRow(1)}, []cdc.Op{cdc.OpDelete}},
		{"update inside", cdc.Change{Op: cdc.OpUpdate, Before: keyOnlyRow(1), After: customerRow(1, "a@x", "1.00")}, []cdc.Op{cdc.OpUpdate}},
		{"update outside", cdc.Change{Op: cdc.OpUpdate, Before: keyOnlyRow(2), After: inactive}, []cdc.Op{cdc.OpDelete}},
		{"key change", cdc.Change{Op: cdc.OpUpdate, Before: keyOnlyRow(1), After: customerRow(3, "a@x", "1.00")}, []cdc.Op{cdc.OpDelete, cdc.OpUpdate}},
	} {
		recs, err := p.Map(&tc.ch, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var ops []cdc.Op
		for _, r := range recs {
			ops = append(ops, r.Op)
		}
		if !slices.Equal(ops, tc.want) {
			t.Errorf("%s: records %v, want %v", tc.name, ops, tc.want)
		}
	}
	// A filter on the key alone is decided from a key-only old row.
	e.Where = Condition{Expr: "customer_id < 100", Origin: "cdc.yaml:40"}
	p = mustCompile(t, e, identityTable())
	if recs, err := p.Map(&cdc.Change{Op: cdc.OpDelete, Before: keyOnlyRow(100)}, nil, nil); err != nil || len(recs) != 0 {
		t.Errorf("delete of a row the filter keeps out: %d records, err %v; want none", len(recs), err)
	}
}

func TestKeyOutsideTheLoggedIdentityIsRefused(t *testing.T) {
	e := customerEntity(t)
	tbl := identityTable()
	tbl.UniqueKeys = [][]int{{1}}
	e.Key = []string{"email"}
	_, err := Compile(e, tbl, Framing{})
	if err == nil || !strings.Contains(err.Error(), "does not carry in the old row") || !strings.Contains(err.Error(), "REPLICA IDENTITY FULL") {
		t.Fatalf("want the key refused for the columns the log lacks, got %v", err)
	}
}

func TestTombstoneWithoutItsKeyStopsEvenUnderDeadLetter(t *testing.T) {
	e := customerEntity(t)
	e.OnError = OnErrorDeadLetter
	p := mustCompile(t, e, customerTable())
	before := keyOnlyRow(1)
	before[0] = cdc.Unknown()
	recs, err := p.Map(&cdc.Change{Op: cdc.OpDelete, Before: before, Position: "p1"}, nil, nil)
	if err == nil || len(recs) != 0 {
		t.Fatalf("want an error and no record (not a dead letter), got %d records, err %v", len(recs), err)
	}
}

func TestValueTheSchemaCannotHoldStopsWithItsPosition(t *testing.T) {
	p := mustCompile(t, customerEntity(t), customerTable())
	_, err := p.Map(&cdc.Change{Op: cdc.OpInsert, After: customerRow(1, "a", "NaN"), Position: "00000000/01000000:0000000003"}, nil, nil)
	want := `entity "customer", field "balance": public.customer column balance value NaN at position "00000000/01000000:0000000003"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant it to contain %s", err, want)
	}
}

func TestCompileReportsEveryMistakeWithItsLine(t *testing.T) {
	e := customerEntity(t)
	e.Fields[1].Column = "mail"                                                                  // missing column
	e.Fields[6].Column = "password_hash"                                                         // text into double
	e.Fields = append(e.Fields, Field{Name: "nickname", Column: "email", Origin: "cdc.yaml:21"}) // not in schema
	_, err := Compile(e, customerTable(), Framing{})
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`cdc.yaml:15: entity "customer", field "email": column "mail" not in public.customer (has: customer_id, email, balance, birth_date, created_at, active, score, password_hash)`,
		`cdc.yaml:20: entity "customer", field "score": column password_hash (text) cannot be held by "double": use "string"`,
		`cdc.yaml:21: entity "customer", field "nickname": not a field of shop.Customer (schemas/customer.avsc)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestCompileRefusesFieldsThatCannotHoldTheColumn(t *testing.T) {
	cases := []struct {
		name   string
		col    cdc.Column
		schema string
		want   string
	}{
		{"bigint into int", cdc.Column{Kind: cdc.KindInt, Bits: 64, DatabaseType: "bigint"}, `"int"`, `use "long"`},
		{"unsigned bigint into long", cdc.Column{Kind: cdc.KindUint, Bits: 64, DatabaseType: "bigint unsigned"}, `"long"`, `"precision":20,"scale":0`},
		{"nullable into plain", cdc.Column{Kind: cdc.KindInt, Bits: 32, Nullable: true, DatabaseType: "integer"}, `"int"`, `make it ["null", "int"]`},
		{"smaller scale", cdc.Column{Kind: cdc.KindDecimal, Precision: 10, Scale: 2, DatabaseType: "numeric(10,2)"},
			`{"type":"bytes","logicalType":"decimal","precision":10,"scale":1}`, `same scale`},
		{"smaller precision", cdc.Column{Kind: cdc.KindDecimal, Precision: 12, Scale: 2, DatabaseType: "numeric(12,2)"},
			`{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}`, `precision at least 12`},
		{"unconstrained numeric", cdc.Column{Kind: cdc.KindDecimal, DatabaseType: "numeric"},
			`{"type":"bytes","logicalType":"decimal","precision":38,"scale":9}`, `no declared precision`},
		{"micros into millis", cdc.Column{Kind: cdc.KindTimestamp, FractionDigits: 6, WithTimeZone: true, DatabaseType: "timestamp with time zone"},
			`{"type":"long","logicalType":"timestamp-millis"}`, `timestamp-micros`},
		{"instant into local", cdc.Column{Kind: cdc.KindTimestamp, FractionDigits: 6, WithTimeZone: true, DatabaseType: "timestamp with time zone"},
			`{"type":"long","logicalType":"local-timestamp-micros"}`, `timestamp-micros`},
		{"bytes into string", cdc.Column{Kind: cdc.KindBytes, DatabaseType: "bytea"}, `"string"`, `map it to "bytes"`},
		{"double into float", cdc.Column{Kind: cdc.KindFloat, Bits: 64, DatabaseType: "double precision"}, `"float"`, `use "double"`},
		{"wide union", cdc.Column{Kind: cdc.KindInt, Bits: 32, DatabaseType: "integer"}, `["null","int","string"]`, `not supported`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.col.Name = "c"
			s, err := avro.Parse(c.schema)
			if err != nil {
				t.Fatal(err)
			}
			_, err = encoderFor(c.col, s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %s", err, c.want)
			}
		})
	}
}

func TestDecimalsUseMinimalTwosComplement(t *testing.T) {
	// Unscaled values and their big-endian two's complement, as Java's
	// BigInteger.toByteArray gives them (the Avro specification's decimal encoding).
	cases := []struct {
		text  string
		scale int
		want  []byte
	}{
		{"0", 0, []byte{0x00}},
		{"1.23", 2, []byte{0x7b}},
		{"-1", 0, []byte{0xff}},
		{"1.28", 2, []byte{0x00, 0x80}},
		{"-1.28", 2, []byte{0x80}},
		{"-1.29", 2, []byte{0xff, 0x7f}},
		{"2.5", 3, []byte{0x09, 0xc4}}, // 2500
		{"1.2300", 2, []byte{0x7b}},    // trailing zeros beyond the scale are not a change of value
		{"-92233720368547758.08", 2, []byte{0x80, 0, 0, 0, 0, 0, 0, 0}},
		{"92233720368547758.08", 2, []byte{0x00, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		{"-92233720368547758.09", 2, []byte{0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, c := range cases {
		d, err := rescaleDecimal([]byte(c.text), c.scale, 38)
		if err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		var buf [8]byte
		if got := d.twosComplement(&buf); string(got) != string(c.want) {
			t.Errorf("%s scale %d: got %x, want %x", c.text, c.scale, got, c.want)
		}
	}
	for _, bad := range []struct {
		text             string
		scale, precision int
	}{{"1.234", 2, 10}, {"123456789.1", 1, 9}, {"NaN", 2, 10}, {"1e5", 0, 10}, {"", 0, 1}} {
		if _, err := rescaleDecimal([]byte(bad.text), bad.scale, bad.precision); err == nil {
			t.Errorf("%q into decimal(%d,%d): want an error", bad.text, bad.precision, bad.scale)
		}
	}
}

func TestEveryFieldTypeDecodesWithAnIndependentReader(t *testing.T) {
	schema := `{"type":"record","name":"All","fields":[
	  {"name":"i16","type":"int"}, {"name":"i64","type":"long"}, {"name":"u32","type":"long"},
	  {"name":"u64","type":{"type":"bytes","logicalType":"decimal","precision":20,"scale":0}},
	  {"name":"f32","type":"float"}, {"name":"f64","type":"double"},
	  {"name":"dec","type":{"type":"fixed","name":"D","size":8,"logicalType":"decimal","precision":12,"scale":3}},
	  {"name":"uuid","type":{"type":"string","logicalType":"uuid"}}, {"name":"blob","type":"bytes"},
	  {"name":"day","type":{"type":"int","logicalType":"date"}}, {"name":"tod","type":{"type":"long","logicalType":"time-micros"}},
	  {"name":"ts_ms","type":{"type":"long","logicalType":"timestamp-millis"}},
	  {"name":"local","type":{"type":"long","logicalType":"local-timestamp-micros"}},
	  {"name":"num_text","type":"string"}, {"name":"json","type":"string"}, {"name":"int_text","type":"string"}]}`
	cols := []cdc.Column{
		{Name: "i16", Kind: cdc.KindInt, Bits: 16}, {Name: "i64", Kind: cdc.KindInt, Bits: 64}, {Name: "u32", Kind: cdc.KindUint, Bits: 32},
		{Name: "u64", Kind: cdc.KindUint, Bits: 64}, {Name: "f32", Kind: cdc.KindFloat, Bits: 32}, {Name: "f64", Kind: cdc.KindFloat, Bits: 64},
		{Name: "dec", Kind: cdc.KindDecimal, Precision: 12, Scale: 3}, {Name: "uuid", Kind: cdc.KindString, DatabaseType: "uuid"},
		{Name: "blob", Kind: cdc.KindBytes}, {Name: "day", Kind: cdc.KindDate}, {Name: "tod", Kind: cdc.KindTime, FractionDigits: 6},
		{Name: "ts_ms", Kind: cdc.KindTimestamp, FractionDigits: 3}, {Name: "local", Kind: cdc.KindTimestamp, FractionDigits: 6},
		{Name: "num_text", Kind: cdc.KindDecimal}, {Name: "json", Kind: cdc.KindJSON}, {Name: "int_text", Kind: cdc.KindInt, Bits: 64},
	}
	row := []cdc.Value{
		cdc.Int(-32768), cdc.Int(-9223372036854775808), cdc.Uint(4294967295), cdc.Uint(18446744073709551615),
		cdc.Float(float64(float32(1.5))), cdc.Float(-0.1), cdc.Decimal([]byte("-123456789.123")),
		cdc.String([]byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")), cdc.Bytes([]byte{0, 1, 0xff}),
		cdc.Date(-719162), cdc.TimeOfDay(86_399_999_999), cdc.Timestamp(-1_000), cdc.Timestamp(1_000_001),
		cdc.Decimal([]byte("3.14159265358979323846264338327950288")), cdc.JSON([]byte(`{"a": [1, 2]}`)), cdc.Int(-7),
	}
	s, err := avro.Parse(schema)
	if err != nil {
		t.Fatal(err)
	}
	e := &Entity{Name: "all", Schema: s.(*avro.RecordSchema), Key: []string{"i16"}}
	for _, c := range cols {
		e.Fields = append(e.Fields, Field{Name: c.Name, Column: c.Name})
	}
	recs, err := mustCompile(t, e, &cdc.Table{Columns: cols}).Map(&cdc.Change{Op: cdc.OpInsert, After: row}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := decode(t, schema, recs[0].Value)
	u64, _ := new(big.Int).SetString("18446744073709551615", 10)
	dec, _ := new(big.Rat).SetString("-123456789.123")
	checks := map[string]any{
		"i16": int32(-32768), "i64": int64(-9223372036854775808), "u32": int64(4294967295),
		"f32": float32(1.5), "f64": -0.1, "uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "blob": string([]byte{0, 1, 0xff}),
		"day": time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "tod": 86_399_999_999 * time.Microsecond,
		"ts_ms": time.UnixMilli(-1).UTC(), "num_text": "3.14159265358979323846264338327950288",
		"json": `{"a": [1, 2]}`, "int_text": "-7",
	}
	for name, want := range checks {
		got := v[name]
		if b, ok := got.([]byte); ok {
			got = string(b)
		}
		if tm, ok := got.(time.Time); ok {
			if !tm.Equal(want.(time.Time)) {
				t.Errorf("%s = %v, want %v", name, tm, want)
			}
			continue
		}
		if got != want {
			t.Errorf("%s = %v (%T), want %v (%T)", name, got, got, want, want)
		}
	}
	if r := v["u64"].(*big.Rat); r.Cmp(new(big.Rat).SetInt(u64)) != 0 {
		t.Errorf("u64 = %v", r)
	}
	if r := v["dec"].(*big.Rat); r.Cmp(dec) != 0 {
		t.Errorf("dec = %v", r.FloatString(3))
	}
	// goavro reads local-timestamp-micros as a long; the wall clock 1970-01-01T00:00:01.000001.
	if v["local"] != int64(1_000_001) && !isTime(v["local"], time.UnixMicro(1_000_001)) {
		t.Errorf("local = %v", v["local"])
	}
}

func isTime(v any, want time.Time) bool {
	tm, ok := v.(time.Time)
	return ok && tm.Equal(want)
}

func TestUnsentValueIsNeverEncoded(t *testing.T) {
	p := mustCompile(t, customerEntity(t), customerTable())
	row := customerRow(1, "a@x", "1.00")
	row[1] = cdc.Unchanged()
	if _, err := p.Map(&cdc.Change{Op: cdc.OpInsert, After: row}, nil, nil); err == nil || !strings.Contains(err.Error(), "did not send this value") {
		t.Fatalf("got %v", err)
	}
}

func TestMapperReportsWhyAChangeProducedNothing(t *testing.T) {
	e := customerEntity(t)
	e.Where = Condition{Expr: "active", Origin: "cdc.yaml:40"}
	var skips []SkipReason
	m := NewMapper([]*Entity{e}, Options{OnSkip: func(got *Entity, reason SkipReason) {
		if got != e {
			t.Errorf("skip reported for entity %v", got)
		}
		skips = append(skips, reason)
	}})
	inactive := customerRow(2, "b@x", "1.00")
	inactive[5] = cdc.Bool(false)
	secretChanged := customerRow(1, "a@x", "1.00")
	secretChanged[7] = cdc.String([]byte("new secret"))
	table := customerTable()
	for _, ch := range []cdc.Change{
		{Table: table, Op: cdc.OpInsert, After: customerRow(1, "a@x", "1.00")},                                        // produced
		{Table: table, Op: cdc.OpUpdate, Before: customerRow(1, "a@x", "1.00"), After: secretChanged},                 // unchanged
		{Table: table, Op: cdc.OpInsert, After: inactive},                                                             // filtered
		{Table: table, Op: cdc.OpUpdate, Before: inactive, After: append([]cdc.Value(nil), inactive...)},              // unchanged
		{Table: table, Op: cdc.OpUpdate, Before: customerRow(1, "a@x", "1.00"), After: customerRow(1, "c@x", "1.00")}, // produced
	} {
		if _, err := m.Map(&ch, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := []SkipReason{SkipUnchanged, SkipFiltered, SkipUnchanged}
	if !slices.Equal(skips, want) {
		t.Fatalf("skips %v, want %v", skips, want)
	}
}

// A backfill's read goes to the entities it fills only; a change without
// entities goes to every entity of its table.
func TestBackfillReadGoesToItsEntitiesOnly(t *testing.T) {
	v1, v2 := customerEntity(t), customerEntity(t)
	v2.Name, v2.Topic = "customer_v2", "shop.customer.v2"
	m := NewMapper([]*Entity{v1, v2}, Options{})
	row := customerRow(1, "a@x", "1.00")
	read := cdc.Change{Table: customerTable(), Op: cdc.OpRead, After: row, Entities: []string{"customer_v2"}}
	out, err := m.Map(&read, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Entity != v2 {
		t.Fatalf("a backfill read for customer_v2 gave %d records (first for %v)", len(out), out)
	}
	insert := cdc.Change{Table: customerTable(), Op: cdc.OpInsert, After: row}
	if out, err = m.Map(&insert, nil, nil); err != nil || len(out) != 2 {
		t.Fatalf("an insert gave %d records, %v: want one per entity", len(out), err)
	}
}

// A where condition that reads a large value the update did not resend
// sees the row as it is after the change: the old row's value.
func TestConditionsSeeAnUnchangedValueFilledIn(t *testing.T) {
	e := customerEntity(t)
	e.Where = Condition{Expr: `email != "hidden@example.com"`, Origin: "cdc.yaml:40"}
	p := mustCompile(t, e, customerTable())
	before, after := customerRow(1, "long@example.com", "1.00"), customerRow(1, "", "2.00")
	after[1] = cdc.Unchanged()
	recs, err := p.Map(&cdc.Change{Op: cdc.OpUpdate, Before: before, After: after, Position: "p1"}, nil, nil)
	if err != nil || len(recs) != 1 || recs[0].Value == nil {
		t.Fatalf("got %+v, err %v: want the new value", recs, err)
	}
	if got := decode(t, customerSchema, recs[0].Value)["email"]; got != "long@example.com" {
		t.Errorf("email = %v, want the old value", got)
	}
}

// A value the database holds but no field can (KindInvalid) is a value
// error naming the column and the row, in the snapshot as in the stream,
// and under on_error: dead_letter it becomes a dead letter.
func TestInvalidValueIsAValueErrorNamingTheSnapshotRowsKey(t *testing.T) {
	p := mustCompile(t, customerEntity(t), customerTable())
	row := customerRow(7, "a@example.com", "1.00")
	row[4] = cdc.Invalid([]byte("294270-01-01 00:00:00+00"))
	_, err := p.Map(&cdc.Change{Op: cdc.OpRead, After: row}, nil, nil)
	for _, want := range []string{`field "created": public.customer column created_at value 294270-01-01 00:00:00+00 in the snapshot row customer_id=7`, "years 290308 BC to 294246 AD"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v\nwant it to contain %s", err, want)
		}
	}
	if _, err := p.Map(&cdc.Change{Op: cdc.OpInsert, After: row, Position: "p9"}, nil, nil); err == nil || !strings.Contains(err.Error(), `at position "p9"`) {
		t.Errorf("streamed: got %v, want the position named", err)
	}
	e := customerEntity(t)
	e.OnError = OnErrorDeadLetter
	p = mustCompile(t, e, customerTable())
	recs, err := p.Map(&cdc.Change{Op: cdc.OpInsert, After: row, Position: "p9"}, nil, nil)
	if err != nil || len(recs) != 1 || recs[0].DeadLetter == nil {
		t.Fatalf("dead_letter: got %+v, %v", recs, err)
	}
}

// A key must identify rows: the primary key's columns, or a unique key's, or
// the entity is refused with the keys that would do.
func TestKeyThatDoesNotIdentifyRowsIsRefused(t *testing.T) {
	byEmail := func() *Entity {
		e := customerEntity(t)
		e.Key = []string{"email"}
		return e
	}
	for _, c := range []struct {
		name   string
		entity *Entity
		table  func(*cdc.Table)
		want   string // "" accepts
	}{
		{"primary key", customerEntity(t), nil, ""},
		{"a unique key", byEmail(), func(tb *cdc.Table) { tb.UniqueKeys = [][]int{{1}} }, ""},
		{"a column that is not unique", byEmail(), nil, `key [email] does not identify the rows of public.customer: no primary key or unique index on NOT NULL columns is made of its columns (email)`},
		{"no primary key", customerEntity(t), func(tb *cdc.Table) { tb.PrimaryKey = nil }, `public.customer has no primary key and no unique index on NOT NULL columns: add one`},
		{"a computed key", func() *Entity {
			e := customerEntity(t)
			e.Fields[0] = Field{Name: "id", Expr: "customer_id / 2", Origin: "cdc.yaml:14"}
			return e
		}(), nil, "it copies no column as it is"},
	} {
		tb := customerTable()
		if c.table != nil {
			c.table(tb)
		}
		err := NewMapper([]*Entity{c.entity}, Options{}).CheckKeys(tb)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		case c.want != "" && !strings.Contains(err.Error(), "cdc.yaml:10: entity \"customer\""):
			t.Errorf("%s: the error does not name the entity's line: %v", c.name, err)
		}
	}
}
