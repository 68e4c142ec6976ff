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
