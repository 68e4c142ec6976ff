package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdc-dev/cdc"
)

// BackfillMessagePrefix is the prefix of the logical messages that open and
// close a backfill chunk's window in the WAL.
const BackfillMessagePrefix = "cdc.backfill"

// Backfill implements cdc.Backfiller.
func (s *Source) Backfill(b cdc.Backfill) error {
	if err := s.checkBackfill(b); err != nil {
		return err
	}
	s.fill = cdc.ResumeBackfill(s.fill, &b)
	return nil
}

func (s *Source) checkBackfill(b cdc.Backfill) error {
	if s.serverVersion < 14 {
		return fmt.Errorf("the backfill of entities %s while streaming needs PostgreSQL 14 or later (logical messages in pgoutput); this server is version %d. Snapshot them into their topics with a new connector, or upgrade",
			strings.Join(b.Entities, ", "), s.serverVersion)
	}
	for _, t := range b.Tables {
		if !slices.Contains(s.cfg.Tables, t) {
			return fmt.Errorf("backfill of %s: the table is not one of the connector's", t)
		}
	}
	return nil
}

// backfillReader reads a backfill's chunks beside the stream. For each chunk it
// writes a low watermark, waits until every transaction that was running then
// has ended (one that committed before the watermark must be visible to the
// read), reads the chunk, hands it to the stream and writes the high
// watermark. The stream drops from the chunk the keys changed between the two
// watermarks and sends the rest at the high one (see streamer.watermark).
type backfillReader struct {
	s      *Source
	conn   *pgx.Conn
	tables map[cdc.TableName]*cdc.Table
	token  string // tells this run's watermarks from an earlier run's
	chunks chan *cdc.BackfillChunk
	// emitted gives the stream's progress after each chunk it sent.
	emitted chan progress
}

// progress is the backfill as the stream left it after a chunk, with the
// description of its tables: the stream owns Source.tables.
type progress struct {
	fill   cdc.Backfill
	tables map[cdc.TableName]*cdc.Table
}

// backfillTables describes the backfill's tables as the stream knows them.
func (s *Source) backfillTables(fill cdc.Backfill) map[cdc.TableName]*cdc.Table {
	tables := map[cdc.TableName]*cdc.Table{}
	for _, t := range fill.Tables {
		tables[t] = s.tables[t]
	}
	return tables
}

func (s *Source) startBackfill(ctx context.Context, fill cdc.Backfill) (*backfillReader, error) {
	cc, err := connConfig(s.cfg.DSN, s.cfg.ApplicationName+" backfill")
	if err != nil {
		return nil, err
	}
	// The walsender sends only flushed WAL: a watermark that waits for the WAL
	// writer (synchronous_commit off) would hold every chunk up to 200 ms.
	cc.RuntimeParams["synchronous_commit"] = "on"
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("open the backfill connection: %w", err)
	}
	token := make([]byte, 6)
	_, _ = rand.Read(token)
	r := &backfillReader{s: s, conn: conn, tables: s.backfillTables(fill), token: hex.EncodeToString(token), chunks: make(chan *cdc.BackfillChunk, 1), emitted: make(chan progress, 1)}
	s.log.Info("backfill started: its tables are read in chunks while streaming goes on",
		"entities", strings.Join(fill.Entities, ","), "tables", len(fill.Tables), "resumed", fill.Cursor.String())
	return r, nil
}

// watermarkContent names the slot, so that connectors on one database do not
// take each other's watermarks.
func (r *backfillReader) watermarkContent(n int, kind string) string {
	return r.s.cfg.Slot + ":" + r.token + ":" + strconv.Itoa(n) + ":" + kind
}

