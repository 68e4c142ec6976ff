package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdc-dev/cdc"
)

// snapshot reads every mapped table in one repeatable-read transaction, on the
// exported snapshot when one is given, and sends each row as a read change.
//
// With a start, it resumes after start's cursor (from the first table when it
// has none), and each chunk's last batch carries start with the cursor after
// that chunk: once the chunk is acknowledged, a restart goes on from there. Rows
// carry no position; the end-of-snapshot marker sent after them does.
func (s *Source) snapshot(ctx context.Context, exported string, start *Position, out chan<- cdc.Batch) error {
	pg := s.conn.PgConn()
	if err := pg.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").Close(); err != nil {
		return fmt.Errorf("snapshot: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = pg.Exec(context.Background(), "ROLLBACK").Close()
		}
	}()
	if exported != "" {
		// The name comes from the server (e.g. 00000003-00000002-1): quote it anyway.
		if err := pg.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+strings.ReplaceAll(exported, "'", "''")+"'").Close(); err != nil {
			return fmt.Errorf("snapshot: import exported snapshot %s: %w", exported, err)
		}
	}
	var cursor cdc.SnapshotCursor
	if start != nil && start.Cursor != nil {
		cursor = *start.Cursor
	}
	for _, name := range s.cfg.Tables {
		after, read := cursor.Resume(name)
		if !read {
			continue
		}
		r := &tableRead{source: s, table: s.tables[name], out: out}
		if start != nil {
			r.marker = func(after []string, finished bool) cdc.Position {
				cursor = cursor.Advance(name, after, finished)
				return Position{LSN: start.LSN, Cursor: &cursor}.cdc()
			}
		}
		if err := r.run(ctx, after); err != nil {
			return err
		}
	}
	if err := pg.Exec(ctx, "COMMIT").Close(); err != nil {
		return fmt.Errorf("snapshot: commit: %w", err)
	}
	committed = true
	return nil
}

// tableRead reads one table of a snapshot.
type tableRead struct {
	source *Source
	table  *cdc.Table
	out    chan<- cdc.Batch
	// marker, if set, gives the position that stores the snapshot's progress
	// after a chunk that ends with key after, or after the whole table.
	marker func(after []string, finished bool) cdc.Position
}

// run reads the table in primary-key order, a chunk per COPY (the fastest way
// out of PostgreSQL, in the same text forms logical replication uses), after
// the key given. Memory stays at one batch: the parser blocks on the channel,
// and the server waits for it. A table without a primary key is read in one
// COPY, and an interrupted snapshot reads it whole again.
func (r *tableRead) run(ctx context.Context, after []string) error {
	s, t := r.source, r.table
	started := time.Now()
	estimate, err := estimateRows(ctx, s.conn, t.Name)
	if err != nil {
		return fmt.Errorf("snapshot of %s: %w", t.Name, err)
	}
	s.progress.Start(t.Name, estimate)
	s.log.Info("snapshot of table started", "table", t.Name.String(), "estimated_rows", estimate, "resumed_after_key", after)
	if len(t.PrimaryKey) == 0 {
		s.log.Info("snapshot of a table without a primary key: one query, read whole again if interrupted", "table", t.Name.String())
	}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	from := pgx.Identifier{t.Name.Schema, t.Name.Name}.Sanitize()
	key := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		key[i] = cols[k]
	}

	batch := make([]cdc.Change, 0, s.cfg.BatchSize)
	send := func(pos cdc.Position) error {
		if len(batch) == 0 && pos == "" {
			return nil
		}
		select {
		case r.out <- cdc.Batch{Changes: batch, Position: pos, StoreNow: pos != ""}:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.progress.Add(t.Name, len(batch), s.log)
		batch = make([]cdc.Change, 0, s.cfg.BatchSize)
		return nil
	}
	lastKey := make([][]byte, len(t.PrimaryKey))
	parser := &copyParser{columns: len(t.Columns)}
	parser.onRow = func(fields [][]byte) error {
		values, err := decodeFields(t, fields, &parser.arena)
		if err != nil {
			return fmt.Errorf("snapshot of %s, %w", t.Name, err)
		}
		for i, k := range t.PrimaryKey {
			lastKey[i] = append(lastKey[i][:0], fields[k]...)
		}
		batch = append(batch, cdc.Change{Table: t, Op: cdc.OpRead, After: values})
		if len(batch) == cap(batch) {
			return send("")
		}
		return nil
	}
	rows := 0
	for {
		query := "SELECT " + strings.Join(cols, ", ") + " FROM " + from
		if len(key) > 0 {
			if after != nil {
				query += " WHERE (" + strings.Join(key, ", ") + ") > (" + keyLiterals(t, after) + ")"
			}
			query += " ORDER BY " + strings.Join(key, ", ") + " LIMIT " + strconv.Itoa(s.cfg.ChunkSize)
		}
		tag, err := s.conn.PgConn().CopyTo(ctx, parser, "COPY ("+query+") TO STDOUT")
		if err != nil {
			return fmt.Errorf("snapshot of %s: %w", t.Name, err)
		}
		read := int(tag.RowsAffected())
		rows += read
		finished := len(key) == 0 || read < s.cfg.ChunkSize
		if !finished {
			after = after[:0:0]
			for _, k := range lastKey {
				after = append(after, string(k))
			}
		}
		var marker cdc.Position
		if r.marker != nil {
			marker = r.marker(after, finished)
		}
		if err := send(marker); err != nil {
			return err
		}
		if finished {
			break
		}
	}
	s.progress.Finish(t.Name)
	s.log.Info("snapshot of table finished", "table", t.Name.String(), "rows", rows, "seconds", time.Since(started).Seconds())
	return nil
}

// keyLiterals writes key values, in their text forms, as literals of their
// columns' types: compared with the key columns, they use the same operators
// and collation as ORDER BY does.
func keyLiterals(t *cdc.Table, values []string) string {
	literals := make([]string, len(values))
	for i, v := range values {
		c := t.Columns[t.PrimaryKey[i]]
		// An E'' string means the same whatever standard_conforming_strings says.
		literals[i] = "E'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(v) + "'::" + c.DatabaseType
	}
	return strings.Join(literals, ", ")
}

// SnapshotProgress implements cdc.ProgressReporter.
func (s *Source) SnapshotProgress() []cdc.TableProgress { return s.progress.Tables() }

// decodeFields decodes a row of COPY fields (nil is NULL).
func decodeFields(t *cdc.Table, fields [][]byte, arena *cdc.Arena) ([]cdc.Value, error) {
	values := arena.Row(len(fields))
	for i, f := range fields {
		if f == nil {
			continue // the zero Value is NULL
		}
		v, err := decodeText(t.Columns[i].Kind, t.Columns[i].WithTimeZone, f)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", t.Columns[i].Name, err)
		}
		values[i] = v
	}
	return values, nil
}

// ReadTables implements cdc.TableReader: the snapshot's consistent read, on a
// view of the database's own rather than a slot's.
func (s *Source) ReadTables(ctx context.Context, out chan<- cdc.Batch) error {
	return s.snapshot(ctx, "", nil, out)
}
