package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
	"github.com/cdc-dev/cdc/sources/internal/backfill"
)

// BackfillMessagePrefix is the prefix of the logical messages that open and
// close a backfill chunk's window in the WAL.
const BackfillMessagePrefix = "cdc.backfill"

// Backfill implements cdc.Backfiller.
func (s *Source) Backfill(b cdc.Backfill) error {
	if err := s.checkBackfill(b); err != nil {
		return err
	}
	s.fill = backfill.Resume(s.fill, &b)
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

// backfillDB is a backfill's connection (see backfill.Database): watermarks
// are transactional logical messages, prefixed with the slot so that
// connectors on one database do not take each other's.
type backfillDB struct {
	s    *Source
	conn *pgx.Conn
}

// openBackfill opens the connection of a backfill's reader.
func (s *Source) openBackfill(ctx context.Context) (backfill.Database[*cdc.Table], error) {
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
	return &backfillDB{s: s, conn: conn}, nil
}

func (db *backfillDB) Close() { db.conn.Close(context.Background()) }

// Watermark writes a transactional logical message: it reaches the stream at
// its commit, in commit order with the changes around it, and the commit
// flushes it at once.
func (db *backfillDB) Watermark(ctx context.Context, mark string) error {
	_, err := db.conn.Exec(ctx, `SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)`, BackfillMessagePrefix, db.s.cfg.Slot+":"+mark)
	return err
}

// AwaitVisible waits until every transaction running after the low
// watermark has ended. A transaction that committed just before the watermark
// may not be visible yet (its commit is logged before it leaves the list of
// running transactions); the chunk's read must see it, or it would send an
// older value after the newer one already streamed.
func (db *backfillDB) AwaitVisible(ctx context.Context) error {
	var running string
	if err := db.conn.QueryRow(ctx, `SELECT pg_catalog.pg_current_snapshot()::text`).Scan(&running); err != nil {
		return fmt.Errorf("read the running transactions: %w", err)
	}
	started, warned := time.Now(), time.Now()
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		var left int
		var xids string
		err := db.conn.QueryRow(ctx, `SELECT count(*), coalesce(string_agg(x::text, ','), '')
			FROM pg_catalog.pg_snapshot_xip($1::pg_snapshot) x
			WHERE NOT pg_catalog.pg_visible_in_snapshot(x, pg_catalog.pg_current_snapshot())`, running).Scan(&left, &xids)
		if err != nil {
			return fmt.Errorf("wait for running transactions: %w", err)
		}
		if left == 0 {
			return nil
		}
		if time.Since(warned) > 30*time.Second {
			warned = time.Now()
			db.s.log.Warn("the backfill waits for transactions that were running when its chunk began; it goes on when they end",
				"transactions", xids, "waiting_seconds", int(time.Since(started).Seconds()))
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (db *backfillDB) Estimate(ctx context.Context, table cdc.TableName) (int64, error) {
	return estimateRows(ctx, db.conn, table)
}

// Read reads a chunk after the key given, as the table is now.
func (db *backfillDB) Read(ctx context.Context, t *cdc.Table, after []string, limit int) ([]cdc.Change, []string, error) {
	if len(t.PrimaryKey) == 0 {
		return nil, nil, fmt.Errorf("the table has no primary key, so it cannot be read in chunks while streaming; add one, or snapshot it with a new connector")
	}
	query := chunkQuery(t, t.PrimaryKey, after, nil, limit)
	parser := &copyParser{columns: len(t.Columns), arena: new(memory.Arena)} // this chunk's values only, never reused
	var rows []cdc.Change
	var last [][]byte
	parser.onRow = func(fields [][]byte) error {
		values, err := decodeFields(t, fields, parser.arena)
		if err != nil {
			return err
		}
		rows = append(rows, cdc.Change{Table: t, Op: cdc.OpRead, After: values})
		last = fields
		return nil
	}
	if _, err := db.conn.PgConn().CopyTo(ctx, parser, "COPY ("+query+") TO STDOUT"); err != nil {
		return nil, nil, err
	}
	var key []string
	if last != nil {
		for _, k := range t.PrimaryKey {
			key = append(key, string(last[k])) // in the arena, which the parser no longer writes
		}
	}
	return rows, key, nil
}

// watermark handles a backfill's logical message. At the high watermark the
// chunk is sent, less the rows whose keys changed in the window (the stream
// already sent their newer values), and the backfill's progress goes with it.
func (st *streamer) watermark(ctx context.Context, m *pglogrepl.LogicalDecodingMessage) error {
	mark, ours := strings.CutPrefix(string(m.Content), st.s.cfg.Slot+":")
	if !ours {
		return nil // another connector's
	}
	sending, err := st.backfill.Watermark(ctx, mark)
	if sending == nil || err != nil {
		return err
	}
	if err := st.flush(ctx); err != nil {
		return err
	}
	if err := st.emit(ctx, cdc.Batch{Changes: sending.Rows, Position: Position{LSN: st.txn.LSN, Backfill: &sending.Fill}.cdc(), StoreNow: true, InTransaction: st.inTxn}); err != nil {
		return err
	}
	st.backfill.Sent(sending)
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
	return st.backfill.Signal(ctx, text, st.txn.String())
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
