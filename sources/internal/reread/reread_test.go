package reread

import (
	"context"
	"slices"
	"testing"

	"github.com/cdc-dev/cdc"
)

var table = &cdc.Table{
	Name:       cdc.TableName{Schema: "s", Name: "t"},
	Columns:    []cdc.Column{{Name: "id", Kind: cdc.KindInt}, {Name: "a", Kind: cdc.KindInt}, {Name: "doc", Kind: cdc.KindString}},
	PrimaryKey: []int{0},
}

func TestCompleteFillsFromTheOldRowThenFromRowsReadBack(t *testing.T) {
	changes := []cdc.Change{
		// The old row has the value: nothing to read.
		{Table: table, Op: cdc.OpUpdate, Before: []cdc.Value{cdc.Int(1), cdc.Int(1), cdc.String([]byte("x"))}, After: []cdc.Value{cdc.Int(1), cdc.Int(2), cdc.Unchanged()}},
		// Read back; the unchanged value was the old row's too.
		{Table: table, Op: cdc.OpUpdate, Before: []cdc.Value{cdc.Int(2), cdc.Unknown(), cdc.Unknown()}, After: []cdc.Value{cdc.Int(2), cdc.Int(3), cdc.Unchanged()}},
		// Gone from the table since: the delete of its old row.
		{Table: table, Op: cdc.OpUpdate, Before: []cdc.Value{cdc.Int(3), cdc.Int(7), cdc.Unknown()}, After: []cdc.Value{cdc.Int(3), cdc.Int(3), cdc.Unchanged()}},
		// Moved to key 5, then gone: the delete of key 4.
		{Table: table, Op: cdc.OpUpdate, Before: []cdc.Value{cdc.Int(4), cdc.Unknown(), cdc.Unknown()}, After: []cdc.Value{cdc.Int(5), cdc.Int(3), cdc.Unchanged()}},
		// An insert gone since: the delete of the row it inserted.
		{Table: table, Op: cdc.OpInsert, After: []cdc.Value{cdc.Int(8), cdc.Unchanged(), cdc.String([]byte("y"))}},
	}
	var asked []int
	read := func(_ context.Context, tb *cdc.Table, columns []int, rows [][]cdc.Value) (map[string][]cdc.Value, error) {
		asked = columns
		for _, r := range rows {
			if r[0].Int == 1 {
				t.Error("read back a row whose old row had the value")
			}
		}
		row := []cdc.Value{cdc.Int(2), cdc.Null(), cdc.String([]byte("long"))}
		key, _ := tb.KeyOf(row)
		return map[string][]cdc.Value{key: row}, nil
	}
	var counter Counter
	n, err := Complete(context.Background(), changes, read, &counter, nil)
	if err != nil || n != 1 {
		t.Fatalf("read %d rows, err %v", n, err)
	}
	if queries, rows := counter.ReadBack(); queries != 1 || rows != 1 {
		t.Errorf("counted %d queries and %d rows, want 1 and 1", queries, rows)
	}
	if !slices.Equal(asked, []int{0, 2, 1}) {
		t.Errorf("read columns %v, want the key and the missing ones", asked)
	}
	if string(changes[0].After[2].Bytes) != "x" || string(changes[1].After[2].Bytes) != "long" || string(changes[1].Before[2].Bytes) != "long" {
		t.Errorf("values not filled: %v / %v / %v", changes[0].After, changes[1].After, changes[1].Before)
	}
	for i, key := range map[int]int64{2: 3, 3: 4, 4: 8} {
		if ch := changes[i]; ch.Op != cdc.OpDelete || ch.After != nil || ch.Before[0].Int != key {
			t.Errorf("change %d, whose row is gone, is not the delete of key %d: %+v", i, key, ch)
		}
	}
	if changes[2].Before[1].Int != 7 || changes[4].Before[1].Kind != cdc.KindUnknown || string(changes[4].Before[2].Bytes) != "y" {
		t.Errorf("the deletes' old rows: %v, %v", changes[2].Before, changes[4].Before)
	}
}

// An insert into an outbox whose row is gone before the values its log
// lacked could be read back stays an insert: the delete of an event would
// lose it. The values it lacks are unknown; the mapping decides.
func TestAnOutboxInsertGoneBeforeItsReadBackStaysAnInsert(t *testing.T) {
	changes := []cdc.Change{{Table: table, Op: cdc.OpInsert, After: []cdc.Value{cdc.Int(8), cdc.Unchanged(), cdc.String([]byte("y"))}}}
	read := func(context.Context, *cdc.Table, []int, [][]cdc.Value) (map[string][]cdc.Value, error) {
		return map[string][]cdc.Value{}, nil
	}
	if _, err := Complete(context.Background(), changes, read, &Counter{}, []cdc.TableName{table.Name}); err != nil {
		t.Fatal(err)
	}
	if ch := changes[0]; ch.Op != cdc.OpInsert || ch.Before != nil || ch.After[1].Kind != cdc.KindUnknown || string(ch.After[2].Bytes) != "y" {
		t.Errorf("the outbox insert became %+v", ch)
	}
}
