package cdc

import (
	"reflect"
	"testing"
)

func TestBackfillRoundTripsAndMerges(t *testing.T) {
	a, b := TableName{Schema: "shop", Name: "a"}, TableName{Schema: "shop", Name: "b"}
	fill := Backfill{Entities: []string{"order-v2"}, Tables: []TableName{a, b}, Cursor: SnapshotCursor{Done: []TableName{a}, Table: b, After: []string{"7"}}}
	back, err := ParseBackfill(fill.String())
	if err != nil || !reflect.DeepEqual(back, fill) {
		t.Fatalf("%q reads back as %#v, %v", fill.String(), back, err)
	}
	if table, after, ok := fill.Next(); !ok || table != b || !reflect.DeepEqual(after, []string{"7"}) {
		t.Errorf("next: %v after %v (%v), want b after 7", table, after, ok)
	}
	merged := fill.Merge(Backfill{Entities: []string{"customer-v2"}, Tables: []TableName{a}})
	if !reflect.DeepEqual(merged.Entities, []string{"order-v2", "customer-v2"}) || merged.Cursor.Finished(a) {
		t.Errorf("merged: %#v: want both entities, and table a to be read again", merged)
	}
	if fill.Cursor.Finished(a) == false {
		t.Error("merging changed the original")
	}
	done := Backfill{Entities: []string{"x"}, Tables: []TableName{a}, Cursor: SnapshotCursor{Done: []TableName{a}}}
	if _, _, ok := done.Next(); ok {
		t.Error("a backfill with every table done has a next table")
	}
	for _, bad := range []string{"", "fill=shop.a", "entity=x", "entity=x&fill=shop.a&what=1"} {
		if _, err := ParseBackfill(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBackfillWindowDropsTheKeysChangedInIt(t *testing.T) {
	table := &Table{Name: TableName{Schema: "s", Name: "t"}, Columns: []Column{{Name: "a"}, {Name: "b"}, {Name: "v"}}, PrimaryKey: []int{0, 1}}
	other := &Table{Name: TableName{Schema: "s", Name: "u"}, Columns: table.Columns, PrimaryKey: table.PrimaryKey}
	row := func(a int64, b, v string) []Value { return []Value{Int(a), String([]byte(b)), String([]byte(v))} }
	w := NewBackfillWindow()
	w.Touch(table, row(1, "x", "new"))
	w.Touch(table, nil)
	w.Touch(other, row(2, "x", "another table's row of the same key"))
	w.Touch(table, row(12, "", "a key whose parts run together with 1,2x"))
	chunk := []Change{
		{Table: table, Op: OpRead, After: row(1, "x", "old")},
		{Table: table, Op: OpRead, After: row(2, "x", "kept")},
		{Table: table, Op: OpRead, After: row(1, "2x", "kept")},
	}
	kept := w.Keep(chunk, []string{"v2"})
	if len(kept) != 2 || kept[0].After[2].String() != "kept" || kept[1].After[2].String() != "kept" {
		t.Fatalf("kept %v", kept)
	}
	for _, k := range kept {
		if !reflect.DeepEqual(k.Entities, []string{"v2"}) {
			t.Errorf("a kept row is for %v, want the backfill's entities", k.Entities)
		}
	}
}
