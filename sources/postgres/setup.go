package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdc-dev/cdc"
)

// Check verifies what the source needs from the server: logical WAL, a role that
// may replicate and read the tables, a REPLICA IDENTITY that logs an old key
// on every table (and on every partition of a partitioned one), and a
// publication, if there is one already, that publishes everything cdc must
// see. It reports every problem with the statement that fixes it.
//
// Under an identity other than FULL, the old row of an update or delete holds
// only the identity's columns, and an update's new row lacks the TOASTed
// values it left alone: the stream reads those back by primary key (see
// rereader), so a table needs one.
//
// Its errors are classified (see classify): a restart of the connector after a
// transient failure checks again, and the server may be restarting still.
func (s *Source) Check(ctx context.Context) error {
	return classify(s.check(ctx))
}

func (s *Source) check(ctx context.Context) error {
	var errs []error
	if s.serverVersion < 11 {
		errs = append(errs, &cdc.Problem{What: fmt.Sprintf("PostgreSQL %d does not publish TRUNCATE, so a truncated table would go unnoticed", s.serverVersion), Fix: "upgrade: cdc needs PostgreSQL 11 or later"})
	}
	if s.serverVersion < 14 && len(s.cfg.MessagePrefixes) > 0 {
		errs = append(errs, &cdc.Problem{What: fmt.Sprintf("PostgreSQL %d does not send logical messages to a pgoutput slot, so the outbox routes of messages (%s) would receive nothing", s.serverVersion, strings.Join(s.cfg.MessagePrefixes, ", ")),
			Fix: "upgrade to PostgreSQL 14 or later, or write the events into an outbox table"})
	}
	var walLevel string
	if err := s.conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return fmt.Errorf("read wal_level: %w", err)
	}
	if walLevel != "logical" {
		errs = append(errs, &cdc.Problem{What: "wal_level is " + walLevel, Fix: "set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL"})
	}
	var user string
	var canReplicate bool
	if err := s.conn.QueryRow(ctx, `SELECT current_user, rolreplication OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user`).
		Scan(&user, &canReplicate); err != nil {
		return fmt.Errorf("read role of current user: %w", err)
	}
	if !canReplicate {
		errs = append(errs, &cdc.Problem{What: fmt.Sprintf("role %s may not replicate", user), Fix: fmt.Sprintf("ALTER ROLE %s WITH REPLICATION", pgx.Identifier{user}.Sanitize())})
	}
	described := map[cdc.TableName]relation{}
	for _, name := range s.cfg.Tables {
		ident := pgx.Identifier{name.Schema, name.Name}.Sanitize()
		t, rel, err := s.describe(ctx, s.conn, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		described[name] = rel
		var canSelect bool
		if err := s.conn.QueryRow(ctx, `SELECT has_table_privilege($1::oid, 'SELECT')`, rel.oid).Scan(&canSelect); err != nil {
			return fmt.Errorf("check privileges on %s: %w", name, err)
		}
		if !canSelect {
			errs = append(errs, &cdc.Problem{What: fmt.Sprintf("role %s cannot read %s", user, name), Fix: fmt.Sprintf("GRANT SELECT ON %s TO %s", ident, pgx.Identifier{user}.Sanitize())})
		}
		if err := identityProblem("table "+name.String(), ident, rel.replicaIdentity, t); err != nil {
			errs = append(errs, err)
		}
		if !rel.partitioned {
			continue
		}
		if s.serverVersion < 13 {
			errs = append(errs, &cdc.Problem{What: fmt.Sprintf("table %s is partitioned, and PostgreSQL %d cannot publish a partitioned table as one (13 and later can, with publish_via_partition_root)", name, s.serverVersion),
				Fix: "map its partitions as tables of their own, or upgrade"})
			continue
		}
		leaves, err := s.leafPartitions(ctx, s.conn, rel.oid)
		if err != nil {
			return err
		}
		for _, leaf := range leaves {
			if err := identityProblem(fmt.Sprintf("partition %s of %s", leaf.name, name), pgx.Identifier{leaf.name.Schema, leaf.name.Name}.Sanitize(), leaf.replicaIdentity, t); err != nil {
				errs = append(errs, err)
			}
		}
	}
	problems, err := s.publicationProblems(ctx, described)
	if err != nil {
		return err
	}
	return errors.Join(append(errs, problems...)...)
}

