// Package reread completes the changes whose log did not carry every value
// of the new row (PostgreSQL's unchanged TOASTed values under any REPLICA
// IDENTITY but FULL, the columns an update did not set under MySQL's
// binlog_row_image MINIMAL, the unchanged blobs under NOBLOB): it reads the
// rows back from the table by primary key, once per table and batch.
//
// The row read may be newer than the change: its values are those of a later
// change of the same row, which the log holds too and which is sent after
// this one, so the topic's last value for the key is still the table's. It
// must never be older: each source fences its read (see its Read).
package reread

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/cdc-dev/cdc"
)

// Read reads the given columns (the primary key's among them) of the
// current rows of t whose primary keys the rows given have (new rows of
// changes, their key columns complete), and returns those it found, by
// cdc.Table.KeyOf, as rows of t's width. A row not found was deleted, or its
// key changed, after the change: a later change in the log says so.
//
// Only the columns the changes lack are read: a column dropped since the
// change need not be read, unless the change lacks its value.
type Read func(ctx context.Context, t *cdc.Table, columns []int, rows [][]cdc.Value) (map[string][]cdc.Value, error)

// Counter counts the queries and rows a source read back; it implements
// cdc.ReadBackReporter, and is safe for concurrent use.
type Counter struct{ queries, rows atomic.Int64 }

func (c *Counter) ReadBack() (queries, rows int64) { return c.queries.Load(), c.rows.Load() }

// Complete fills in every value the changes' new rows lack, from their old
// rows where those have them, else from rows read with read. A change
// whose row is gone from the table becomes the delete of its old row: the
// key is absent from the table now, so the topic converges to a tombstone
// (or to what a later change of the log sends), and the change may have been
// the one that takes the row out of its entity. Not so an insert into one of
// events (outbox tables, whose rows are events, not state): its event would
// be lost with it. It stays an insert, the values it lacks cdc.Unknown, and
// the mapping decides whether it can do without them. It returns how many
// rows it read, and adds its queries and rows to counter.
func Complete(ctx context.Context, changes []cdc.Change, read Read, counter *Counter, events []cdc.TableName) (int, error) {
	var pending map[*cdc.Table][]int
	for i := range changes {
		ch := &changes[i]
		if !fromOldRow(ch) {
			continue
		}
		if pending == nil {
			pending = map[*cdc.Table][]int{}
		}
		pending[ch.Table] = append(pending[ch.Table], i)
	}
	if pending == nil {
		return 0, nil
	}
	total := 0
	for t, indexes := range pending {
		if len(t.PrimaryKey) == 0 {
			return total, fmt.Errorf("%s: the log did not carry every value of a changed row, and the table has no primary key to read the row back by: add a primary key, or have the database log whole rows (PostgreSQL: ALTER TABLE %s REPLICA IDENTITY FULL; MySQL: binlog_row_image = FULL)", t.Name, t.Name)
		}
		keys := make([][]cdc.Value, 0, len(indexes))
		columns := append([]int{}, t.PrimaryKey...)
		for _, i := range indexes {
			if _, ok := t.KeyOf(changes[i].After); !ok {
				return total, fmt.Errorf("%s at position %q: the log did not carry the new row's primary key", t.Name, changes[i].Position)
			}
			keys = append(keys, changes[i].After)
			for c, v := range changes[i].After {
				if v.Kind == cdc.KindUnchanged && !slices.Contains(columns, c) {
					columns = append(columns, c)
				}
			}
		}
		rows, err := read(ctx, t, columns, keys)
		counter.queries.Add(1)
		counter.rows.Add(int64(len(rows)))
		if err != nil {
			return total, fmt.Errorf("read back %d rows of %s whose values the log did not carry: %w", len(keys), t.Name, err)
		}
		total += len(rows)
		for _, i := range indexes {
			ch := &changes[i]
			key, _ := t.KeyOf(ch.After)
			if row, found := rows[key]; found {
				fromRow(ch, row)
				continue
			}
			if ch.Before == nil && slices.Contains(events, t.Name) {
				for c := range ch.After {
					if ch.After[c].Kind == cdc.KindUnchanged {
						ch.After[c] = cdc.Unknown()
					}
				}
				continue
			}
			if ch.Before == nil { // an insert: its row, less what it lacks
				ch.Before = ch.After
				for c := range ch.Before {
					if ch.Before[c].Kind == cdc.KindUnchanged {
						ch.Before[c] = cdc.Unknown()
					}
				}
			}
			ch.Op, ch.After = cdc.OpDelete, nil
		}
	}
	return total, nil
}

// Lacks reports whether a change's new row lacks values (cdc.KindUnchanged):
// the source is to complete the batch that holds it.
func Lacks(ch *cdc.Change) bool {
	for i := range ch.After {
		if ch.After[i].Kind == cdc.KindUnchanged {
			return true
		}
	}
	return false
}

// fromOldRow fills the new row's unchanged values that the old row has, and
// reports whether any is still missing.
func fromOldRow(ch *cdc.Change) bool {
	if ch.After == nil {
		return false
	}
	missing := false
	for c := range ch.After {
		if ch.After[c].Kind != cdc.KindUnchanged {
			continue
		}
		if ch.Before != nil && ch.Before[c].Kind != cdc.KindUnknown && ch.Before[c].Kind != cdc.KindUnchanged {
			ch.After[c] = ch.Before[c]
			continue
		}
		missing = true
	}
	return missing
}

// fromRow fills the new row's missing values from the row read. A value the
// change left unchanged was the old row's too.
func fromRow(ch *cdc.Change, row []cdc.Value) {
	for c := range ch.After {
		if ch.After[c].Kind != cdc.KindUnchanged {
			continue
		}
		ch.After[c] = row[c]
		if ch.Op == cdc.OpUpdate && ch.Before != nil && ch.Before[c].Kind == cdc.KindUnknown {
			ch.Before[c] = row[c]
		}
	}
}
