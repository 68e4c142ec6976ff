package cdc

import (
	"reflect"
	"strings"
	"testing"
)

func TestSnapshotCursorRoundTrips(t *testing.T) {
	a, b := TableName{Schema: "shop", Name: "a"}, TableName{Schema: "shop", Name: "b c"}
	for _, c := range []SnapshotCursor{
		{},
		{Table: a},
		{Table: a, After: []string{""}},
		{Done: []TableName{a}, Table: b, After: []string{"42", "x y&z=1,2%", "\x00\xff"}},
		{Done: []TableName{a, b}},
	} {
		s := c.String()
		if strings.ContainsAny(s, " \t\n") {
			t.Errorf("%#v renders as %q, which holds a space", c, s)
		}
		back, err := ParseSnapshotCursor(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Errorf("%q reads back as %#v, want %#v", s, back, c)
		}
	}
}

func TestSnapshotCursorAdvancesTableByTable(t *testing.T) {
	a, b := TableName{Schema: "s", Name: "a"}, TableName{Schema: "s", Name: "b"}
	var c SnapshotCursor
	c = c.Advance(a, []string{"10"}, false)
	if after, read := c.Resume(a); !read || !reflect.DeepEqual(after, []string{"10"}) {
		t.Errorf("a resumes after %v (read %v), want after 10", after, read)
	}
	if after, read := c.Resume(b); !read || after != nil {
		t.Errorf("b resumes after %v (read %v), want from its start", after, read)
	}
	c = c.Advance(a, nil, true)
	if _, read := c.Resume(a); read {
		t.Error("a is read again after it was finished")
	}
	if c.Table != (TableName{}) || c.After != nil {
		t.Errorf("a finished table leaves %v after %v in the cursor", c.Table, c.After)
	}
}

func TestSnapshotCursorRefusesWhatItDoesNotWrite(t *testing.T) {
	for _, s := range []string{"after=1", "table=nodot", "table=a.b&table=a.c", "what=1", "%zz"} {
		if _, err := ParseSnapshotCursor(s); err == nil {
			t.Errorf("%q was accepted", s)
		}
	}
}

func TestSnapshotCursorRefusesAKeyOfAnotherWidth(t *testing.T) {
	a, b := TableName{Schema: "s", Name: "a"}, TableName{Schema: "s", Name: "b"}
	c := SnapshotCursor{Done: []TableName{b}, Table: a, After: []string{"g5", "17"}}
	if err := c.CheckKey(a, 1); err == nil || !strings.Contains(err.Error(), "delete the checkpoint") {
		t.Errorf("a 2-column key for a table read by 1 column: %v, want a refusal with the fix", err)
	}
	for _, ok := range []struct {
		table TableName
		width int
	}{{a, 2}, {a, 0}, {b, 3}} {
		if err := c.CheckKey(ok.table, ok.width); err != nil {
			t.Errorf("table %s read by %d columns: %v", ok.table, ok.width, err)
		}
	}
}
