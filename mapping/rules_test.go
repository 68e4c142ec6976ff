package mapping

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc"
)

const personSchema = `{
  "type": "record", "name": "Person", "namespace": "shop.v2",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "name", "type": "string"},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["ACTIVE", "SUSPENDED", "CLOSED"]}},
    {"name": "contact", "type": {"type": "record", "name": "Contact", "fields": [
      {"name": "email_hash", "type": "string"},
      {"name": "street", "type": ["null", "string"], "default": null}
    ]}},
    {"name": "phone", "type": ["null", "string"], "default": null},
    {"name": "since_day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "credit_cents", "type": "long"}
  ]}`

const testSalt = "0123456789abcdef-test-salt"

func personTable() *cdc.Table {
	return &cdc.Table{
		Name: cdc.TableName{Schema: "public", Name: "person"},
		Columns: []cdc.Column{
			{Name: "person_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64},
			{Name: "first_name", DatabaseType: "text", Kind: cdc.KindString},
			{Name: "last_name", DatabaseType: "text", Kind: cdc.KindString, Nullable: true},
			{Name: "status_code", DatabaseType: "smallint", Kind: cdc.KindInt, Bits: 16},
			{Name: "email", DatabaseType: "text", Kind: cdc.KindString},
			{Name: "street", DatabaseType: "text", Kind: cdc.KindString, Nullable: true},
			{Name: "phone", DatabaseType: "text", Kind: cdc.KindString, Nullable: true},
			{Name: "created_at", DatabaseType: "timestamp with time zone", Kind: cdc.KindTimestamp, FractionDigits: 6, WithTimeZone: true},
			{Name: "credit", DatabaseType: "numeric(10,2)", Kind: cdc.KindDecimal, Precision: 10, Scale: 2},
			{Name: "store_id", DatabaseType: "integer", Kind: cdc.KindInt, Bits: 32},
			{Name: "deleted_at", DatabaseType: "timestamp with time zone", Kind: cdc.KindTimestamp, FractionDigits: 6, WithTimeZone: true, Nullable: true},
			{Name: "note", DatabaseType: "text", Kind: cdc.KindString, Nullable: true},
		},
		PrimaryKey: []int{0},
	}
}

func personEntity(tb testing.TB) *Entity {
	tb.Helper()
	s, err := avro.Parse(personSchema)
	if err != nil {
		tb.Fatal(err)
	}
	return &Entity{
		Name: "person", Table: cdc.TableName{Schema: "public", Name: "person"}, Topic: "shop.person.v2",
		Schema: s.(*avro.RecordSchema), SchemaFile: "person.avsc", Key: []string{"id"}, Origin: "cdc.yaml:30",
		MaskSalt: []byte(testSalt),
		Fields: []Field{
			{Name: "id", Column: "person_id", Origin: "cdc.yaml:31"},
			{Name: "name", Expr: "last_name == null ? first_name : first_name + ' ' + last_name", Origin: "cdc.yaml:32"},
			{Name: "status", Column: "status_code", Enum: map[string]string{"1": "ACTIVE", "2": "SUSPENDED", "9": "CLOSED"}, Origin: "cdc.yaml:33"},
			{Name: "contact", Origin: "cdc.yaml:34", Fields: []Field{
				{Name: "email_hash", Column: "email", Mask: MaskHash, Origin: "cdc.yaml:35"},
				{Name: "street", Column: "street", Origin: "cdc.yaml:36"},
			}},
			{Name: "phone", Column: "phone", Mask: MaskRedact, Origin: "cdc.yaml:37"},
			{Name: "since_day", Expr: "created_at", Origin: "cdc.yaml:38"},
			{Name: "credit_cents", Expr: "int(double(credit) * 100.0)", Origin: "cdc.yaml:39"},
		},
	}
}

// personRow: id 7, Ada Lovelace, status 1, store 1, not deleted.
func personRow() []cdc.Value {
	created := time.Date(2024, 3, 5, 23, 59, 0, 0, time.UTC).UnixMicro()
	return []cdc.Value{
		cdc.Int(7), cdc.String([]byte("Ada")), cdc.String([]byte("Lovelace")), cdc.Int(1),
		cdc.String([]byte("ada@example.com")), cdc.String([]byte("12 Analytical St")), cdc.String([]byte("+44 1")),
		cdc.Timestamp(created), cdc.Decimal([]byte("12.34")), cdc.Int(1), cdc.Null(), cdc.Null(),
	}
}

func hmacHex(text string) string {
	mac := hmac.New(sha256.New, []byte(testSalt))
	mac.Write([]byte(text))
	return hex.EncodeToString(mac.Sum(nil))
}

func TestRulesComputeEnumNestMaskAndRedact(t *testing.T) {
	p := mustCompile(t, personEntity(t), personTable())
	recs, err := p.Map(&cdc.Change{Op: cdc.OpInsert, After: personRow(), Position: "p1"}, nil, nil)
	if err != nil || len(recs) != 1 {
		t.Fatalf("records %+v, err %v", recs, err)
	}
	v := decode(t, personSchema, recs[0].Value)
	checks := map[string]any{
		"id": int64(7), "name": "Ada Lovelace", "status": "ACTIVE", "phone": nil, "credit_cents": int64(1234),
	}
	for field, want := range checks {
		if v[field] != want {
			t.Errorf("%s = %#v, want %#v", field, v[field], want)
		}
	}
	if day := v["since_day"].(time.Time); !day.Equal(time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("since_day = %v", day)
	}
	contact := v["contact"].(map[string]any)
	if contact["email_hash"] != hmacHex("ada@example.com") {
		t.Errorf("email_hash = %v, want HMAC-SHA256 of the address", contact["email_hash"])
	}
	if street := contact["street"].(map[string]any)["string"]; street != "12 Analytical St" {
		t.Errorf("street = %v", street)
	}

	row := personRow()
	row[2] = cdc.Null()
	recs, err = p.Map(&cdc.Change{Op: cdc.OpInsert, After: row}, nil, nil)
	if err != nil || decode(t, personSchema, recs[0].Value)["name"] != "Ada" {
		t.Errorf("a NULL last name: %v %v", recs, err)
	}
}

func TestUnmappedEnumCodeStopsOrBecomesADeadLetter(t *testing.T) {
	e := personEntity(t)
	row := personRow()
	row[3] = cdc.Int(3)
	ch := &cdc.Change{Op: cdc.OpInsert, After: row, Position: "p9"}
	_, err := mustCompile(t, e, personTable()).Map(ch, nil, nil)
	want := `entity "person", field "status": public.person column status_code value 3 at position "p9": code "3" has no symbol in the enum map (symbols: ACTIVE, SUSPENDED, CLOSED): add ` + "`3: <SYMBOL>`"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant %s", err, want)
	}

	e.OnError = OnErrorDeadLetter
	recs, err := mustCompile(t, e, personTable()).Map(ch, nil, nil)
	if err != nil || len(recs) != 1 || recs[0].DeadLetter == nil || recs[0].Value != nil {
		t.Fatalf("want one dead letter, got %+v, %v", recs, err)
	}
	dl := recs[0].DeadLetter
	if !strings.Contains(dl.Reason, want) || recs[0].Position != "p9" {
		t.Errorf("reason %q", dl.Reason)
	}
	var values map[string]any
	if err := json.Unmarshal(dl.Row, &values); err != nil {
		t.Fatal(err)
	}
	if values["status_code"] != "3" || values["first_name"] != "Ada" {
		t.Errorf("row %s", dl.Row)
	}
	if _, leaked := values["email"]; leaked || strings.Contains(string(dl.Row), "ada@example.com") {
		t.Errorf("a masked column reached the dead letter: %s", dl.Row)
	}
	ks, _ := e.KeySchema()
	if decode(t, ks.String(), recs[0].Key)["id"] != int64(7) {
		t.Error("the dead letter lacks the entity key")
	}
}

