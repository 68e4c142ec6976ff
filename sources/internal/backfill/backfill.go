// Package backfill is the protocol both sources follow to fill entity topics
// from their tables while they stream (see cdc.Backfill): a reader beside the
// stream writes a low watermark into the database's log, reads a chunk of
// rows, hands it to the stream and writes a high watermark; the stream,
// meeting the watermarks in log order, drops from the chunk the keys the log
// changed between them and sends the rest at the high one.
//
// A source supplies only what differs between databases: how a watermark is
// written and recognized, how a read is made to see everything logged before
// the low watermark, and how a chunk is read (Database).
package backfill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/sources/internal/snapshot"
)

// Database is what a source gives a backfill's reader: one connection of its
// own, and the source's description of a table, T.
type Database[T any] interface {
	// Watermark writes mark into the database's log, ordered with the
	// changes around it, and flushed so that the stream meets it soon.
	Watermark(ctx context.Context, mark string) error
	// AwaitVisible returns once a read started now sees every transaction
	// logged before the watermark just written.
	AwaitVisible(ctx context.Context) error
	// Estimate is the catalog's estimate of a table's rows (0: unknown).
	Estimate(ctx context.Context, table cdc.TableName) (int64, error)
	// Read reads at most limit rows of the table after the key given (nil:
	// from the first), in key order, into memory of their own, and returns
	// them with the last one's key.
	Read(ctx context.Context, table T, after []string, limit int) (rows []cdc.Change, last []string, err error)
	Close()
}