func (r *backfillReader) run(ctx context.Context, fill cdc.Backfill) error {
	defer r.conn.Close(context.Background())
	var reading cdc.TableName
	for n := 1; ; n++ {
		name, after, ok := fill.Next()
		if !ok {
			return nil
		}
		c := &cdc.BackfillChunk{ID: r.watermarkContent(n, ""), Table: r.tables[name]}
		if name != reading {
			reading = name
			estimate, err := estimateRows(ctx, r.conn, name)
			if err != nil {
				return fmt.Errorf("backfill of %s: %w", name, err)
			}
			r.s.progress.Start(name, estimate)
			r.s.log.Info("backfill of table started", "table", name.String(), "estimated_rows", estimate, "resumed_after_key", after)
		}
		if err := r.watermark(ctx, n, "low"); err != nil {
			return err
		}
		if err := r.awaitRunningTransactions(ctx); err != nil {
			return err
		}
		if err := r.read(ctx, c, after); err != nil {
			return err
		}
		select {
		case r.chunks <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := r.watermark(ctx, n, "high"); err != nil {
			return err
		}
		select {
		case p := <-r.emitted:
			fill, r.tables = p.fill, p.tables
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// watermark writes a transactional logical message: it reaches the stream at
// its commit, in commit order with the changes around it, and the commit
// flushes it at once.
func (r *backfillReader) watermark(ctx context.Context, n int, kind string) error {
	if _, err := r.conn.Exec(ctx, `SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)`, BackfillMessagePrefix, r.watermarkContent(n, kind)); err != nil {
		return fmt.Errorf("backfill: write the %s watermark: %w", kind, err)
	}
	return nil
}

// awaitRunningTransactions waits until every transaction running after the low
// watermark has ended. A transaction that committed just before the watermark
// may not be visible yet (its commit is logged before it leaves the list of
// running transactions); the chunk's read must see it, or it would send an
// older value after the newer one already streamed.
func (r *backfillReader) awaitRunningTransactions(ctx context.Context) error {
	var running string
	if err := r.conn.QueryRow(ctx, `SELECT pg_catalog.pg_current_snapshot()::text`).Scan(&running); err != nil {
		return fmt.Errorf("backfill: read the running transactions: %w", err)
	}
	started, warned := time.Now(), time.Now()
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		var left int
		var xids string
		err := r.conn.QueryRow(ctx, `SELECT count(*), coalesce(string_agg(x::text, ','), '')
			FROM pg_catalog.pg_snapshot_xip($1::pg_snapshot) x
			WHERE NOT pg_catalog.pg_visible_in_snapshot(x, pg_catalog.pg_current_snapshot())`, running).Scan(&left, &xids)
		if err != nil {
			return fmt.Errorf("backfill: wait for running transactions: %w", err)
		}
		if left == 0 {
			return nil
		}
		if time.Since(warned) > 30*time.Second {
			warned = time.Now()
			r.s.log.Warn("the backfill waits for transactions that were running when its chunk began; it goes on when they end",
				"transactions", xids, "waiting_seconds", int(time.Since(started).Seconds()))
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// read reads the chunk after the key given, as the table is now.
func (r *backfillReader) read(ctx context.Context, c *cdc.BackfillChunk, after []string) error {
	t := c.Table
	if len(t.PrimaryKey) == 0 {
		return fmt.Errorf("backfill of %s: the table has no primary key, so it cannot be read in chunks while streaming; add one, or snapshot it with a new connector", t.Name)
	}
	limit := r.s.cfg.BackfillChunkSize
	query := chunkQuery(t, t.PrimaryKey, after, nil, limit)

	parser := &copyParser{columns: len(t.Columns), arena: new(cdc.Arena)} // this chunk's values only, never reused
	var last [][]byte
	parser.onRow = func(fields [][]byte) error {
		values, err := decodeFields(t, fields, parser.arena)
		if err != nil {
			return fmt.Errorf("backfill of %s, %w", t.Name, err)
		}
		c.Rows = append(c.Rows, cdc.Change{Table: t, Op: cdc.OpRead, After: values})
		last = fields
		return nil
	}
	if _, err := r.conn.PgConn().CopyTo(ctx, parser, "COPY ("+query+") TO STDOUT"); err != nil {
		return fmt.Errorf("backfill of %s: %w", t.Name, err)
	}
	if c.Finished = len(c.Rows) < limit; !c.Finished {
		for _, k := range t.PrimaryKey {
			c.After = append(c.After, string(last[k])) // in the arena, which the parser no longer writes
		}
	}
	return nil
}

// watermark handles a backfill's logical message. At the high watermark the
// chunk is sent, less the rows whose keys changed in the window (the stream
// already sent their newer values), and the backfill's progress goes with it.
func (st *streamer) watermark(ctx context.Context, m *pglogrepl.LogicalDecodingMessage) error {
	content := string(m.Content)
	cut := strings.LastIndexByte(content, ':')
	if st.reader == nil || cut < 0 || !strings.HasPrefix(content, st.s.cfg.Slot+":"+st.reader.token+":") {
		return nil // another connector's, or an earlier run's
	}
	id, kind := content[:cut+1], content[cut+1:]
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
	if err := st.flush(ctx); err != nil {
		return err
	}
	if err := st.emit(ctx, cdc.Batch{Changes: rows, Position: Position{LSN: st.txn.LSN, Backfill: &fill}.cdc(), StoreNow: true}); err != nil {
		return err
	}
	st.s.progress.BackfillChunkSent(c, len(rows), fill, st.s.log)
	st.reader.emitted <- progress{fill: fill, tables: st.s.backfillTables(fill)}
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

// signal handles a backfill asked for by cdc snapshot --online: it is added
// to the one under way, or starts one. Its position in the stream orders it:
// a restart from before it meets it again.
func (st *streamer) signal(ctx context.Context, m *pglogrepl.LogicalDecodingMessage) error {
	slot, text, ok := strings.Cut(string(m.Content), ":")
	if !ok || slot != st.s.cfg.Slot || !st.txn.after(st.from) {
		return nil // another connector's, or one an earlier run took
	}
	asked, err := cdc.ParseBackfill(text)
	if err == nil {
		err = st.s.checkBackfill(asked)
	}
	if err != nil {
		st.s.log.Error("ignored a backfill signal", "signal", text, "at", st.txn.String(), "err", err)
		return nil
	}
	st.s.log.Info("backfill asked by a signal", "entities", strings.Join(asked.Entities, ","), "at", st.txn.String())
	if !st.backfill.Ask(asked) {
		return nil // the reader takes it with its next chunk
	}
	return st.startReader(ctx)
}

// SignalMessagePrefix is the prefix of the logical messages by which cdc
// snapshot --online asks the running daemon for a backfill.
const SignalMessagePrefix = "cdc.signal"

// Signal implements cdc.Signaler: a transactional logical message, which the
// running daemon's stream meets in commit order.
func (s *Source) Signal(ctx context.Context, b cdc.Backfill) error {
	if err := s.checkBackfill(b); err != nil {
		return err
	}
	var slots int
	if err := s.conn.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, s.cfg.Slot).Scan(&slots); err != nil {
		return fmt.Errorf("look for replication slot %s: %w", s.cfg.Slot, err)
	}
	if slots == 0 {
		return fmt.Errorf("replication slot %s does not exist: the connector has not started, and would not see the request; start cdc run, whose first snapshot fills every entity", s.cfg.Slot)
	}
	if _, err := s.conn.Exec(ctx, `SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)`, SignalMessagePrefix, s.cfg.Slot+":"+b.String()); err != nil {
		return fmt.Errorf("write the backfill signal: %w", err)
	}
	return nil
}