func TestWhereFilterEntersLeavesAndIgnores(t *testing.T) {
	e := personEntity(t)
	e.Where = Condition{Expr: "store_id == 1", Origin: "cdc.yaml:40"}
	e.TombstoneWhen = Condition{Expr: "deleted_at != null", Origin: "cdc.yaml:41"}
	p := mustCompile(t, e, personTable())
	in, out, gone := personRow(), personRow(), personRow()
	out[9] = cdc.Int(2)
	gone[10] = cdc.Timestamp(1)
	cases := []struct {
		name          string
		op            cdc.Op
		before, after []cdc.Value
		want          string // u: upsert, t: tombstone
	}{
		{"insert inside", cdc.OpInsert, nil, in, "u"},
		{"insert outside", cdc.OpInsert, nil, out, ""},
		{"insert soft-deleted", cdc.OpRead, nil, gone, ""},
		{"update leaves", cdc.OpUpdate, in, out, "t"},
		{"update enters", cdc.OpUpdate, out, in, "u"},
		{"update outside", cdc.OpUpdate, out, withName(out, "Bob"), ""},
		{"soft delete", cdc.OpUpdate, in, gone, "t"},
		{"undelete", cdc.OpUpdate, gone, in, "u"},
		{"update without old row, outside", cdc.OpUpdate, nil, out, "t"},
		{"delete inside", cdc.OpDelete, in, nil, "t"},
		{"delete outside", cdc.OpDelete, out, nil, ""},
	}
	for _, c := range cases {
		recs, err := p.Map(&cdc.Change{Op: c.op, Before: c.before, After: c.after}, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := ""
		for _, r := range recs {
			if r.Value == nil {
				got += "t"
				if r.Op != cdc.OpDelete {
					t.Errorf("%s: tombstone with op %v", c.name, r.Op)
				}
			} else {
				got += "u"
			}
		}
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func withName(row []cdc.Value, name string) []cdc.Value {
	out := append([]cdc.Value(nil), row...)
	out[1] = cdc.String([]byte(name))
	return out
}

func TestComputedKeyChangesOnlyWhenTheEncodedKeyDoes(t *testing.T) {
	e := personEntity(t)
	e.Fields[0] = Field{Name: "id", Expr: "person_id / 10", Origin: "cdc.yaml:31"}
	p := mustCompile(t, e, personTable())
	before, after := personRow(), personRow()
	after[0] = cdc.Int(8) // 7/10 == 8/10
	recs, err := p.Map(&cdc.Change{Op: cdc.OpUpdate, Before: before, After: after}, nil, nil)
	if err != nil || len(recs) != 1 || recs[0].Value == nil {
		t.Fatalf("same computed key: want one upsert, got %+v %v", recs, err)
	}
	after[0] = cdc.Int(17)
	recs, err = p.Map(&cdc.Change{Op: cdc.OpUpdate, Before: before, After: after}, nil, nil)
	if err != nil || len(recs) != 2 || recs[0].Value != nil || recs[1].Seq != 1 {
		t.Fatalf("new computed key: want tombstone then upsert, got %+v %v", recs, err)
	}
}

func TestExpressionFailureNamesTheNullColumn(t *testing.T) {
	e := personEntity(t)
	e.Fields[1].Expr = "first_name + ' ' + last_name"
	row := personRow()
	row[2] = cdc.Null()
	_, err := mustCompile(t, e, personTable()).Map(&cdc.Change{Op: cdc.OpInsert, After: row, Position: "p3"}, nil, nil)
	for _, want := range []string{`entity "person", field "name": public.person at position "p3": expression ` + "`first_name + ' ' + last_name`" + ` failed`,
		"NULL in last_name: test it with `last_name == null ? ... : ...`"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v\nwant %s", err, want)
		}
	}
}

func TestRuleMistakesAreReportedAtCompile(t *testing.T) {
	e := personEntity(t)
	e.Fields[1].Expr = "first_name + 1"                                                   // type error
	e.Fields[2].Enum = map[string]string{"1": "ACTIVE", "2": "PAUSED"}                    // unknown symbol
	e.Fields[3].Fields[1] = Field{Name: "street", Column: "sreet", Origin: "cdc.yaml:36"} // nested missing column
	e.Fields[4].Column = "street"                                                         // redact is fine; keep
	e.Fields[5].Expr = "first_name"                                                       // string into date
	e.Fields[6] = Field{Name: "credit_cents", Column: "credit", Mask: MaskRedact, Origin: "cdc.yaml:39"}
	e.Where = Condition{Expr: "store_id", Origin: "cdc.yaml:40"}
	e.TombstoneWhen = Condition{Expr: "deleted != null", Origin: "cdc.yaml:41"}
	_, err := Compile(e, personTable(), Framing{})
	if err == nil {
		t.Fatal("compiled")
	}
	for _, want := range []string{
		"cdc.yaml:32: entity \"person\", field \"name\": expression `first_name + 1`: at column 12: found no matching overload for '_+_' applied to '(string, int)'",
		`cdc.yaml:33: entity "person", field "status": symbols PAUSED are not in enum shop.v2.Status (symbols: ACTIVE, SUSPENDED, CLOSED)`,
		`cdc.yaml:36: entity "person", field "contact.street": column "sreet" not in public.person`,
		"cdc.yaml:38: entity \"person\", field \"since_day\": expression `first_name` has type string; the field type {\"type\":\"int\",\"logicalType\":\"date\"} needs timestamp",
		`cdc.yaml:39: entity "person", field "credit_cents": a redacted field is always null: make its type ["null", "long"]`,
		"cdc.yaml:40: entity \"person\": where: expression `store_id` has type int, not bool",
		"cdc.yaml:41: entity \"person\": tombstone_when: expression `deleted != null`: at column 1: undeclared reference to 'deleted' (did you mean 'deleted_at'?)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestHashWithoutSaltIsRefused(t *testing.T) {
	e := personEntity(t)
	e.MaskSalt = nil
	_, err := Compile(e, personTable(), Framing{})
	if err == nil || !strings.Contains(err.Error(), `cdc.yaml:35: entity "person", field "contact.email_hash": hash masks need a secret salt`) {
		t.Fatalf("got %v", err)
	}
}

func TestTextColumnIntoEnumUsesTheSymbols(t *testing.T) {
	e := personEntity(t)
	tbl := personTable()
	tbl.Columns[11] = cdc.Column{Name: "note", DatabaseType: "enum('ACTIVE','CLOSED','GONE')", Kind: cdc.KindString}
	e.Fields[2] = Field{Name: "status", Column: "note", Origin: "cdc.yaml:33"}
	p := mustCompile(t, e, tbl)
	row := personRow()
	row[11] = cdc.String([]byte("CLOSED"))
	recs, err := p.Map(&cdc.Change{Op: cdc.OpInsert, After: row}, nil, nil)
	if err != nil || decode(t, personSchema, recs[0].Value)["status"] != "CLOSED" {
		t.Fatalf("%v %v", recs, err)
	}
	row[11] = cdc.String([]byte("GONE"))
	if _, err := p.Map(&cdc.Change{Op: cdc.OpInsert, After: row}, nil, nil); err == nil || !strings.Contains(err.Error(), `"GONE" is not a symbol of shop.v2.Status`) {
		t.Fatalf("got %v", err)
	}
}

func TestExpressionResultsTheFieldCannotHoldAreRefused(t *testing.T) {
	cases := map[string]string{
		"null":                      "expression `null` is always null but the field type \"long\" has no null",
		"first_name":                "expression `first_name` has type string; the field type \"long\" needs int or uint",
		"last_name == null ? 1 : 2": "", // int into long: accepted
	}
	for expr, want := range cases {
		e := personEntity(t)
		e.Fields[6] = Field{Name: "credit_cents", Expr: expr, Origin: "cdc.yaml:39"}
		_, err := Compile(e, personTable(), Framing{})
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", expr, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), `cdc.yaml:39: entity "person", field "credit_cents": `+want)):
			t.Errorf("%s: got %v, want %s", expr, err, want)
		}
	}
}

// Check finds, without a table, every mistake that needs none, each at its
// line; what needs the table (a column's existence, an expression's types)
// is left to Compile.
func TestCheckFindsWhatNeedsNoTable(t *testing.T) {
	if err := Check(personEntity(t)); err != nil {
		t.Fatalf("a valid entity: %v", err)
	}
	e := personEntity(t)
	e.Fields[1].Expr = "first_name + "                                                 // syntax
	e.Fields[2].Enum = map[string]string{"1": "ACTIVE", "2": "SUSPENDED", "3": "GONE"} // not a symbol
	e.Fields[3].Fields[1].Name = "sreet"                                               // not a field of the nested record
	e.Fields[4].Mask = MaskRedact
	e.Fields[4].Name, e.Fields[5].Name = "since_day", "phone" // redacted, but since_day cannot be null
	e.Fields[6].Expr = "no_such_column * 2"                   // fine without the table
	e.Where = Condition{Expr: "store_id ==", Origin: "cdc.yaml:40"}
	err := Check(e)
	if err == nil {
		t.Fatal("no problem found")
	}
	for _, want := range []string{
		`cdc.yaml:32: entity "person", field "name": expression ` + "`first_name + `" + `: at column`,
		`cdc.yaml:33: entity "person", field "status": symbols GONE are not in enum shop.v2.Status`,
		`cdc.yaml:36: entity "person", field "contact.sreet": not a field of shop.v2.Contact`,
		`entity "person", field "contact.street": schema field of shop.v2.Contact (person.avsc) has no rule`,
		`cdc.yaml:37: entity "person", field "since_day": a redacted field is always null`,
		`cdc.yaml:40: entity "person": where: expression ` + "`store_id ==`",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "no_such_column") {
		t.Errorf("an expression was type-checked without its table:\n%v", err)
	}
}