// Resume is the backfill a stream resuming at a position goes on with: the
// one under way there, unless it is done, merged with the one asked for
// (either may be nil; so is the result when neither is left).
func Resume(underWay, asked *cdc.Backfill) *cdc.Backfill {
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

// Chunk is one chunk of a backfill: the rows the reader read between a low
// and a high watermark.
type Chunk struct {
	// ID names the chunk's watermarks.
	ID    string
	Table cdc.TableName
	Rows  []cdc.Change
	// After is the last key read; Finished says the table is read whole.
	After    []string
	Finished bool
}

// Stream is a stream's side of a backfill, owned by the stream's goroutine:
// the backfill under way, the window its watermarks open, and the reader of
// its chunks. T is the source's description of a table.
type Stream[T any] struct {
	// Fill is the backfill under way; nil when there is none.
	Fill *cdc.Backfill
	// ChunkSize is the number of rows a chunk reads.
	ChunkSize int
	// Open opens a reader's connection.
	Open func(context.Context) (Database[T], error)
	// Describe describes a table as the stream knows it now; it is called
	// on the stream's goroutine, which owns the descriptions.
	Describe func(cdc.TableName) T
	// Check says whether the source can serve a backfill asked for.
	Check func(cdc.Backfill) error
	// Stop stops the stream with a reader's failure.
	Stop     func(error)
	Progress *snapshot.Progress
	Log      *slog.Logger

	window   *Window
	windowID string
	reader   *reader[T]
}

// Reading says whether a reader runs, so that the stream is to look for
// its watermarks.
func (s *Stream[T]) Reading() bool { return s.reader != nil }

// Start starts the reader of the backfill under way on a connection of its
// own.
func (s *Stream[T]) Start(ctx context.Context) error {
	db, err := s.Open(ctx)
	if err != nil {
		return err
	}
	token := make([]byte, 6)
	_, _ = rand.Read(token)
	r := &reader[T]{db: db, tables: s.describe(*s.Fill), token: hex.EncodeToString(token), size: s.ChunkSize, progress: s.Progress, log: s.Log,
		chunks: make(chan *Chunk, 1), emitted: make(chan emitted[T], 1)}
	s.reader = r
	fill := *s.Fill
	s.Log.Info("backfill started: its tables are read in chunks while streaming goes on",
		"entities", strings.Join(fill.Entities, ","), "tables", len(fill.Tables), "resumed", fill.Cursor.String())
	go func() {
		defer db.Close()
		if err := r.run(ctx, fill); err != nil {
			s.Stop(err)
		}
	}()
	return nil
}

// describe describes the backfill's tables.
func (s *Stream[T]) describe(fill cdc.Backfill) map[cdc.TableName]T {
	tables := map[cdc.TableName]T{}
	for _, t := range fill.Tables {
		tables[t] = s.Describe(t)
	}
	return tables
}

// Signal handles a backfill asked for through the log by cdc snapshot
// --online (text is its cdc.Backfill.String), which the stream met at the
// position at: it is added to the one under way, or starts one. A request
// the source cannot serve is logged and ignored: it stays in the log, and
// failing on it would fail every restart.
func (s *Stream[T]) Signal(ctx context.Context, text, at string) error {
	asked, err := cdc.ParseBackfill(text)
	if err == nil {
		err = s.Check(asked)
	}
	if err != nil {
		s.Log.Error("ignored a backfill signal", "signal", text, "at", at, "err", err)
		return nil
	}
	s.Log.Info("backfill asked by a signal", "entities", strings.Join(asked.Entities, ","), "at", at)
	if !s.ask(asked) {
		return nil // the reader takes it with its next chunk
	}
	return s.Start(ctx)
}

// ask adds a backfill asked for while streaming to the one under way, and
// reports whether it starts one.
func (s *Stream[T]) ask(asked cdc.Backfill) (starts bool) {
	starts = s.Fill == nil
	s.Fill = Resume(s.Fill, &asked)
	return starts
}

// Touch records a change of one of the backfill's tables inside a window.
func (s *Stream[T]) Touch(t *cdc.Table, before, after []cdc.Value) {
	if s.window != nil && slices.Contains(s.Fill.Tables, t.Name) {
		s.window.Touch(t, before)
		s.window.Touch(t, after)
	}
}

// Watermark handles a watermark the stream met in the log (the part after
// the source's own prefix). A low one opens its chunk's window. At a high
// one, Watermark waits for the chunk and returns what the stream is to send
// there: the chunk's rows less the keys changed in the window, addressed to
// the backfill's entities, and the backfill's progress after them, which
// Fill becomes (nil once it is done). Marks of an earlier run are ignored
// (nil).
func (s *Stream[T]) Watermark(ctx context.Context, mark string) (*Sending, error) {
	cut := strings.LastIndexByte(mark, ':')
	if s.reader == nil || cut < 0 || !strings.HasPrefix(mark, s.reader.token+":") {
		return nil, nil
	}
	id, kind := mark[:cut+1], mark[cut+1:]
	switch kind {
	case "low":
		s.window, s.windowID = NewWindow(), id
		return nil, nil
	case "high":
	default:
		return nil, nil
	}
	var c *Chunk
	select {
	case c = <-s.reader.chunks:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.high(id, c)
}

// Sending is a chunk's part the stream sends at its high watermark.
type Sending struct {
	Rows []cdc.Change
	// Fill is the backfill's progress after the chunk.
	Fill  cdc.Backfill
	chunk *Chunk
}

func (s *Stream[T]) high(id string, c *Chunk) (*Sending, error) {
	if s.window == nil || s.windowID != id {
		return nil, fmt.Errorf("backfill: high watermark %s without its low one in the log", id)
	}
	if c.ID != id {
		return nil, fmt.Errorf("backfill: chunk %s reached the stream at watermark %s", c.ID, id)
	}
	next := *s.Fill
	next.Cursor = next.Cursor.Advance(c.Table, c.After, c.Finished)
	rows := s.window.Keep(c.Rows, next.Entities)
	s.window = nil
	if _, _, more := next.Next(); more {
		s.Fill = &next
	} else {
		s.Fill = nil
	}
	return &Sending{Rows: rows, Fill: next, chunk: c}, nil
}

// Sent tells the reader that the stream has sent the chunk, and gives it the
// tables as the stream describes them now for the next one. It counts and
// logs the rows sent (the others were changed in the window), the end of the
// table and of the backfill.
func (s *Stream[T]) Sent(sent *Sending) {
	c := sent.chunk
	s.Progress.Add(c.Table, len(sent.Rows), s.Log)
	s.Log.Debug("backfill chunk sent", "table", c.Table.String(), "rows", len(sent.Rows), "left_to_the_stream", len(c.Rows)-len(sent.Rows))
	if c.Finished {
		s.Progress.Finish(c.Table)
		s.Log.Info("backfill of table finished", "table", c.Table.String())
	}
	if s.Fill == nil {
		s.Log.Info("backfill finished", "entities", strings.Join(sent.Fill.Entities, ","))
	}
	s.reader.emitted <- emitted[T]{fill: sent.Fill, tables: s.describe(sent.Fill)}
	if s.Fill == nil {
		s.reader = nil // it ends with this chunk
	}
}

// reader reads a backfill's chunks beside the stream.
type reader[T any] struct {
	db       Database[T]
	tables   map[cdc.TableName]T
	token    string // tells this run's watermarks from an earlier run's
	size     int
	progress *snapshot.Progress
	log      *slog.Logger
	chunks   chan *Chunk
	// emitted gives the stream's progress after each chunk it sent.
	emitted chan emitted[T]
}

// emitted is the backfill as the stream left it after a chunk, with the
// description of its tables: the stream owns them.
type emitted[T any] struct {
	fill   cdc.Backfill
	tables map[cdc.TableName]T
}

func (r *reader[T]) run(ctx context.Context, fill cdc.Backfill) error {
	var reading cdc.TableName
	for n := 1; ; n++ {
		name, after, ok := fill.Next()
		if !ok {
			return nil
		}
		if name != reading {
			reading = name
			estimate, err := r.db.Estimate(ctx, name)
			if err != nil {
				return fmt.Errorf("backfill of %s: %w", name, err)
			}
			r.progress.Start(name, estimate)
			r.log.Info("backfill of table started", "table", name.String(), "estimated_rows", estimate, "resumed_after_key", after)
		}
		id := r.token + ":" + strconv.Itoa(n) + ":"
		if err := r.db.Watermark(ctx, id+"low"); err != nil {
			return fmt.Errorf("backfill: write the low watermark: %w", err)
		}
		if err := r.db.AwaitVisible(ctx); err != nil {
			return fmt.Errorf("backfill: %w", err)
		}
		rows, last, err := r.db.Read(ctx, r.tables[name], after, r.size)
		if err != nil {
			return fmt.Errorf("backfill of %s: %w", name, err)
		}
		c := &Chunk{ID: id, Table: name, Rows: rows, Finished: len(rows) < r.size}
		if !c.Finished {
			c.After = last
		}
		select {
		case r.chunks <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := r.db.Watermark(ctx, id+"high"); err != nil {
			return fmt.Errorf("backfill: write the high watermark: %w", err)
		}
		select {
		case e := <-r.emitted:
			fill, r.tables = e.fill, e.tables
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Window is a backfill chunk's window: the keys of the backfill's tables
// that the log changed between the chunk's low and high watermarks. Those
// rows of the chunk may be older than what the stream already sent, so they
// are dropped.
type Window struct {
	changed map[string]struct{} // table and key
}

// NewWindow opens a window.
func NewWindow() *Window {
	return &Window{changed: map[string]struct{}{}}
}

// Touch records the key of a row that a change held (its old or new row; nil
// is ignored).
func (w *Window) Touch(t *cdc.Table, row []cdc.Value) {
	if row == nil {
		return
	}
	if key, ok := t.KeyOf(row); ok {
		w.changed[t.Name.String()+"\x00"+key] = struct{}{}
	}
}

// Keep returns the chunk's rows whose keys the window did not see changed,
// addressed to the backfill's entities, in place.
func (w *Window) Keep(rows []cdc.Change, entities []string) []cdc.Change {
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
