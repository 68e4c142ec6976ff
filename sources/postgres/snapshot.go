package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdc-dev/cdc"
)

// snapshot reads every mapped table in one repeatable-read transaction, on the
// exported snapshot when one is given, and sends each row as a read change.
// Rows carry no position: the end-of-snapshot marker that follows them does.
func (s *Source) snapshot(ctx context.Context, exported string, out chan<- cdc.Batch) error {
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
	for _, name := range s.cfg.Tables {
		if err := s.copyTable(ctx, s.tables[name], out); err != nil {
			return err
		}
	}
	if err := pg.Exec(ctx, "COMMIT").Close(); err != nil {
		return fmt.Errorf("snapshot: commit: %w", err)
	}
	committed = true
	return nil
}

// copyTable streams one table with COPY: the fastest way out of PostgreSQL, in the
// same text forms logical replication uses. Memory stays at one batch: the
// parser blocks on the channel, and the server waits for it.
func (s *Source) copyTable(ctx context.Context, t *cdc.Table, out chan<- cdc.Batch) error {
	started := time.Now()
	estimate, err := estimateRows(ctx, s.conn, t.Name)
	if err != nil {
		return fmt.Errorf("snapshot of %s: %w", t.Name, err)
	}
	s.progress.Start(t.Name, estimate)
	s.log.Info("snapshot of table started", "table", t.Name.String(), "estimated_rows", estimate)
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	sql := "COPY " + pgx.Identifier{t.Name.Schema, t.Name.Name}.Sanitize() + " (" + strings.Join(cols, ", ") + ") TO STDOUT"
	batch := make([]cdc.Change, 0, s.cfg.BatchSize)
	rows := 0
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		select {
		case out <- cdc.Batch{Changes: batch}:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.progress.Add(t.Name, len(batch), s.log)
		batch = make([]cdc.Change, 0, s.cfg.BatchSize)
		return nil
	}
	parser := &copyParser{columns: len(t.Columns)}
	parser.onRow = func(fields [][]byte) error {
		values, err := decodeFields(t, fields, &parser.arena)
		if err != nil {
			return fmt.Errorf("snapshot of %s, %w", t.Name, err)
		}
		batch = append(batch, cdc.Change{Table: t, Op: cdc.OpRead, After: values})
		rows++
		if len(batch) == cap(batch) {
			return send()
		}
		return nil
	}
	if _, err := s.conn.PgConn().CopyTo(ctx, parser, sql); err != nil {
		return fmt.Errorf("snapshot of %s: %w", t.Name, err)
	}
	if err := send(); err != nil {
		return err
	}
	s.progress.Finish(t.Name)
	s.log.Info("snapshot of table finished", "table", t.Name.String(), "rows", rows, "seconds", time.Since(started).Seconds())
	return nil
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
	return s.snapshot(ctx, "", out)
}
