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
		// Gone from the table since: dropped.
		{Table: table, Op: cdc.OpUpdate, Before: []cdc.Value{cdc.Int(3), cdc.Unknown(), cdc.Unknown()}, After: []cdc.Value{cdc.Int(3), cdc.Int(3), cdc.Unchanged()}},
		// Moved to key 5, then gone: the delete of key 4.
		{Table: table, Op: cdc.OpUpdate, Before: []cdc.Value{cdc.Int(4), cdc.Unknown(), cdc.Unknown()}, After: []cdc.Value{cdc.Int(5), cdc.Int(3), cdc.Unchanged()}},
		{Table: table, Op: cdc.OpDelete, Before: []cdc.Value{cdc.Int(6), cdc.Unknown(), cdc.Unknown()}},
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
	left, n, err := Complete(context.Background(), changes, read)
	if err != nil || n != 1 {
		t.Fatalf("read %d rows, err %v", n, err)
	}
	if !slices.Equal(asked, []int{0, 2}) {
		t.Errorf("read columns %v, want the key and the missing one", asked)
	}
	if len(left) != 4 {
		t.Fatalf("%d changes left, want 4", len(left))
	}
	if string(left[0].After[2].Bytes) != "x" || string(left[1].After[2].Bytes) != "long" || string(left[1].Before[2].Bytes) != "long" {
		t.Errorf("values not filled: %v / %v / %v", left[0].After, left[1].After, left[1].Before)
	}
	if left[2].Op != cdc.OpDelete || left[2].After != nil || left[2].Before[0].Int != 4 {
		t.Errorf("a row moved to a key it left since is not the delete of its old key: %+v", left[2])
	}
	if left[3].Op != cdc.OpDelete || left[3].Before[0].Int != 6 {
		t.Errorf("the delete after them moved: %+v", left[3])
	}
}
