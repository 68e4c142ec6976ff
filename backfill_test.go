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

func TestBackfillStreamSendsAChunkLessItsWindowAndEndsWhenDone(t *testing.T) {
	table := &Table{Name: TableName{Schema: "s", Name: "t"}, Columns: []Column{{Name: "id"}, {Name: "v"}}, PrimaryKey: []int{0}}
	row := func(id int64, v string) []Value { return []Value{Int(id), String([]byte(v))} }
	b := BackfillStream{Fill: &Backfill{Entities: []string{"v2"}, Tables: []TableName{table.Name}}}
	if _, _, err := b.High("x:1:", &BackfillChunk{ID: "x:1:", Table: table}); err == nil {
		t.Error("a high watermark without its low one was taken")
	}
	b.Low("x:1:")
	if _, _, err := b.High("x:1:", &BackfillChunk{ID: "x:2:", Table: table}); err == nil {
		t.Error("a chunk of another watermark was taken")
	}
	b.Low("x:1:")
	b.Touch(table, row(2, "old"), row(2, "new"))
	rows, fill, err := b.High("x:1:", &BackfillChunk{ID: "x:1:", Table: table, Rows: []Change{
		{Table: table, Op: OpRead, After: row(1, "a")}, {Table: table, Op: OpRead, After: row(2, "old")},
	}, After: []string{"2"}})
	if err != nil || len(rows) != 1 || rows[0].After[0].Int != 1 {
		t.Fatalf("sent %v, %v: want row 1 only", rows, err)
	}
	if !reflect.DeepEqual(fill.Cursor.After, []string{"2"}) || b.Fill == nil || b.Fill.Cursor.Table != table.Name {
		t.Errorf("progress %+v, under way %+v: want the cursor after key 2", fill, b.Fill)
	}
	b.Low("x:2:")
	if _, fill, err = b.High("x:2:", &BackfillChunk{ID: "x:2:", Table: table, Finished: true}); err != nil || b.Fill != nil || !fill.Cursor.Finished(table.Name) {
		t.Errorf("after the last chunk: %+v under way, progress %+v, %v", b.Fill, fill, err)
	}
	if !b.Ask(Backfill{Entities: []string{"v3"}, Tables: []TableName{table.Name}}) || b.Ask(Backfill{Entities: []string{"v4"}, Tables: []TableName{table.Name}}) {
		t.Error("Ask must start a backfill when none is under way, and only then")
	}
	if !reflect.DeepEqual(b.Fill.Entities, []string{"v3", "v4"}) {
		t.Errorf("asked twice: %v, want both entities", b.Fill.Entities)
	}
}

func TestResumeBackfillDropsADoneOneAndMerges(t *testing.T) {
	a := TableName{Schema: "s", Name: "a"}
	done := &Backfill{Entities: []string{"x"}, Tables: []TableName{a}, Cursor: SnapshotCursor{Done: []TableName{a}}}
	asked := &Backfill{Entities: []string{"y"}, Tables: []TableName{a}}
	if got := ResumeBackfill(done, nil); got != nil {
		t.Errorf("a done backfill goes on: %+v", got)
	}
	if got := ResumeBackfill(done, asked); got == nil || !reflect.DeepEqual(got.Entities, []string{"y"}) {
		t.Errorf("asked after a done one: %+v", got)
	}
	if got := ResumeBackfill(nil, nil); got != nil {
		t.Errorf("nothing gives %+v", got)
	}
}
