package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
	"github.com/cdc-dev/cdc/sources/internal/snapshot"
)

// snapshot reads every mapped table in repeatable-read transactions on one view
// of the database (the exported snapshot when one is given), in primary-key
// chunks, and sends each row as a read change. With snapshot parallelism, the
// workers import the view from the transaction that splits the chunks.
//
// With a start, it resumes after start's cursor (from the first table when it
// has none), and each chunk is followed by a marker: start with the cursor
// after that chunk. Once the chunk is acknowledged, a restart goes on from
// there. Rows carry no position.
func (s *Source) snapshot(ctx context.Context, exported string, start *Position, out chan<- cdc.Batch) error {
	pg := s.conn.PgConn()
	if err := beginSnapshot(ctx, pg, exported); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = pg.Exec(context.Background(), "ROLLBACK").Close()
		}
	}()
	keys := s.chunkKeys()
	reader := &chunkReader{s: s, workers: []*pgx.Conn{s.conn}, keys: keys, memory: make([]memory.BatchMemory, max(s.cfg.Parallelism, 1))}
	if s.cfg.Parallelism > 1 {
		workers, err := s.openSnapshotWorkers(ctx)
		defer func() {
			for _, w := range workers {
				_ = w.Close(context.Background())
			}
		}()
		if err != nil {
			return err
		}
		reader.workers = workers
	}
	run := snapshot.Chunked{Reader: reader, Tables: s.cfg.SnapshotTables(s.cfg.Tables), ChunkSize: s.cfg.ChunkSize, Workers: len(reader.workers),
		Progress: &s.progress, Log: s.log}
	if start != nil {
		if start.Cursor != nil {
			run.Cursor = *start.Cursor
			if err := run.Cursor.CheckKey(run.Cursor.Table, len(keys[run.Cursor.Table])); err != nil {
				return err
			}
		}
		run.Marker = func(cursor cdc.SnapshotCursor) cdc.Position {
			return Position{LSN: start.LSN, Cursor: &cursor}.cdc()
		}
	}
	if err := run.Run(ctx, out); err != nil {
		return err
	}
	if err := pg.Exec(ctx, "COMMIT").Close(); err != nil {
		return fmt.Errorf("snapshot: commit: %w", err)
	}
	committed = true
	return nil
}

// beginSnapshot opens a snapshot transaction, on the exported snapshot if given.
func beginSnapshot(ctx context.Context, pg *pgconn.PgConn, exported string) error {
	if err := pg.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").Close(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if exported != "" {
		// The name comes from the server (e.g. 00000003-00000002-1): quote it anyway.
		if err := pg.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+strings.ReplaceAll(exported, "'", "''")+"'").Close(); err != nil {
			return fmt.Errorf("import exported snapshot %s: %w", exported, err)
		}
	}
	return nil
}

// openSnapshotWorkers opens the parallel snapshot's connections, each in a
// transaction that imports the view of the snapshot's own (which may itself
// have imported the slot's): every worker reads the database as of the
// slot's consistent point. On error, it returns the connections it opened.
func (s *Source) openSnapshotWorkers(ctx context.Context) ([]*pgx.Conn, error) {
	var view string
	if err := s.conn.QueryRow(ctx, "SELECT pg_catalog.pg_export_snapshot()").Scan(&view); err != nil {
		return nil, fmt.Errorf("snapshot: export the view for the parallel workers: %w", err)
	}
	cc, err := connConfig(s.cfg.DSN, s.cfg.ApplicationName)
	if err != nil {
		return nil, err
	}
	var workers []*pgx.Conn
	for range s.cfg.Parallelism {
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return workers, classify(fmt.Errorf("snapshot: open a worker connection (snapshot.parallelism %d): %w", s.cfg.Parallelism, err))
		}
		workers = append(workers, conn)
		if err := beginSnapshot(ctx, conn.PgConn(), view); err != nil {
			return workers, fmt.Errorf("snapshot worker: %w", err)
		}
	}
	s.log.Info("snapshot workers share one view", "workers", len(workers), "snapshot", view)
	return workers, nil
}

// chunkReader implements snapshot.Reader: estimates and splits on the
// snapshot's own connection, reads on the workers', each a COPY (the fastest
// way out of PostgreSQL, in the same text forms logical replication uses).
type chunkReader struct {
	s       *Source
	workers []*pgx.Conn
	keys    map[cdc.TableName][]int // the columns each table is read in the order of
	memory  []memory.BatchMemory    // each worker's batches
}

func (r *chunkReader) Estimate(ctx context.Context, table cdc.TableName) (int64, error) {
	return estimateRows(ctx, r.s.conn, table)
}

// chunkKeys gives each table the columns its chunks follow: its primary key,
// or else the columns of a unique index on NOT NULL columns, which identify
// its rows as well. A table with neither is read in one query, whole again
// after an interruption.
func (s *Source) chunkKeys() map[cdc.TableName][]int {
	keys := map[cdc.TableName][]int{}
	for _, name := range s.cfg.Tables {
		t := s.tables[name]
		switch {
		case len(t.PrimaryKey) > 0:
			keys[name] = t.PrimaryKey
		case len(t.UniqueKeys) > 0:
			keys[name] = t.UniqueKeys[0] // the smallest
			columns := make([]string, len(keys[name]))
			for i, c := range keys[name] {
				columns[i] = t.Columns[c].Name
			}
			s.log.Info("table without a primary key: read in chunks of a unique index on NOT NULL columns", "table", name.String(), "columns", columns)
		default:
			s.log.Warn("table without a primary key or a unique index on NOT NULL columns: read in one query, and whole again if the snapshot is interrupted; add either to read it in chunks",
				"table", name.String())
		}
	}
	return keys
}

