package aggregate

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/metrics"
)

var (
	ordersName = cdc.TableName{Schema: "s", Name: "orders"}
	linesName  = cdc.TableName{Schema: "s", Name: "lines"}
)

// tables is a database of integer columns, read as a View reads: the rows
// whose columns equal the values, in the order asked, after After, at most
// Limit. It keeps the queries.
type tables struct {
	shapes  map[cdc.TableName]*cdc.Table
	rows    map[cdc.TableName][][]cdc.Value
	queries []cdc.RowQuery
}

func (db *tables) Rows(_ context.Context, q cdc.RowQuery, each func(*cdc.Table, []cdc.Value) error) error {
	db.queries = append(db.queries, q)
	t := db.shapes[q.Table]
	column := func(name string) int { return t.Column(name) }
	var out [][]cdc.Value
	for _, row := range db.rows[q.Table] {
		if q.Values != nil && !slices.ContainsFunc(q.Values, func(values []cdc.Value) bool {
			for i, name := range q.Columns {
				if !row[column(name)].Equal(values[i]) {
					return false
				}
			}
			return true
		}) {
			continue
		}
		out = append(out, row)
	}
	less := func(a, b []cdc.Value) int {
		for _, name := range q.OrderBy {
			if d := a[column(name)].Int - b[column(name)].Int; d != 0 {
				return int(d)
			}
		}
		return 0
	}
	sort.SliceStable(out, func(i, j int) bool { return less(out[i], out[j]) < 0 })
	n := 0
	for _, row := range out {
		if q.After != nil {
			after := true
			for i, name := range q.OrderBy {
				if d := row[column(name)].Int - q.After[i].Int; d != 0 {
					after = d > 0
					break
				} else if i == len(q.OrderBy)-1 {
					after = false
				}
			}
			if !after {
				continue
			}
		}
		if q.Limit > 0 && n == q.Limit {
			break
		}
		n++
		if err := each(t, row); err != nil {
			return err
		}
	}
	return nil
}

func orderDatabase(orders, linesPerOrder int) *tables {
	db := &tables{shapes: map[cdc.TableName]*cdc.Table{
		ordersName: {Name: ordersName, PrimaryKey: []int{0}, Columns: []cdc.Column{
			{Name: "id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64},
			{Name: "customer", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64},
		}},
		linesName: {Name: linesName, PrimaryKey: []int{0, 1}, Columns: []cdc.Column{
			{Name: "order_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64},
			{Name: "n", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64},
		}},
	}, rows: map[cdc.TableName][][]cdc.Value{}}
	for o := 1; o <= orders; o++ {
		db.rows[ordersName] = append(db.rows[ordersName], []cdc.Value{cdc.Int(int64(o)), cdc.Int(int64(o % 2))})
		for n := 1; n <= linesPerOrder; n++ {
			db.rows[linesName] = append(db.rows[linesName], []cdc.Value{cdc.Int(int64(o)), cdc.Int(int64(n))})
		}
	}
	return db
}

func orderEntity(t *testing.T, db *tables, chunk int) *Entity {
	t.Helper()
	schema, err := avro.Parse(`{"type": "record", "name": "O", "fields": [{"name": "id", "type": "long"},
		{"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "L", "fields": [{"name": "n", "type": "long"}]}}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	e := &mapping.Entity{Name: "order", Table: ordersName, Topic: "o", Schema: schema.(*avro.RecordSchema), Key: []string{"id"},
		Fields: []mapping.Field{{Name: "id", Column: "id"}},
		Edges: []mapping.Edge{{Field: "lines", Kind: mapping.EdgeChildren, Table: linesName, Join: []mapping.Join{{Member: "order_id", Root: "id"}},
			Fields: []mapping.Field{{Name: "n", Column: "n"}}}}}
	a, err := New(e, mapping.Framing{}, []*cdc.Table{db.shapes[ordersName], db.shapes[linesName]}, chunk, metrics.New().Aggregate("order"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// recompute runs Recompute and renders what it sent, per chunk: each
// record's key in hexadecimal and its value's size, or "gone" for a tombstone.
func recompute(t *testing.T, a *Entity, db *tables) [][]string {
	t.Helper()
	var chunks [][]string
	err := a.Recompute(context.Background(), db, func(records []mapping.Record) error {
		var chunk []string
		for _, r := range records {
			text := fmt.Sprintf("%x", r.Key)
			if r.Value == nil {
				text += " gone"
			} else {
				text += fmt.Sprintf(" %d bytes", len(r.Value))
			}
			chunk = append(chunk, text)
		}
		chunks = append(chunks, chunk)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return chunks
}

func TestRecomputeNamesEachRootOnceAndTombstonesOnlyRootsGone(t *testing.T) {
	db := orderDatabase(3, 2)
	a := orderEntity(t, db, 10)
	changes := []cdc.Change{
		{Table: db.shapes[linesName], Op: cdc.OpUpdate, Before: []cdc.Value{cdc.Int(1), cdc.Int(1)}, After: []cdc.Value{cdc.Int(2), cdc.Int(9)}}, // a line moved
		{Table: db.shapes[ordersName], Op: cdc.OpUpdate, Before: db.rows[ordersName][1], After: db.rows[ordersName][1]},                          // order 2 again
		{Table: db.shapes[ordersName], Op: cdc.OpDelete, Before: []cdc.Value{cdc.Int(7), cdc.Int(0)}},                                            // gone
		{Table: db.shapes[linesName], Op: cdc.OpDelete, Before: []cdc.Value{cdc.Int(8), cdc.Int(1)}},                                             // a line of no order
	}
	for i := range changes {
		if _, err := a.Touch(&changes[i]); err != nil {
			t.Fatal(err)
		}
	}
	got := recompute(t, a, db)
	// Orders 1 and 2 (by the line's join on the key, and order 2's own
	// change), read in one query with their lines; order 7 gone; order 8
	// named by a line only, so not tombstoned.
	want := [][]string{{"02 5 bytes", "04 5 bytes", "0e gone"}} // id, two lines
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	if n := len(db.queries); n != 2 {
		t.Errorf("%d queries, want 2 (the roots, then their lines): %+v", n, db.queries)
	}
	if again := recompute(t, a, db); again != nil {
		t.Errorf("a second recompute sent %v: the roots were done", again)
	}
}

func TestAFanOutIsReadInChunksOfRoots(t *testing.T) {
	db := orderDatabase(25, 1)
	a := orderEntity(t, db, 10)
	a.lookups = append(a.lookups, mapping.Lookup{Columns: []string{"customer"}, Values: []cdc.Value{cdc.Int(1)}}) // 13 odd orders
	var sizes []int
	err := a.Recompute(context.Background(), db, func(records []mapping.Record) error {
		sizes = append(sizes, len(records))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[10 3]" {
		t.Errorf("chunks of %v records, want [10 3]", sizes)
	}
	var pages []string
	for _, q := range db.queries {
		if q.Table == ordersName {
			pages = append(pages, fmt.Sprintf("limit %d after %v", q.Limit, q.After))
		}
	}
	if want := "limit 10 after []; limit 10 after [19]"; strings.Join(pages, "; ") != want {
		t.Errorf("root queries %q, want %q", strings.Join(pages, "; "), want)
	}
}

func TestAllComputesEveryRoot(t *testing.T) {
	db := orderDatabase(7, 3)
	a := orderEntity(t, db, 3)
	n := 0
	err := a.All(context.Background(), db, func(records []mapping.Record) error {
		n += len(records)
		return nil
	})
	if err != nil || n != 7 {
		t.Errorf("%d records, err %v; want 7", n, err)
	}
}
