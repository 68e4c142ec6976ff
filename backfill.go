package cdc

import (
	"context"
	"fmt"
	"net/url"
	"slices"
)

// DefaultBackfillChunkSize is the number of rows a backfill reads between two
// watermarks. Smaller than a snapshot's chunk: the source holds the whole
// chunk in memory until the stream reaches its high watermark.
const DefaultBackfillChunkSize = 10_000

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

// Backfiller is implemented by sources that can backfill while they stream.
type Backfiller interface {
	// Backfill asks the next Run to fill b's tables for b's entities while
	// it streams, before any change after its start position. A backfill
	// under way in the position Run resumes from is merged with it. Backfill
	// fails if the database cannot (a PostgreSQL before 14, a MySQL source
	// without its watermark table).
	Backfill(b Backfill) error
}

// BackfillWindow is a backfill chunk's window: the keys of the backfill's
// tables that the log changed between the chunk's low and high watermarks.
// Those rows of the chunk may be older than what the stream already sent, so
// they are dropped.
type BackfillWindow struct {
	changed map[string]struct{} // table and key
}

// NewBackfillWindow opens a window.
func NewBackfillWindow() *BackfillWindow {
	return &BackfillWindow{changed: map[string]struct{}{}}
}

// Touch records the key of a row that a change held (its old or new row; nil
// is ignored).
func (w *BackfillWindow) Touch(t *Table, row []Value) {
	if row == nil {
		return
	}
	if key, ok := t.KeyOf(row); ok {
		w.changed[t.Name.String()+"\x00"+key] = struct{}{}
	}
}

// Keep returns the chunk's rows whose keys the window did not see changed,
// addressed to the backfill's entities, in place.
func (w *BackfillWindow) Keep(rows []Change, entities []string) []Change {
	kept := rows[:0]
	for _, row := range rows {
		if key, ok := row.Table.KeyOf(row.After); ok {
			if _, changed := w.changed[row.Table.Name.String()+"\x00"+key]; changed {
				continue
			}
		}
		row.Entities = entities
		kept = append(kept, row)
	}
	clear(rows[len(kept):])
	return kept
}

// Signaler is implemented by sources whose running stream can be asked for a
// backfill through the database's own log (cdc snapshot --online): the
// request is ordered with the changes, needs no connection to the daemon, and
// waits in the log while the daemon is stopped.
type Signaler interface {
	Signal(ctx context.Context, b Backfill) error
}

// ResumeBackfill is the backfill a stream resuming at a position goes on
// with: the one under way there, unless it is done, merged with the one asked
// for (either may be nil; so is the result when neither is left).
func ResumeBackfill(underWay, asked *Backfill) *Backfill {
	if underWay != nil {
		if _, _, more := underWay.Next(); !more {
			underWay = nil
		}
	}
	switch {
	case asked == nil:
		return underWay
	case underWay == nil:
		fill := *asked
		return &fill
	}
	merged := underWay.Merge(*asked)
	return &merged
}

// BackfillChunk is one chunk of a backfill: the rows a source's reader read
// between a low and a high watermark.
type BackfillChunk struct {
	// ID names the chunk's watermarks.
	ID    string
	Table *Table
	Rows  []Change
	// After is the last key read; Finished says the table is read whole.
	After    []string
	Finished bool
}

// BackfillStream is a stream's side of a backfill, owned by the stream's
// goroutine: the backfill under way, and the window its watermarks open.
type BackfillStream struct {
	// Fill is the backfill under way; nil when there is none.
	Fill     *Backfill
	window   *BackfillWindow
	windowID string
}

// Low opens the window of the chunk whose low watermark id the stream met.
func (b *BackfillStream) Low(id string) { b.window, b.windowID = NewBackfillWindow(), id }

// Touch records a change of one of the backfill's tables inside a window.
func (b *BackfillStream) Touch(t *Table, before, after []Value) {
	if b.window != nil && slices.Contains(b.Fill.Tables, t.Name) {
		b.window.Touch(t, before)
		b.window.Touch(t, after)
	}
}

// High closes the window at the chunk's high watermark id: it returns the
// chunk's rows the stream is to send there, addressed to the backfill's
// entities, and the backfill's progress after them, which Fill becomes (nil
// once it is done).
func (b *BackfillStream) High(id string, c *BackfillChunk) ([]Change, Backfill, error) {
	if b.window == nil || b.windowID != id {
		return nil, Backfill{}, fmt.Errorf("backfill: high watermark %s without its low one in the log", id)
	}
	if c.ID != id {
		return nil, Backfill{}, fmt.Errorf("backfill: chunk %s reached the stream at watermark %s", c.ID, id)
	}
	next := *b.Fill
	next.Cursor = next.Cursor.Advance(c.Table.Name, c.After, c.Finished)
	rows := b.window.Keep(c.Rows, next.Entities)
	b.window = nil
	if _, _, more := next.Next(); more {
		b.Fill = &next
	} else {
		b.Fill = nil
	}
	return rows, next, nil
}

// Ask adds a backfill asked for while streaming to the one under way, and
// reports whether it starts one (the source then starts its reader).
func (b *BackfillStream) Ask(asked Backfill) (starts bool) {
	starts = b.Fill == nil
	b.Fill = ResumeBackfill(b.Fill, &asked)
	return starts
}
