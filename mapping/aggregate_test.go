package mapping

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/linkedin/goavro/v2"

	"github.com/cdc-dev/cdc"
)

// The edges' fields sit between the root's: the value is written in the
// schema's order.
const orderAggregateSchema = `{"type": "record", "name": "Order", "namespace": "agg", "fields": [
  {"name": "id", "type": "long"},
  {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
    {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
  {"name": "status", "type": "string"},
  {"name": "customer", "type": ["null", {"type": "record", "name": "Customer", "fields": [
    {"name": "name", "type": "string"}]}]}
]}`

var (
	ordersName    = cdc.TableName{Schema: "public", Name: "orders"}
	linesName     = cdc.TableName{Schema: "public", Name: "lines"}
	customersName = cdc.TableName{Schema: "public", Name: "customers"}
)

func aggregateTables() map[cdc.TableName]*cdc.Table {
	return map[cdc.TableName]*cdc.Table{
		ordersName: {Name: ordersName, PrimaryKey: []int{0}, Columns: []cdc.Column{
			{Name: "order_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64},
			{Name: "customer_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64, Nullable: true},
			{Name: "status", DatabaseType: "text", Kind: cdc.KindString},
		}},
		linesName: {Name: linesName, PrimaryKey: []int{0, 1}, Columns: []cdc.Column{
			{Name: "order_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64},
			{Name: "line_no", DatabaseType: "integer", Kind: cdc.KindInt, Bits: 32},
			{Name: "sku", DatabaseType: "text", Kind: cdc.KindString},
			{Name: "qty", DatabaseType: "integer", Kind: cdc.KindInt, Bits: 32},
		}},
		customersName: {Name: customersName, PrimaryKey: []int{0}, Columns: []cdc.Column{
			{Name: "customer_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64},
			{Name: "name", DatabaseType: "text", Kind: cdc.KindString},
		}},
	}
}

func orderAggregate(t *testing.T) *Entity {
	t.Helper()
	s, err := avro.Parse(orderAggregateSchema)
	if err != nil {
		t.Fatal(err)
	}
	return &Entity{
		Name: "order", Table: ordersName, Topic: "agg.order.v1", Schema: s.(*avro.RecordSchema), SchemaFile: "order.avsc",
		Key: []string{"id"}, Origin: "cdc.yaml:3",
		Fields: []Field{{Name: "id", Column: "order_id"}, {Name: "status", Column: "status"}},
		Edges: []Edge{
			{Field: "lines", Kind: EdgeChildren, Table: linesName, Join: []Join{{Member: "order_id", Root: "order_id"}}, OrderBy: []string{"line_no"},
				Fields: []Field{{Name: "sku", Column: "sku"}, {Name: "qty", Column: "qty"}}, Origin: "cdc.yaml:9"},
			{Field: "customer", Kind: EdgeDimension, Table: customersName, Join: []Join{{Member: "customer_id", Root: "customer_id"}},
				Fields: []Field{{Name: "name", Column: "name"}}, Origin: "cdc.yaml:14"},
		},
	}
}

func compileAggregate(t *testing.T, e *Entity, tables map[cdc.TableName]*cdc.Table) (*Aggregate, error) {
	t.Helper()
	return CompileAggregate(e, func(n cdc.TableName) *cdc.Table { return tables[n] }, Framing{})
}

func TestAggregateRecordIsTheSchemasRecord(t *testing.T) {
	a, err := compileAggregate(t, orderAggregate(t), aggregateTables())
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(orderAggregateSchema)
	if err != nil {
		t.Fatal(err)
	}
	decode := func(r Record) string {
		t.Helper()
		native, rest, err := codec.NativeFromBinary(r.Value)
		if err != nil || len(rest) > 0 {
			t.Fatalf("goavro cannot decode the record: %v (%d bytes left)", err, len(rest))
		}
		text, _ := json.Marshal(native)
		return string(text)
	}
	order := []cdc.Value{cdc.Int(7), cdc.Int(3), cdc.String([]byte("OPEN"))}
	lines := [][]cdc.Value{
		{cdc.Int(7), cdc.Int(1), cdc.String([]byte("A-1")), cdc.Int(2)},
		{cdc.Int(7), cdc.Int(2), cdc.String([]byte("B-7")), cdc.Int(1)},
	}
	customer := [][]cdc.Value{{cdc.Int(3), cdc.String([]byte("Ada"))}}
	records, err := a.Record(order, [][][]cdc.Value{lines, customer}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"customer":{"agg.Customer":{"name":"Ada"}},"id":7,"lines":[{"qty":2,"sku":"A-1"},{"qty":1,"sku":"B-7"}],"status":"OPEN"}`
	if got := decode(records[0]); got != want {
		t.Errorf("record\n got %s\nwant %s", got, want)
	}
	// No lines, no customer.
	noCustomer := []cdc.Value{cdc.Int(8), cdc.Null(), cdc.String([]byte("NEW"))}
	records, err = a.Record(noCustomer, [][][]cdc.Value{nil, nil}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := decode(records[0]), `{"customer":null,"id":8,"lines":[],"status":"NEW"}`; got != want {
		t.Errorf("record\n got %s\nwant %s", got, want)
	}
	// A root gone: its tombstone, keyed like its record.
	gone, err := a.Tombstone([]cdc.Value{cdc.Int(8)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gone[0].Value != nil || string(gone[0].Key) != string(records[0].Key) || gone[0].Op != cdc.OpDelete {
		t.Errorf("tombstone %+v, want the key of the record and no value", gone[0])
	}
}

func TestAggregateDimensionNotNullableNeedsItsRow(t *testing.T) {
	e := orderAggregate(t)
	schema := strings.Replace(orderAggregateSchema, `["null", {"type": "record", "name": "Customer", "fields": [
    {"name": "name", "type": "string"}]}]`, `{"type": "record", "name": "Customer", "fields": [{"name": "name", "type": "string"}]}`, 1)
	s, err := avro.Parse(schema)
	if err != nil {
		t.Fatal(err)
	}
	e.Schema = s.(*avro.RecordSchema)
	a, err := compileAggregate(t, e, aggregateTables())
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Record([]cdc.Value{cdc.Int(8), cdc.Int(4), cdc.String([]byte("NEW"))}, [][][]cdc.Value{nil, nil}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `root order_id=8 has no row of public.customers`) {
		t.Errorf("error %v, want one naming the root without its customer", err)
	}
}

func TestAggregateCompileRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(e *Entity, tables map[cdc.TableName]*cdc.Table)
		want   string
	}{
		{"edge field not in the schema", func(e *Entity, _ map[cdc.TableName]*cdc.Table) { e.Edges[0].Field = "items" },
			`field "items": not a field of agg.Order`},
		{"children not an array", func(e *Entity, _ map[cdc.TableName]*cdc.Table) { e.Edges[0].Field = "status" },
			`children are an array of records`},
		{"join column missing", func(e *Entity, _ map[cdc.TableName]*cdc.Table) { e.Edges[0].Join[0].Member = "orderid" },
			`join: public.lines has no column orderid`},
		{"dimension join does not identify a row", func(e *Entity, tables map[cdc.TableName]*cdc.Table) {
			e.Edges[1].Join = []Join{{Member: "name", Root: "status"}}
		}, `do not identify the rows of public.customers`},
		{"key not from the primary key", func(e *Entity, tables map[cdc.TableName]*cdc.Table) {
			e.Fields[0].Column, tables[ordersName].Columns[1].Nullable = "customer_id", false
		},
			`reads column customer_id, which is not in the primary key`},
		{"join column not in the log's old row", func(e *Entity, tables map[cdc.TableName]*cdc.Table) {
			tables[linesName].Identity = []int{1}
		}, `join: column order_id is not among the columns public.lines's log carries in the old row`},
		{"root without primary key", func(e *Entity, tables map[cdc.TableName]*cdc.Table) { tables[ordersName].PrimaryKey = nil },
			`root table public.orders has no primary key`},
		{"edge field rule missing", func(e *Entity, _ map[cdc.TableName]*cdc.Table) { e.Edges[0].Fields = e.Edges[0].Fields[:1] },
			`field "lines.qty": schema field of agg.Line (order.avsc) has no rule`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, tables := orderAggregate(t), aggregateTables()
			tc.change(e, tables)
			_, err := compileAggregate(t, e, tables)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

func TestAggregateCheckNeedsNoTable(t *testing.T) {
	e := orderAggregate(t)
	if err := Check(e); err != nil {
		t.Fatalf("check: %v", err)
	}
	e.Edges[1].Fields = []Field{{Name: "nick", Column: "name"}}
	if err := Check(e); err == nil || !strings.Contains(err.Error(), `field "customer.nick": not a field of agg.Customer`) {
		t.Errorf("error %v, want the edge's rule checked against its record", err)
	}
}

func TestTouchedNamesEveryRootAChangeConcerns(t *testing.T) {
	tables := aggregateTables()
	e := orderAggregate(t)
	a, err := compileAggregate(t, e, tables)
	if err != nil {
		t.Fatal(err)
	}
	text := func(ls []Lookup) string {
		var parts []string
		for _, l := range ls {
			s := strings.Join(l.Columns, ",") + "="
			for _, v := range l.Values {
				s += v.String()
			}
			if l.ByKey {
				s += " (key)"
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, "; ")
	}
	line := func(order int64) []cdc.Value {
		return []cdc.Value{cdc.Int(order), cdc.Int(1), cdc.String([]byte("A")), cdc.Int(1)}
	}
	for _, tc := range []struct {
		name string
		ch   cdc.Change
		want string
	}{
		{"an order updated", cdc.Change{Table: tables[ordersName], Op: cdc.OpUpdate,
			Before: []cdc.Value{cdc.Int(1), cdc.Int(3), cdc.String([]byte("OPEN"))}, After: []cdc.Value{cdc.Int(1), cdc.Int(4), cdc.String([]byte("PAID"))}},
			"order_id=1 (key)"},
		{"an order read by a snapshot", cdc.Change{Table: tables[ordersName], Op: cdc.OpRead, After: []cdc.Value{cdc.Int(2), cdc.Null(), cdc.String([]byte("OPEN"))}},
			"order_id=2 (key)"},
		{"a line moved to another order", cdc.Change{Table: tables[linesName], Op: cdc.OpUpdate, Before: line(1), After: line(2)},
			"order_id=1; order_id=2"},
		{"a line deleted", cdc.Change{Table: tables[linesName], Op: cdc.OpDelete, Before: line(5)}, "order_id=5"},
		{"a line read by a snapshot", cdc.Change{Table: tables[linesName], Op: cdc.OpRead, After: line(5)}, ""},
		{"a customer renamed", cdc.Change{Table: tables[customersName], Op: cdc.OpUpdate,
			Before: []cdc.Value{cdc.Int(3), cdc.String([]byte("Ada"))}, After: []cdc.Value{cdc.Int(3), cdc.String([]byte("Ada L."))}},
			"customer_id=3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.Touched(&tc.ch, nil)
			if err != nil {
				t.Fatal(err)
			}
			if text(got) != tc.want {
				t.Errorf("lookups %q, want %q", text(got), tc.want)
			}
		})
	}

	t.Run("a frozen dimension's change", func(t *testing.T) {
		frozen := orderAggregate(t)
		frozen.Edges[1].Frozen = true
		fa, err := compileAggregate(t, frozen, tables)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fa.Touched(&cdc.Change{Table: tables[customersName], Op: cdc.OpUpdate,
			Before: []cdc.Value{cdc.Int(3), cdc.String([]byte("Ada"))}, After: []cdc.Value{cdc.Int(3), cdc.String([]byte("Ada L."))}}, nil)
		if err != nil || len(got) != 0 {
			t.Errorf("lookups %q, err %v: a frozen dimension recomputes no root", text(got), err)
		}
	})
	t.Run("a join column the log left out", func(t *testing.T) {
		before := line(1)
		before[0] = cdc.Value{Kind: cdc.KindUnknown}
		_, err := a.Touched(&cdc.Change{Table: tables[linesName], Op: cdc.OpDelete, Before: before, Position: "p1"}, nil)
		if err == nil || !strings.Contains(err.Error(), "the log did not carry column(s) order_id") {
			t.Errorf("error %v, want the change refused", err)
		}
	})
	t.Run("a join column gone from the table", func(t *testing.T) {
		renamed := *tables[linesName]
		renamed.Columns = append([]cdc.Column{{Name: "order_ref", Kind: cdc.KindInt}}, renamed.Columns[1:]...)
		_, err := a.Touched(&cdc.Change{Table: &renamed, Op: cdc.OpInsert, After: line(1), Position: "p2"}, nil)
		if err == nil || !strings.Contains(err.Error(), "has no column order_id any more") {
			t.Errorf("error %v, want the change refused", err)
		}
	})
}