// identityProblem is what cdc cannot serve in a table's (or partition's)
// REPLICA IDENTITY: NOTHING logs no old key at all; any identity but FULL
// needs a primary key, by which values the log lacks are read back.
func identityProblem(of, ident string, identity byte, t *cdc.Table) error {
	switch {
	case identity == 'n':
		return &cdc.Problem{What: of + " has REPLICA IDENTITY NOTHING: its updates and deletes are logged without the key of the row they change",
			Fix: fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY DEFAULT (the primary key) or FULL", ident)}
	case identity != 'f' && len(t.PrimaryKey) == 0:
		return &cdc.Problem{What: fmt.Sprintf("%s has REPLICA IDENTITY %s and no primary key: the log leaves out large values an update did not change, and cdc reads them back by primary key", of, identityName(identity)),
			Fix: fmt.Sprintf("add a primary key, or ALTER TABLE %s REPLICA IDENTITY FULL", ident)}
	}
	return nil
}

func identityName(b byte) string {
	switch b {
	case 'd':
		return "DEFAULT"
	case 'n':
		return "NOTHING"
	case 'i':
		return "USING INDEX"
	case 'f':
		return "FULL"
	}
	return string(b)
}

func tableList(tables []cdc.TableName) string {
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = pgx.Identifier{t.Schema, t.Name}.Sanitize()
	}
	return strings.Join(parts, ", ")
}

// slotState is the replication slot as pg_replication_slots shows it.
type slotState struct {
	exists    bool
	plugin    string
	database  string
	confirmed pglogrepl.LSN
	walStatus string
	activePID *int32
	currentDB string
	slotType  string
}

