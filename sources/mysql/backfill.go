package mysql

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
	"github.com/cdc-dev/cdc/sources/internal/backfill"
)

// Backfill implements cdc.Backfiller.
func (s *Source) Backfill(b cdc.Backfill) error {
	if err := s.checkBackfill(b); err != nil {
		return err
	}
	s.fill = backfill.Resume(s.fill, &b)
	return nil
}

func (s *Source) checkBackfill(b cdc.Backfill) error {
	for _, t := range b.Tables {
		if !slices.Contains(s.cfg.Tables, t) {
			return fmt.Errorf("backfill of %s: the table is not one of the connector's", t)
		}
	}
	if s.cfg.WatermarkTable == (cdc.TableName{}) {
		return fmt.Errorf("the backfill of entities %s while streaming writes watermarks into a table of cdc's own, and none is configured: set source.mysql.watermark_table (e.g. %s.cdc_watermarks); cdc creates it, or create it yourself with %s",
			strings.Join(b.Entities, ", "), s.cfg.Tables[0].Schema, watermarkTableDDL(cdc.TableName{Schema: s.cfg.Tables[0].Schema, Name: "cdc_watermarks"}))
	}
	return nil
}

func watermarkTableDDL(t cdc.TableName) string {
	return "CREATE TABLE IF NOT EXISTS " + quoteTable(t) + " (connector VARCHAR(64) NOT NULL PRIMARY KEY, mark TEXT NOT NULL) ENGINE=InnoDB"
}

// resumeBackfill gives pos the backfill to go on with (see backfill.Resume).
func (s *Source) resumeBackfill(pos Position) Position {
	pos.Backfill = backfill.Resume(pos.Backfill, s.fill)
	return pos
}

// backfillDB is a backfill's connection (see backfill.Database). Its
// watermarks are rows of the watermark table, keyed by the connector. Both
// servers make a transaction visible in binlog order (MySQL:
// binlog_order_commits), so a read that starts after the low watermark's
// commit sees every transaction logged before it.
type backfillDB struct {
	s    *Source
	conn *client.Conn
}

// openBackfill opens the connection of a backfill's reader.
func (s *Source) openBackfill(ctx context.Context) (backfill.Database[*described], error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	setup := []string{"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", watermarkTableDDL(s.cfg.WatermarkTable)}
	if !s.mariadb {
		if order, err := s.variable("binlog_order_commits"); err != nil || order != "ON" {
			conn.Close()
			return nil, fmt.Errorf("the backfill needs binlog_order_commits = ON (the default), so that a transaction is visible only after those logged before it; the server says %q (%v)", order, err)
		}
	}
	for _, stmt := range setup {
		if _, err := conn.Execute(stmt); err != nil {
			conn.Close()
			return nil, fmt.Errorf("backfill setup (%s): %w; a DBA can create the watermark table with: %s", stmt, err, watermarkTableDDL(s.cfg.WatermarkTable))
		}
	}
	return &backfillDB{s: s, conn: conn}, nil
}

func (db *backfillDB) Close() { db.conn.Close() }

func (db *backfillDB) Watermark(_ context.Context, mark string) error {
	if _, err := db.conn.Execute(watermarkInsert(db.s.cfg.WatermarkTable), db.s.cfg.Name, mark); err != nil {
		return fmt.Errorf("into %s: %w", db.s.cfg.WatermarkTable, err)
	}
	return nil
}

// AwaitVisible has nothing to wait for: the binlog's order is the order
// transactions become visible in.
func (db *backfillDB) AwaitVisible(context.Context) error { return nil }

func (db *backfillDB) Estimate(_ context.Context, table cdc.TableName) (int64, error) {
	estimate, _, err := estimateRows(db.conn, table)
	return int64(estimate), err
}

// Read reads a chunk after the key given, through the primary key.
func (db *backfillDB) Read(_ context.Context, d *described, after []string, limit int) ([]cdc.Change, []string, error) {
	q := db.s.newTableQuery(d, d.table.PrimaryKey)
	if len(q.key) == 0 {
		return nil, nil, fmt.Errorf("the table has no primary key that compares as a literal, so it cannot be read in chunks while streaming; add one, or snapshot it with a new connector")
	}
	query, err := q.chunk(after, nil, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("after key %q: %w", after, err)
	}
	var arena memory.Arena // this chunk's values only
	var rows []cdc.Change
	last, err := q.read(db.conn, query, &arena, func(values []cdc.Value) error {
		rows = append(rows, cdc.Change{Table: d.table, Op: cdc.OpRead, After: values})
		return nil
	})
	return rows, last, err
}

// watermark handles a row of the watermark table. At the high watermark the
// chunk is sent, less the rows whose keys changed in the window (the stream
// already sent their newer values), and the backfill's progress goes with it.
func (st *streamer) watermark(ctx context.Context, connector, mark string) error {
	if connector != st.s.cfg.Name {
		return nil // another connector's
	}
	if asked, ok := strings.CutPrefix(mark, signalPrefix); ok {
		return st.signal(ctx, asked)
	}
	sending, err := st.backfill.Watermark(ctx, mark)
	if sending == nil || err != nil {
		return err
	}
	st.committed.Backfill = st.backfill.Fill
	// Sent at the boundary before the high watermark's transaction: a restart
	// from there reads that transaction again, whose watermark it ignores.
	if len(st.batch) > 0 {
		if err := st.send(ctx, st.txnStart, false); err != nil {
			return err
		}
	}
	at := st.txnStart
	at.Row, at.Backfill = 0, &sending.Fill
	st.batch = sending.Rows
	if err := st.send(ctx, at, false); err != nil {
		return err
	}
	st.backfill.Sent(sending)
	return nil
}

// signalPrefix starts the mark of a watermark-table row by which cdc snapshot
// --online asks the running daemon for a backfill.
const signalPrefix = "signal:"

// signal handles a backfill asked for by cdc snapshot --online: it is added
// to the one under way, or starts one. Its place in the binlog orders it: a
// restart from before it meets it again.
func (st *streamer) signal(ctx context.Context, text string) error {
	err := st.backfill.Signal(ctx, text, st.txnStart.String())
	st.committed.Backfill = st.backfill.Fill
	return err
}

// Signal implements cdc.Signaler: a row written into the watermark table,
// which the running daemon's stream meets in binlog order.
func (s *Source) Signal(ctx context.Context, b cdc.Backfill) error {
	if err := s.checkBackfill(b); err != nil {
		return err
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Execute(watermarkTableDDL(s.cfg.WatermarkTable)); err != nil {
		return fmt.Errorf("create the watermark table: %w; a DBA can create it with: %s", err, watermarkTableDDL(s.cfg.WatermarkTable))
	}
	if _, err := conn.Execute(watermarkInsert(s.cfg.WatermarkTable), s.cfg.Name, signalPrefix+b.String()); err != nil {
		return fmt.Errorf("write the backfill signal into %s: %w", s.cfg.WatermarkTable, err)
	}
	return nil
}

func watermarkInsert(t cdc.TableName) string {
	return "INSERT INTO " + quoteTable(t) + " (connector, mark) VALUES (?, ?) ON DUPLICATE KEY UPDATE mark = VALUES(mark)"
}

// text reads a string column of a binlog row.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return fmt.Sprint(v)
}