// Split reads the key n rows on, through the chunk key's index.
func (r *chunkReader) Split(ctx context.Context, table cdc.TableName, after []string, n int) ([]string, error) {
	t, key := r.s.tables[table], r.keys[table]
	if len(key) == 0 {
		return nil, nil
	}
	columns := strings.Join(keyColumns(t, key), ", ")
	query := "SELECT " + columns + " FROM " + pgx.Identifier{t.Name.Schema, t.Name.Name}.Sanitize()
	if after != nil {
		query += " WHERE (" + columns + ") > (" + keyLiterals(t, key, after) + ")"
	}
	query += " ORDER BY " + columns + " OFFSET " + strconv.Itoa(n-1) + " LIMIT 1"
	// The simple protocol returns the text forms COPY writes.
	results, err := r.s.conn.PgConn().Exec(ctx, query).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(results) != 1 || len(results[0].Rows) == 0 {
		return nil, nil
	}
	upTo := make([]string, len(key))
	for i, v := range results[0].Rows[0] {
		upTo[i] = string(v)
	}
	return upTo, nil
}

// Read sends the chunk in batches: memory stays at a few batches, since the
// parser blocks on the channel and the server waits for it, and the pipeline
// releases each batch for reuse once it has mapped it.
func (r *chunkReader) Read(ctx context.Context, worker int, chunk snapshot.Chunk, limit int, out chan<- cdc.Batch) (int, []string, error) {
	s, memory := r.s, &r.memory[worker]
	t, key := s.tables[chunk.Table], r.keys[chunk.Table]
	batch := memory.Changes(s.cfg.BatchSize)
	parser := &copyParser{columns: len(t.Columns), arena: &memory.Arena}
	var lastKey []string
	send := func() error {
		// The last row's key, as COPY wrote it, is copied out now: once
		// released, the batch's memory is reused.
		lastKey = lastKey[:0]
		for _, k := range key {
			lastKey = append(lastKey, string(parser.fields[k]))
		}
		select {
		case out <- memory.Batch(batch):
		case <-ctx.Done():
			return ctx.Err()
		}
		s.progress.Add(t.Name, len(batch), s.log)
		batch = memory.Changes(s.cfg.BatchSize)
		return nil
	}
	parser.onRow = func(fields [][]byte) error {
		values, err := decodeFields(t, fields, parser.arena)
		if err != nil {
			return fmt.Errorf("snapshot of %s, %w", t.Name, err)
		}
		batch = append(batch, cdc.Change{Table: t, Op: cdc.OpRead, After: values})
		if len(batch) == cap(batch) || memory.Full() {
			return send()
		}
		return nil
	}
	tag, err := r.workers[worker].PgConn().CopyTo(ctx, parser, "COPY ("+chunkQuery(t, key, chunk.After, chunk.UpTo, limit)+") TO STDOUT")
	if err != nil {
		return 0, nil, fmt.Errorf("snapshot of %s: %w", t.Name, err)
	}
	if len(batch) > 0 {
		if err := send(); err != nil {
			return 0, nil, err
		}
	}
	return int(tag.RowsAffected()), lastKey, nil
}

// chunkQuery selects a table's rows in the order of the key columns given,
// whose key is after after (nil: from the first) and at most upTo (nil: to the
// last), at most limit of them when limit > 0. Without key columns, the table
// is selected whole.
func chunkQuery(t *cdc.Table, key []int, after, upTo []string, limit int) string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	query := "SELECT " + strings.Join(cols, ", ") + " FROM " + pgx.Identifier{t.Name.Schema, t.Name.Name}.Sanitize()
	if len(key) == 0 {
		return query
	}
	columns := "(" + strings.Join(keyColumns(t, key), ", ") + ")"
	var where []string
	if after != nil {
		where = append(where, columns+" > ("+keyLiterals(t, key, after)+")")
	}
	if upTo != nil {
		where = append(where, columns+" <= ("+keyLiterals(t, key, upTo)+")")
	}
	if where != nil {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY " + strings.Join(keyColumns(t, key), ", ")
	if limit > 0 {
		query += " LIMIT " + strconv.Itoa(limit)
	}
	return query
}

// keyColumns are the key columns' quoted names, in key order.
func keyColumns(t *cdc.Table, key []int) []string {
	names := make([]string, len(key))
	for i, k := range key {
		names[i] = pgx.Identifier{t.Columns[k].Name}.Sanitize()
	}
	return names
}

// quoteEscaped escapes text inside an escape string literal (E'...').
var quoteEscaped = strings.NewReplacer(`\`, `\\`, `'`, `''`)

// keyLiterals writes key values, in their text forms, as literals of their
// columns' types: compared with the key columns, they use the same operators
// and collation as ORDER BY does.
func keyLiterals(t *cdc.Table, key []int, values []string) string {
	literals := make([]string, len(values))
	for i, v := range values {
		c := t.Columns[key[i]]
		// An E'' string means the same whatever standard_conforming_strings says.
		literals[i] = "E'" + quoteEscaped.Replace(v) + "'::" + c.DatabaseType
	}
	return strings.Join(literals, ", ")
}

// SnapshotProgress implements cdc.ProgressReporter.
func (s *Source) SnapshotProgress() []cdc.TableProgress { return s.progress.Tables() }

// decodeFields decodes a row of COPY fields (nil is NULL).
func decodeFields(t *cdc.Table, fields [][]byte, arena *memory.Arena) ([]cdc.Value, error) {
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
