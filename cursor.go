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
// field of a source's position text: "done=a.b&table=a.c&after=42".
func (c SnapshotCursor) String() string {
	v := url.Values{}
	for _, t := range c.Done {
		v.Add("done", t.String())
	}
	if c.Table != (TableName{}) {
		v.Set("table", c.Table.String())
	}
	for _, k := range c.After {
		v.Add("after", k)
	}
	return v.Encode()
}

// ParseSnapshotCursor reads the form String writes.
func ParseSnapshotCursor(s string) (SnapshotCursor, error) {
	v, err := url.ParseQuery(s)
	if err != nil {
		return SnapshotCursor{}, fmt.Errorf("snapshot cursor %q: %v", s, err)
	}
	var c SnapshotCursor
	for key, values := range v {
		switch key {
		case "done":
			for _, d := range values {
				t, err := ParseTableName(d)
				if err != nil {
					return SnapshotCursor{}, fmt.Errorf("snapshot cursor %q: %v", s, err)
				}
				c.Done = append(c.Done, t)
			}
		case "table":
			if len(values) != 1 {
				return SnapshotCursor{}, fmt.Errorf("snapshot cursor %q: one table expected", s)
			}
			if c.Table, err = ParseTableName(values[0]); err != nil {
				return SnapshotCursor{}, fmt.Errorf("snapshot cursor %q: %v", s, err)
			}
		case "after":
			c.After = values
		default:
			return SnapshotCursor{}, fmt.Errorf("snapshot cursor %q: unknown field %q", s, key)
		}
	}
	if c.After != nil && c.Table == (TableName{}) {
		return SnapshotCursor{}, fmt.Errorf("snapshot cursor %q: a key without its table", s)
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
