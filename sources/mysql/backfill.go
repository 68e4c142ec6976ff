package mysql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/cdc-dev/cdc"
)

// Backfill implements cdc.Backfiller.
func (s *Source) Backfill(b cdc.Backfill) error {
	if err := s.checkBackfill(b); err != nil {
		return err
	}
	s.fill = cdc.ResumeBackfill(s.fill, &b)
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

// resumeBackfill gives pos the backfill to go on with (see cdc.ResumeBackfill).
func (s *Source) resumeBackfill(pos Position) Position {
	pos.Backfill = cdc.ResumeBackfill(pos.Backfill, s.fill)
	return pos
}

// backfillReader reads a backfill's chunks beside the stream: for each, it
// writes a low watermark row, reads the chunk, hands it to the stream and
// writes a high watermark row. Both servers make a transaction visible in
// binlog order (MySQL: binlog_order_commits), so a read that starts after the
// low watermark's commit sees every transaction logged before it. The stream
// drops from the chunk the keys changed between the two watermarks and sends
// the rest at the high one (see streamer.watermark).
type backfillReader struct {
	s       *Source
	conn    *client.Conn
	token   string // tells this run's watermarks from an earlier run's
	chunks  chan *cdc.BackfillChunk
	emitted chan cdc.Backfill
}

func (s *Source) startBackfill(ctx context.Context, fill cdc.Backfill) (*backfillReader, error) {
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
	token := make([]byte, 6)
	_, _ = rand.Read(token)
	s.log.Info("backfill started: its tables are read in chunks while streaming goes on",
		"entities", strings.Join(fill.Entities, ","), "tables", len(fill.Tables), "resumed", fill.Cursor.String(), "watermark_table", s.cfg.WatermarkTable.String())
	return &backfillReader{s: s, conn: conn, token: hex.EncodeToString(token), chunks: make(chan *cdc.BackfillChunk, 1), emitted: make(chan cdc.Backfill, 1)}, nil
}

// watermarkMark names the token and the chunk; the row's key is the connector.
func (r *backfillReader) watermarkMark(n int, kind string) string {
	return r.token + ":" + strconv.Itoa(n) + ":" + kind
}

func (r *backfillReader) run(ctx context.Context, fill cdc.Backfill) error {
	defer r.conn.Close()
	var reading cdc.TableName
	var q *tableQuery
	for n := 1; ; n++ {
		name, after, ok := fill.Next()
		if !ok {
			return nil
		}
		d := r.s.tables[name]
		if name != reading {
			reading, q = name, r.s.newTableQuery(d, d.table.PrimaryKey)
			if len(q.key) == 0 {
				return fmt.Errorf("backfill of %s: the table has no primary key that compares as a literal, so it cannot be read in chunks while streaming; add one, or snapshot it with a new connector", name)
			}
			estimate, _, err := estimateRows(r.conn, name)
			if err != nil {
				return fmt.Errorf("backfill of %s: %w", name, err)
			}
			r.s.progress.Start(name, int64(estimate))
			r.s.log.Info("backfill of table started", "table", name.String(), "estimated_rows", estimate, "resumed_after_key", after)
		}
		c := &cdc.BackfillChunk{ID: r.watermarkMark(n, ""), Table: d.table}
		if err := r.watermark(n, "low"); err != nil {
			return err
		}
		query, err := q.chunk(after, nil, r.s.cfg.BackfillChunkSize)
		if err != nil {
			return fmt.Errorf("backfill of %s, after key %q: %w", name, after, err)
		}
		var arena cdc.Arena // this chunk's values only
		c.After, err = q.read(r.conn, query, &arena, func(values []cdc.Value) error {
			c.Rows = append(c.Rows, cdc.Change{Table: d.table, Op: cdc.OpRead, After: values})
			return nil
		})
		if err != nil {
			return fmt.Errorf("backfill of %s: %w", name, err)
		}
		if c.Finished = len(c.Rows) < r.s.cfg.BackfillChunkSize; c.Finished {
			c.After = nil
		}
		select {
		case r.chunks <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := r.watermark(n, "high"); err != nil {
			return err
		}
		select {
		case fill = <-r.emitted:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *backfillReader) watermark(n int, kind string) error {
	if _, err := r.conn.Execute(watermarkInsert(r.s.cfg.WatermarkTable), r.s.cfg.Name, r.watermarkMark(n, kind)); err != nil {
		return fmt.Errorf("backfill: write the %s watermark into %s: %w", kind, r.s.cfg.WatermarkTable, err)
	}
	return nil
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
	cut := strings.LastIndexByte(mark, ':')
	if st.reader == nil || cut < 0 || !strings.HasPrefix(mark, st.reader.token+":") {
		return nil // an earlier run's
	}
	id, kind := mark[:cut+1], mark[cut+1:]
	switch kind {
	case "low":
		st.backfill.Low(id)
		return nil
	case "high":
	default:
		return nil
	}
	var c *cdc.BackfillChunk
	select {
	case c = <-st.reader.chunks:
	case <-ctx.Done():
		return ctx.Err()
	}
	rows, fill, err := st.backfill.High(id, c)
	if err != nil {
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
	at.Row, at.Backfill = 0, &fill
	st.batch = rows
	if err := st.send(ctx, at, false); err != nil {
		return err
	}
	st.s.progress.BackfillChunkSent(c, len(rows), fill, st.s.log)
	st.reader.emitted <- fill
	if st.backfill.Fill == nil {
		st.reader = nil // it ends with this chunk
	}
	return nil
}

// startReader starts the reader of the backfill under way.
func (st *streamer) startReader(ctx context.Context) error {
	r, err := st.s.startBackfill(ctx, *st.backfill.Fill)
	if err != nil {
		return err
	}
	st.reader = r
	go func(fill cdc.Backfill) {
		if err := r.run(ctx, fill); err != nil {
			st.stopOnError(err)
		}
	}(*st.backfill.Fill)
	return nil
}

// signalPrefix starts the mark of a watermark-table row by which cdc snapshot
// --online asks the running daemon for a backfill.
const signalPrefix = "signal:"

// signal handles a backfill asked for by cdc snapshot --online: it is added
// to the one under way, or starts one. Its place in the binlog orders it: a
// restart from before it meets it again.
func (st *streamer) signal(ctx context.Context, text string) error {
	asked, err := cdc.ParseBackfill(text)
	if err == nil {
		err = st.s.checkBackfill(asked)
	}
	if err != nil {
		st.s.log.Error("ignored a backfill signal", "signal", text, "at", st.txnStart.String(), "err", err)
		return nil
	}
	st.s.log.Info("backfill asked by a signal", "entities", strings.Join(asked.Entities, ","), "at", st.txnStart.String())
	starts := st.backfill.Ask(asked)
	st.committed.Backfill = st.backfill.Fill
	if !starts {
		return nil // the reader takes it with its next chunk
	}
	return st.startReader(ctx)
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
