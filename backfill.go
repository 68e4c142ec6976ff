package cdc

import (
	"fmt"
	"net/url"
	"slices"
)

// Backfill fills entity topics from their tables' current rows while the source
// streams: entities added to a connector that has streamed, such as a new topic
// version beside the old one. The source reads the tables in primary-key chunks
// between two watermarks it writes into its own log, and drops from each chunk
// the rows the log changed inside that window, so that a read never overtakes
// a newer streamed value of its key (DBLog's algorithm).
//
// Its progress travels in the source's positions until it is done, so that a
// restart goes on with the next chunk.
type Backfill struct {
	// Entities are the entities the reads are for: the others of the same
	// tables are not sent them again.
	Entities []string
	// Tables are read in this order.
	Tables []TableName
	Cursor SnapshotCursor
}

// String renders the backfill as one token without spaces, as
// SnapshotCursor.String does.
func (b Backfill) String() string {
	v := url.Values{}
	for _, e := range b.Entities {
		v.Add("entity", e)
	}
	for _, t := range b.Tables {
		v.Add("fill", t.String())
	}
	b.Cursor.addTo(v)
	return v.Encode()
}

// ParseBackfill reads the form String writes.
func ParseBackfill(s string) (Backfill, error) {
	v, err := url.ParseQuery(s)
	if err != nil {
		return Backfill{}, fmt.Errorf("backfill %q: %v", s, err)
	}
	b := Backfill{Entities: v["entity"]}
	for _, t := range v["fill"] {
		name, err := ParseTableName(t)
		if err != nil {
			return Backfill{}, fmt.Errorf("backfill %q: %v", s, err)
		}
		b.Tables = append(b.Tables, name)
	}
	delete(v, "entity")
	delete(v, "fill")
	if b.Cursor, err = cursorFrom(v); err != nil {
		return Backfill{}, fmt.Errorf("backfill %q: %v", s, err)
	}
	if len(b.Entities) == 0 || len(b.Tables) == 0 {
		return Backfill{}, fmt.Errorf("backfill %q: no entity or no table", s)
	}
	return b, nil
}

// Merge adds another backfill's entities and tables to b. A table b has
// already read is read again if other names it, for other's entities.
func (b Backfill) Merge(other Backfill) Backfill {
	merged := Backfill{Entities: slices.Clone(b.Entities), Tables: slices.Clone(b.Tables), Cursor: b.Cursor}
	merged.Cursor.Done = slices.Clone(b.Cursor.Done)
	for _, e := range other.Entities {
		if !slices.Contains(merged.Entities, e) {
			merged.Entities = append(merged.Entities, e)
		}
	}
	for _, t := range other.Tables {
		if !slices.Contains(merged.Tables, t) {
			merged.Tables = append(merged.Tables, t)
		}
		merged.Cursor.Done = slices.DeleteFunc(merged.Cursor.Done, func(d TableName) bool { return d == t })
	}
	return merged
}

// Next returns the table to read next and the key its read goes on after, or
// false when every table is read.
func (b Backfill) Next() (table TableName, after []string, ok bool) {
	for _, t := range b.Tables {
		if after, read := b.Cursor.Resume(t); read {
			return t, after, true
		}
	}
	return TableName{}, nil, false
}
