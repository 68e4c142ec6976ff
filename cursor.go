package cdc

import (
	"fmt"
	"net/url"
	"slices"
)

// SnapshotCursor is how far an unfinished snapshot got, stored with the
// position streaming will start from: a restart reads only what is left. The
// tables in Done are read whole; Table is read up to and including the row
// whose primary key is After (the key columns' text forms, in key order; nil
// when none of its rows is read yet). Tables in neither are not read yet.
//
// Sources read a table in primary-key order, a chunk per query, and pass a
// cursor down after each chunk; it is stored once the chunk's rows are
// acknowledged.
type SnapshotCursor struct {
	Done  []TableName
	Table TableName
	After []string
}

// String renders the cursor as one token without spaces, so that it can be a
// field of a source's position text: "after=42&done=a.b&table=a.c".
func (c SnapshotCursor) String() string {
	v := url.Values{}
	c.addTo(v)
	return v.Encode()
}

func (c SnapshotCursor) addTo(v url.Values) {
	for _, t := range c.Done {
		v.Add("done", t.String())
	}
	if c.Table != (TableName{}) {
		v.Set("table", c.Table.String())
	}
	for _, k := range c.After {
		v.Add("after", k)
	}
}

// ParseSnapshotCursor reads the form String writes.
func ParseSnapshotCursor(s string) (SnapshotCursor, error) {
	v, err := url.ParseQuery(s)
	if err != nil {
		return SnapshotCursor{}, fmt.Errorf("snapshot cursor %q: %v", s, err)
	}
	c, err := cursorFrom(v)
	if err != nil {
		return SnapshotCursor{}, fmt.Errorf("snapshot cursor %q: %v", s, err)
	}
	return c, nil
}

// cursorFrom takes the cursor's fields out of v, leaving the others.
func cursorFrom(v url.Values) (SnapshotCursor, error) {
	var c SnapshotCursor
	var err error
	for _, d := range v["done"] {
		t, err := ParseTableName(d)
		if err != nil {
			return SnapshotCursor{}, err
		}
		c.Done = append(c.Done, t)
	}
	if tables := v["table"]; len(tables) > 1 {
		return SnapshotCursor{}, fmt.Errorf("one table expected")
	} else if len(tables) == 1 {
		if c.Table, err = ParseTableName(tables[0]); err != nil {
			return SnapshotCursor{}, err
		}
	}
	c.After = v["after"]
	if c.After != nil && c.Table == (TableName{}) {
		return SnapshotCursor{}, fmt.Errorf("a key without its table")
	}
	delete(v, "done")
	delete(v, "table")
	delete(v, "after")
	for key := range v {
		return SnapshotCursor{}, fmt.Errorf("unknown field %q", key)
	}
	return c, nil
}

// Finished reports whether the cursor says table was read whole.
func (c SnapshotCursor) Finished(table TableName) bool { return slices.Contains(c.Done, table) }

// Resume returns the key a table's read goes on after: (nil, true) when it
// starts from its first row, (nil, false) when it is done.
func (c SnapshotCursor) Resume(table TableName) (after []string, read bool) {
	switch {
	case c.Finished(table):
		return nil, false
	case table == c.Table:
		return c.After, true
	}
	return nil, true
}

// Advance returns the cursor after a chunk of table whose last key is after,
// or, with finished, after the whole table.
func (c SnapshotCursor) Advance(table TableName, after []string, finished bool) SnapshotCursor {
	next := SnapshotCursor{Done: slices.Clone(c.Done)}
	if finished {
		if !next.Finished(table) {
			next.Done = append(next.Done, table)
		}
		return next
	}
	next.Table, next.After = table, slices.Clone(after)
	return next
}

// CheckKey refuses a cursor whose key does not have as many columns as the
// key its table is read by now (width): the table's key changed while the
// snapshot was interrupted, and the stored key means nothing in the new one.
// A table read without a key (width 0) is read whole, which is always safe.
func (c SnapshotCursor) CheckKey(table TableName, width int) error {
	if c.Table != table || c.After == nil || width == 0 || len(c.After) == width {
		return nil
	}
	return fmt.Errorf("the interrupted snapshot stored a key of %d columns for table %s, which is now read by a key of %d: its key changed meanwhile; delete the checkpoint (a tombstone for the connector's key in the checkpoint topic) to snapshot again",
		len(c.After), table, width)
}