func (s *Source) readSlot(ctx context.Context) (slotState, error) {
	st := slotState{}
	var confirmed *string
	err := s.conn.QueryRow(ctx, `SELECT coalesce(plugin, ''), slot_type, coalesce(database, ''), confirmed_flush_lsn::text,
			coalesce(wal_status, ''), active_pid, current_database()
		FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, s.cfg.Slot).
		Scan(&st.plugin, &st.slotType, &st.database, &confirmed, &st.walStatus, &st.activePID, &st.currentDB)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read replication slot %s: %w", s.cfg.Slot, err)
	}
	st.exists = true
	if confirmed != nil {
		if st.confirmed, err = pglogrepl.ParseLSN(*confirmed); err != nil {
			return st, fmt.Errorf("replication slot %s: %w", s.cfg.Slot, err)
		}
	}
	switch {
	case st.slotType != "logical" || st.plugin != "pgoutput":
		return st, fmt.Errorf("replication slot %s exists but is a %s slot with plugin %q: cdc needs a logical pgoutput slot; choose another source.postgres.slot or drop it with SELECT pg_drop_replication_slot('%s')",
			s.cfg.Slot, st.slotType, st.plugin, s.cfg.Slot)
	case st.database != st.currentDB:
		return st, fmt.Errorf("replication slot %s belongs to database %s, not %s: choose another source.postgres.slot", s.cfg.Slot, st.database, st.currentDB)
	}
	return st, nil
}

// errSlotLost says that the server removed WAL the slot still needed.
func (s *Source) errSlotLost() error {
	return fmt.Errorf("replication slot %s has lost WAL it still needed (wal_status=lost, max_slot_wal_keep_size exceeded): changes are lost to cdc; drop the slot (SELECT pg_drop_replication_slot('%s')) and delete the checkpoint (a tombstone for key %q in the checkpoint topic) to snapshot again, or set snapshot.mode: when_needed to let cdc do it",
		s.cfg.Slot, s.cfg.Slot, s.cfg.Slot)
}

// slotBusyWait is how long a slot held by another connection is waited for:
// the server notices a dead client within wal_sender_timeout (60 s by default).
const slotBusyWait = 60 * time.Second

// readFreeSlot reads the slot's state once no other connection holds it. A
// held slot is waited for up to slotBusyWait: most often it is the previous
// cdc's, whose death the server has not noticed yet.
func (s *Source) readFreeSlot(ctx context.Context) (slotState, error) {
	started := time.Now()
	for warned := false; ; warned = true {
		st, err := s.readSlot(ctx)
		if err != nil || st.activePID == nil {
			return st, err
		}
		if time.Since(started) > slotBusyWait {
			return st, fmt.Errorf("replication slot %s has been in use by server process %d for over %s: is another cdc with the same name running? Only one may read a slot",
				s.cfg.Slot, *st.activePID, slotBusyWait)
		}
		if s.cfg.TakeOverSlot {
			s.log.Warn("the replication slot is held by another connection, a previous leader's that is gone or paused (its producer is fenced): terminating it to take the slot over",
				"slot", s.cfg.Slot, "pid", *st.activePID)
			if _, err := s.conn.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend($1)`, *st.activePID); err != nil {
				return st, fmt.Errorf("terminate server process %d, which holds replication slot %s: %w; grant the role pg_signal_backend, or wait for wal_sender_timeout", *st.activePID, s.cfg.Slot, err)
			}
		} else if !warned {
			s.log.Warn("the replication slot is held by another connection; waiting for it to be released", "slot", s.cfg.Slot, "pid", *st.activePID, "up_to", slotBusyWait)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// sampleMaxRows bounds the tables whose distinct values are listed: beyond it a
// DISTINCT scan would load the database for a validation.
const sampleMaxRows = 1_000_000

var (
	_ cdc.ValueSampler = (*Source)(nil)
	_ cdc.TableReader  = (*Source)(nil)
)

// estimateRows reads the catalog's estimate of a table's rows (0 for a table
// never analyzed, whose reltuples is -1 from PostgreSQL 14 on).
func estimateRows(ctx context.Context, conn *pgx.Conn, table cdc.TableName) (int64, error) {
	var estimate float64
	ident := pgx.Identifier{table.Schema, table.Name}.Sanitize()
	if err := conn.QueryRow(ctx, `SELECT reltuples FROM pg_catalog.pg_class WHERE oid = $1::regclass`, ident).Scan(&estimate); err != nil {
		return 0, fmt.Errorf("estimate the rows of %s: %w", table, err)
	}
	return max(int64(estimate), 0), nil
}

// DistinctValues lists a column's distinct values in their text form, on tables
// of at most a million rows (by the planner's estimate), within 5 seconds.
func (s *Source) DistinctValues(ctx context.Context, table cdc.TableName, column string, limit int) ([]string, bool, error) {
	estimate, err := estimateRows(ctx, s.conn, table)
	if err != nil {
		return nil, false, err
	}
	if estimate > sampleMaxRows {
		return nil, false, nil
	}
	reset, err := s.withinFiveSeconds(ctx)
	if err != nil {
		return nil, false, err
	}
	defer reset()
	col := pgx.Identifier{column}.Sanitize()
	from := pgx.Identifier{table.Schema, table.Name}.Sanitize()
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT %s::text FROM %s WHERE %s IS NOT NULL LIMIT %d", col, from, col, limit+1))
	if err != nil {
		return nil, false, fmt.Errorf("distinct values of %s.%s: %w", table, column, err)
	}
	values, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "57014" { // query_canceled: too slow
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("distinct values of %s.%s: %w", table, column, err)
	}
	if len(values) > limit {
		return values[:limit], false, nil
	}
	return values, true, nil
}

// withinFiveSeconds bounds the time of the checking connection's next
// queries, until reset: validate must not load the database. The timeout is
// the server's: canceling the context would close the connection.
func (s *Source) withinFiveSeconds(ctx context.Context) (reset func(), err error) {
	if _, err := s.conn.Exec(ctx, "SET statement_timeout = '5s'"); err != nil {
		return nil, err
	}
	return func() {
		s.conn.Exec(context.WithoutCancel(ctx), "RESET statement_timeout") //nolint:errcheck // best effort on a checking connection
	}, nil
}

// SampleRows reads up to limit rows of a described table, within 5 seconds.
func (s *Source) SampleRows(ctx context.Context, table cdc.TableName, limit int) (*cdc.Table, [][]cdc.Value, error) {
	t := s.tables[table]
	if t == nil {
		return nil, nil, fmt.Errorf("table %s is not described", table)
	}
	reset, err := s.withinFiveSeconds(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer reset()
	columns := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		columns[i] = pgx.Identifier{c.Name}.Sanitize() + "::text"
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT %s FROM %s LIMIT %d", strings.Join(columns, ", "), pgx.Identifier{table.Schema, table.Name}.Sanitize(), limit))
	if err != nil {
		return nil, nil, fmt.Errorf("sample rows of %s: %w", table, err)
	}
	defer rows.Close()
	var out [][]cdc.Value
	for rows.Next() {
		raw := rows.RawValues()
		row := make([]cdc.Value, len(raw))
		for i, b := range raw {
			if b == nil {
				continue // NULL
			}
			v, err := decodeText(t.Columns[i].Kind, t.Columns[i].WithTimeZone, bytes.Clone(b))
			if err != nil {
				return nil, nil, fmt.Errorf("sample rows of %s: column %s: %w", table, t.Columns[i].Name, err)
			}
			row[i] = v
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("sample rows of %s: %w", table, err)
	}
	return t, out, nil
}
