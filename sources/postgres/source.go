// Package postgres is the PostgreSQL source: a consistent snapshot of the mapped
// tables through the snapshot exported by the replication slot, then logical
// replication (pgoutput) from the slot's consistent point, so that the handoff
// has neither gap nor overlap.
//
// It must never let the slot's confirmed position pass a change that is not yet
// stored downstream: the position only moves through Acknowledge.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/sources"
	"github.com/cdc-dev/cdc/sources/internal/backfill"
	"github.com/cdc-dev/cdc/sources/internal/reread"
	"github.com/cdc-dev/cdc/sources/internal/snapshot"
)

// Defaults for Config fields left zero.
const (
	// DefaultStatusInterval is how often the slot's confirmed position is reported;
	// well inside the server's wal_sender_timeout (60 s by default).
	DefaultStatusInterval = 10 * time.Second
	// DefaultDeadAfter is how long the replication connection may stay silent
	// while cdc waits for it before it counts as lost. Every status report asks
	// the server for a reply, so a live connection is never silent for more
	// than a status interval.
	DefaultDeadAfter = 30 * time.Second
	// DefaultConnectTimeout bounds opening a connection when the DSN sets no
	// connect_timeout.
	DefaultConnectTimeout = 15 * time.Second
	// statusTimeout bounds each query on the status connection.
	statusTimeout = 10 * time.Second
)

// Config configures the source.
type Config struct {
	// DSN is a libpq connection string or postgres:// URL.
	DSN         string
	Slot        string
	Publication string
	// Tables are the mapped tables: published, snapshotted and streamed.
	Tables []cdc.TableName
	// Entities names the entities of each table, for the backfills the source
	// asks for by itself (a partition attached with rows).
	Entities       map[cdc.TableName][]string
	StatusInterval time.Duration
	// HeartbeatMessageInterval, if set, is how often a logical message
	// (pg_logical_emit_message) is written into the database's WAL. The slot
	// advances on the server's keepalives anyway; the message gives the
	// walsender something of this database to decode, for servers where other
	// databases write and this one does not.
	HeartbeatMessageInterval time.Duration
	// TakeOverSlot says this instance leads its connector's group and has
	// fenced the previous leader's producer: a connection still holding the
	// slot is that leader's (gone, or paused), and is terminated rather than
	// waited for.
	TakeOverSlot    bool
	ApplicationName string
	// Binary asks for values in binary (PostgreSQL 14 and later) when cdc
	// can decode every column of the mapped tables so (see binary.go).
	Binary bool
	// Streaming has the server send a transaction larger than its
	// logical_decoding_work_mem while it is decoded (PostgreSQL 14 and
	// later), which cdc holds until its commit (see streamed.go):
	// StreamedMemory bytes of them in memory (0: DefaultStreamedMemory), the
	// rest in files in SpillDirectory ("": the system's temporary directory).
	Streaming      bool
	StreamedMemory int64
	SpillDirectory string
	// MessagePrefixes are the prefixes of the transactional logical messages
	// passed down as changes of cdc.LogicalMessages: the routes of outbox
	// entities that read messages (PostgreSQL 14 or later).
	MessagePrefixes []string
	sources.Settings
}

// Source reads one database. It implements cdc.Source.
type Source struct {
	// readBack counts the rows read back for values the log left out
	// (cdc.ReadBackReporter).
	readBack reread.Counter
	cfg      Config
	log      *slog.Logger
	conn     *pgx.Conn // catalog, publication, snapshot
	tables   map[cdc.TableName]*cdc.Table
	// relations are the mapped tables as described: the stream knows them by
	// their OIDs, which a rename keeps and a new table of the same name lacks.
	relations map[cdc.TableName]relation
	// partitions are the leaf partitions of each mapped partitioned table, by
	// OID, as cdc knows them (see Recheck).
	catalogMu  sync.Mutex
	partitions map[cdc.TableName]map[uint32]cdc.TableName
	// storedCatalog is the catalog stored with the checkpoint Run resumes from.
	storedCatalog string
	acked         atomic.Uint64 // highest acknowledged LSN
	// held is what streamed transactions in progress hold (Held).
	held heldBytes
	// view reads aggregate entities back (see ReadView).
	view viewConn

	progress snapshot.Progress
	// serverVersion is the server's major version.
	serverVersion int
	// fill is the backfill asked for the next Run, if any.
	fill *cdc.Backfill
	// statusConn is opened on the first LogStatus or heartbeat: conn is busy
	// with the snapshot, and a status query must not wait for it.
	statusMu   sync.Mutex
	statusConn *pgx.Conn
	// open ends when Close starts: a status query under way gives up at once.
	open    context.Context
	closing context.CancelFunc
}

var _ cdc.Source = (*Source)(nil)

// sessionParams fix the text forms values arrive in: ISO dates, UTC offsets,
// hexadecimal bytea, shortest exact floats.
var sessionParams = map[string]string{
	"DateStyle": "ISO, MDY", "TimeZone": "UTC", "IntervalStyle": "postgres", "bytea_output": "hex",
	"extra_float_digits": "1", "client_encoding": "UTF8",
}

func connConfig(dsn, application string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgconn's parse errors quote the DSN, password included.
		return nil, fmt.Errorf("source.dsn is not a valid PostgreSQL connection string (postgres://user:password@host:port/database)")
	}
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	cfg.RuntimeParams["application_name"] = application
	if cfg.ConnectTimeout == 0 {
		// A server that accepts the connection and then says nothing (a stalled
		// network path) must fail the attempt, not hang it: cdc retries.
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	return cfg, nil
}

// New connects to the database.
func New(ctx context.Context, cfg Config) (*Source, error) {
	cfg.Settings = cfg.Settings.WithDefaults(DefaultDeadAfter)
	if cfg.StreamedMemory <= 0 {
		cfg.StreamedMemory = DefaultStreamedMemory
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = DefaultStatusInterval
	}
	cc, err := connConfig(cfg.DSN, cfg.ApplicationName)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, classify(fmt.Errorf("connect to PostgreSQL: %w", err))
	}
	s := &Source{cfg: cfg, log: cfg.Logger, conn: conn, tables: map[cdc.TableName]*cdc.Table{}, relations: map[cdc.TableName]relation{}}
	s.serverVersion = majorVersion(conn.PgConn().ParameterStatus("server_version"))
	s.open, s.closing = context.WithCancel(context.Background())
	return s, nil
}

// majorVersion reads the major version of a server_version such as
// "15.10 (Debian 15.10-0+deb12u1)" or "9.6.24"; 0 if there is none.
func majorVersion(v string) int {
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(v)
	}
	n, _ := strconv.Atoi(v[:end])
	return n
}

// Describe implements cdc.Source.
func (s *Source) Describe(ctx context.Context, names []cdc.TableName) ([]*cdc.Table, error) {
	tables := make([]*cdc.Table, len(names))
	for i, name := range names {
		t, rel, err := s.describe(ctx, s.conn, name)
		if err != nil {
			return nil, err
		}
		s.catalogMu.Lock() // Catalog reads relations from the pipeline's goroutine
		s.tables[name], s.relations[name] = t, rel
		s.catalogMu.Unlock()
		tables[i] = t
	}
	return tables, nil
}

// Acknowledge implements cdc.Source: the slot may release WAL before pos.
func (s *Source) Acknowledge(pos cdc.Position) {
	p, err := ParsePosition(string(pos))
	if err != nil {
		s.log.Error("ignored an acknowledgement that is not a postgres position", "position", string(pos))
		return
	}
	for {
		old := s.acked.Load()
		if uint64(p.LSN) <= old || s.acked.CompareAndSwap(old, uint64(p.LSN)) {
			return
		}
	}
}

// Close implements cdc.Source.
func (s *Source) Close() error {
	s.closing()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.statusMu.Lock()
	if s.statusConn != nil {
		_ = s.statusConn.Close(ctx)
	}
	s.statusMu.Unlock()
	s.closeView()
	return s.conn.Close(ctx)
}

// LogStatus implements cdc.LogReporter from the slot's row of
// pg_replication_slots, on a connection of its own.
func (s *Source) LogStatus(ctx context.Context) (cdc.LogStatus, error) {
	var st cdc.LogStatus
	var behind, safe *int64
	var walStatus *string
	err := s.onStatusConn(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,
		pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, wal_status, safe_wal_size
		FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, s.cfg.Slot).Scan(&st.WrittenBytes, &behind, &walStatus, &safe)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return cdc.LogStatus{}, fmt.Errorf("replication slot %s does not exist", s.cfg.Slot)
	}
	if err != nil {
		return cdc.LogStatus{}, fmt.Errorf("read the status of replication slot %s: %w", s.cfg.Slot, err)
	}
	st.SafeBytes = -1 // max_slot_wal_keep_size = -1: the slot keeps WAL without limit
	if safe != nil {
		st.SafeBytes = max(*safe, 0)
	}
	if behind == nil && walStatus == nil {
		// restart_lsn is not set yet: the slot is being created. Not lost.
		return cdc.LogStatus{}, fmt.Errorf("replication slot %s is being created", s.cfg.Slot)
	}
	if behind != nil {
		st.BehindBytes = *behind
	}
	// restart_lsn is NULL once the slot's WAL is gone.
	st.Lost = (walStatus != nil && *walStatus == "lost") || behind == nil
	return st, nil
}

// errAlreadySnapshotted refuses a snapshot-only run of a connector that has
// streamed: its topics are past the snapshot.
func errAlreadySnapshotted(from cdc.Position) error {
	return fmt.Errorf("the connector's snapshot is done and it has streamed since (stored position %s): cdc run goes on from there. To fill entities again while it streams, run cdc snapshot --online --entity NAME; to rebuild from scratch, stop cdc run, delete the checkpoint (a tombstone for the connector's key in the checkpoint topic) and the replication slot, then run cdc snapshot", from)
}

// onStatusConn runs fn on the status connection, opening it if needed, with a
// context bounded by statusTimeout and by Close; a broken connection is opened
// again on the next call.
func (s *Source) onStatusConn(ctx context.Context, fn func(context.Context, *pgx.Conn) error) error {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	// A server that does not answer within the bound is unreachable: fail
	// (pgx closes the connection) rather than hang, holding the lock Close needs.
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	defer context.AfterFunc(s.open, cancel)()
	if s.statusConn == nil || s.statusConn.IsClosed() {
		cc, err := connConfig(s.cfg.DSN, s.cfg.ApplicationName+" status")
		if err != nil {
			return err
		}
		if s.statusConn, err = pgx.ConnectConfig(ctx, cc); err != nil {
			return fmt.Errorf("connect to PostgreSQL for the slot's status: %w", err)
		}
	}
	return fn(ctx, s.statusConn)
}

// classify marks as transient the server's answers that pass by themselves:
// a connection failure reported by the server (class 08), the server shutting
// down or starting up (57P01-57P03), too many connections (53300), and the slot
// still held by a walsender that has not yet noticed its client is gone
// (55006, until wal_sender_timeout). A failure of the network path itself is
// transient already (cdc.IsTransient); any other answer needs the operator.
func classify(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch {
	case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03":
		return cdc.Restarting(err)
	case strings.HasPrefix(pgErr.Code, "08"), pgErr.Code == "53300", pgErr.Code == "55006":
		return cdc.Transient(err)
	}
	return err
}

// HeartbeatMessagePrefix is the prefix of the logical messages cdc writes.
const HeartbeatMessagePrefix = "cdc.heartbeat"

// emitHeartbeats writes a non-transactional logical message every interval
// until ctx ends. A failure is logged once per change of state: heartbeats
// are a help to the server, and streaming goes on without them.
func (s *Source) emitHeartbeats(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := s.onStatusConn(ctx, func(ctx context.Context, conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, `SELECT pg_catalog.pg_logical_emit_message(false, $1, $2)`, HeartbeatMessagePrefix, s.cfg.Slot)
			return err
		})
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			s.log.Warn("cannot write a heartbeat message; streaming goes on and the slot still advances on the server's keepalives (on a read-only standby, unset source.postgres.heartbeat_message_interval)",
				"err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("writing heartbeat messages again")
			failing = false
		}
	}
}

// Run implements cdc.Source. Its errors are classified: the server's answers
// that pass by themselves are cdc.Transient.
func (s *Source) Run(ctx context.Context, from cdc.Position, out chan<- cdc.Batch) error {
	return classify(s.run(ctx, from, out))
}

func (s *Source) run(ctx context.Context, from cdc.Position, out chan<- cdc.Batch) error {
	for _, name := range s.cfg.Tables {
		if _, ok := s.tables[name]; !ok {
			if _, err := s.Describe(ctx, []cdc.TableName{name}); err != nil {
				return err
			}
		}
	}
	if err := s.knowTables(ctx, from != ""); err != nil {
		return err
	}
	rc, err := connConfig(s.cfg.DSN, s.cfg.ApplicationName)
	if err != nil {
		return err
	}
	rc.RuntimeParams["replication"] = "database"
	repl, err := pgconn.ConnectConfig(ctx, &rc.Config)
	if err != nil {
		return fmt.Errorf("open replication connection: %w", err)
	}
	defer repl.Close(context.Background())

	if err := s.fitStatusInterval(ctx); err != nil {
		return err
	}
	start, err := s.prepare(ctx, repl, from, out)
	if err != nil {
		return err
	}
	if s.cfg.Snapshot == cdc.SnapshotOnly {
		s.log.Info("snapshot stored; streaming starts from its position on the next run", "position", start.String())
		return nil
	}
	// The slot is at or before start already; reporting start until the first
	// acknowledgement changes nothing on the server.
	s.acked.Store(uint64(start.LSN))
	if every := s.cfg.HeartbeatMessageInterval; every > 0 {
		heartbeats, stop := context.WithCancel(ctx)
		defer stop()
		go s.emitHeartbeats(heartbeats, every)
	}
	return s.stream(ctx, repl, start, out)
}

// fitStatusInterval keeps status reports well inside the server's
// wal_sender_timeout, which a DBA may have set below the default interval: a
// report that comes too late makes the server drop the connection.
func (s *Source) fitStatusInterval(ctx context.Context) error {
	var timeoutMillis int64
	if err := s.conn.QueryRow(ctx, `SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'wal_sender_timeout'`).Scan(&timeoutMillis); err != nil {
		return fmt.Errorf("read wal_sender_timeout: %w", err)
	}
	if limit := time.Duration(timeoutMillis) * time.Millisecond / 3; limit > 0 && limit < s.cfg.StatusInterval {
		s.cfg.StatusInterval = max(limit, 100*time.Millisecond)
	}
	return nil
}

// prepare decides where streaming starts, taking the snapshot first if one is due.
func (s *Source) prepare(ctx context.Context, repl *pgconn.PgConn, from cdc.Position, out chan<- cdc.Batch) (Position, error) {
	slot, err := s.readFreeSlot(ctx)
	if err != nil {
		return Position{}, err
	}
	if slot.walStatus == "lost" {
		if s.cfg.Snapshot != cdc.SnapshotWhenNeeded {
			return Position{}, s.errSlotLost()
		}
		s.log.Warn("replication slot has lost WAL it still needed (wal_status=lost): dropping it and taking a new snapshot (snapshot.mode when_needed); keys deleted meanwhile stay in the topics",
			"slot", s.cfg.Slot, "stored_position", string(from))
		if _, err := s.conn.Exec(ctx, "SELECT pg_catalog.pg_drop_replication_slot($1)", s.cfg.Slot); err != nil {
			return Position{}, fmt.Errorf("drop replication slot %s, which lost its WAL: %w", s.cfg.Slot, err)
		}
		slot, from = slotState{}, ""
	}
	// Completed on every start, before streaming: an entity added on a new
	// table would otherwise never see a change of it.
	if err := s.ensurePublication(ctx); err != nil {
		return Position{}, err
	}
	if from != "" && !slot.exists && s.cfg.Snapshot == cdc.SnapshotWhenNeeded {
		s.log.Warn("replication slot is missing, so the changes after the stored position are lost: taking a new snapshot (snapshot.mode when_needed); keys deleted meanwhile stay in the topics",
			"slot", s.cfg.Slot, "stored_position", string(from))
		from = ""
	}
	if from != "" {
		walEnd, err := s.walEnd(ctx)
		if err != nil {
			return Position{}, err
		}
		pos, err := ParsePosition(string(from))
		if err != nil {
			return Position{}, fmt.Errorf("stored checkpoint: %w", err)
		}
		ahead := pos.LSN > walEnd
		if ahead && s.cfg.Snapshot != cdc.SnapshotWhenNeeded {
			return Position{}, s.errAheadOfWAL(from, walEnd)
		}
		if ahead {
			s.log.Warn("the stored position is ahead of the database's WAL: taking a new snapshot (snapshot.mode when_needed); keys deleted meanwhile stay in the topics",
				"stored_position", string(from), "wal_end", walEnd.String())
			if slot.exists {
				if _, err := s.conn.Exec(ctx, "SELECT pg_catalog.pg_drop_replication_slot($1)", s.cfg.Slot); err != nil {
					return Position{}, fmt.Errorf("drop replication slot %s to snapshot again: %w", s.cfg.Slot, err)
				}
			}
			slot, from = slotState{}, ""
		}
	}
	if from != "" {
		pos, err := ParsePosition(string(from))
		if err != nil {
			return Position{}, fmt.Errorf("stored checkpoint: %w", err)
		}
		if !slot.exists {
			return Position{}, fmt.Errorf("replication slot %s is missing, so the changes after the stored position %s are lost to cdc: delete the checkpoint (a tombstone for key %q in the checkpoint topic) to snapshot again, or set snapshot.mode: when_needed to let cdc do it",
				s.cfg.Slot, from, s.cfg.Slot)
		}
		if slot.confirmed > pos.LSN {
			return Position{}, fmt.Errorf("replication slot %s has confirmed %s, past the stored position %s: something else consumed it, and the changes in between are lost to cdc; give each connector its own slot, and snapshot again",
				s.cfg.Slot, slot.confirmed, from)
		}
		if pos.Cursor == nil {
			if s.cfg.Snapshot == cdc.SnapshotOnly {
				return Position{}, errAlreadySnapshotted(from)
			}
			s.log.Info("resuming", "slot", s.cfg.Slot, "position", string(from))
			if s.fill == nil {
				return s.resumeBackfill(pos), nil
			}
			// Stored at once: the entities it fills are stored with it (the
			// checkpoint's entity list), so a restart knows it is under way.
			return s.mark(ctx, s.resumeBackfill(pos), out)
		}
		// The exported snapshot of the interrupted one is gone: the chunks left
		// are read as the tables are now, and streaming from the slot's
		// consistent point replays every change since. Every key ends with its
		// latest value, but may show older values once more on the way.
		s.log.Warn("resuming an interrupted snapshot with the chunks it had not read, then streaming from where it started",
			"slot", s.cfg.Slot, "position", string(from))
		if err := s.snapshot(ctx, "", &pos, out); err != nil {
			return Position{}, err
		}
		// An entity added meanwhile missed the chunks read before: it is
		// backfilled while streaming.
		return s.mark(ctx, s.resumeBackfill(Position{LSN: pos.LSN}), out)
	}
	switch {
	case s.cfg.Snapshot == cdc.SnapshotNever && slot.exists:
		s.log.Info("streaming without snapshot from the slot's position", "slot", s.cfg.Slot, "lsn", slot.confirmed.String())
		return s.mark(ctx, Position{LSN: slot.confirmed}, out)
	case s.cfg.Snapshot == cdc.SnapshotNever:
		lsn, _, err := s.createSlot(ctx, repl, "NOEXPORT_SNAPSHOT")
		if err != nil {
			return Position{}, err
		}
		return s.mark(ctx, Position{LSN: lsn}, out)
	case slot.exists:
		// A slot without a stored position: an earlier snapshot was interrupted.
		// Its exported snapshot is gone, so read the tables as they are now and
		// stream from the slot's position, which precedes everything read: every
		// key ends with its latest value, but may show older values once more.
		s.log.Warn("resuming an interrupted snapshot that stored no progress: the slot's exported snapshot is gone, so tables are read anew and changes since the slot was created are replayed after them",
			"slot", s.cfg.Slot, "lsn", slot.confirmed.String())
		start := Position{LSN: slot.confirmed}
		if err := s.snapshot(ctx, "", &start, out); err != nil {
			return Position{}, err
		}
		return s.mark(ctx, start, out)
	default:
		lsn, exported, err := s.createSlot(ctx, repl, "EXPORT_SNAPSHOT")
		if err != nil {
			return Position{}, err
		}
		// The exported snapshot lives while the replication connection stays idle:
		// read everything through it before START_REPLICATION.
		start := Position{LSN: lsn}
		if err := s.snapshot(ctx, exported, &start, out); err != nil {
			return Position{}, err
		}
		return s.mark(ctx, start, out)
	}
}

// walEnd is the end of the database's WAL (on a standby, of what it replayed).
func (s *Source) walEnd(ctx context.Context) (pglogrepl.LSN, error) {
	var end string
	if err := s.conn.QueryRow(ctx, `SELECT (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
		ELSE pg_catalog.pg_current_wal_lsn() END)::text`).Scan(&end); err != nil {
		return 0, fmt.Errorf("read the end of the WAL: %w", err)
	}
	return pglogrepl.ParseLSN(end)
}

// errAheadOfWAL refuses a stored position beyond the end of the database's
// WAL: the database was restored from a backup, or failed over to a replica
// that was behind, or the checkpoint is another database's. Streaming from
// there would confirm WAL cdc never read.
func (s *Source) errAheadOfWAL(from cdc.Position, walEnd pglogrepl.LSN) error {
	return fmt.Errorf("the stored position %s is ahead of the end of the database's WAL (%s): the database was restored from a backup or failed over to a replica that was behind, or the checkpoint belongs to another database. What cdc published past %s may be gone from the database, and what the database writes next would be taken for it. %s; or set snapshot.mode: when_needed to let cdc take the new snapshot",
		from, walEnd, walEnd, s.startOver())
}

// resumeBackfill gives pos the backfill to go on with (see backfill.Resume).
func (s *Source) resumeBackfill(pos Position) Position {
	pos.Backfill = backfill.Resume(pos.Backfill, s.fill)
	return pos
}

// createSlot creates the replication slot and returns its consistent point and,
// with EXPORT_SNAPSHOT, the name of the snapshot that shows the database as of it.
func (s *Source) createSlot(ctx context.Context, repl *pgconn.PgConn, snapshotAction string) (pglogrepl.LSN, string, error) {
	created, err := pglogrepl.CreateReplicationSlot(ctx, repl, s.cfg.Slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{SnapshotAction: snapshotAction})
	if err != nil {
		return 0, "", fmt.Errorf("create replication slot %s: %w", s.cfg.Slot, err)
	}
	lsn, err := pglogrepl.ParseLSN(created.ConsistentPoint)
	if err != nil {
		return 0, "", fmt.Errorf("replication slot %s: %w", s.cfg.Slot, err)
	}
	s.log.Info("created replication slot", "slot", s.cfg.Slot, "consistent_point", created.ConsistentPoint, "snapshot", snapshotAction == "EXPORT_SNAPSHOT")
	return lsn, created.SnapshotName, nil
}

// mark passes the streaming start position down as a progress marker, so it is
// stored once everything before it (the snapshot) is acknowledged.
func (s *Source) mark(ctx context.Context, pos Position, out chan<- cdc.Batch) (Position, error) {
	select {
	case out <- cdc.Batch{Position: pos.cdc(), StoreNow: true}:
		return pos, nil
	case <-ctx.Done():
		return pos, ctx.Err()
	}
}

// Held implements cdc.HeldReporter.
func (s *Source) Held() (memory, disk int64) { return s.held.memory.Load(), s.held.disk.Load() }

// ReadBack implements cdc.ReadBackReporter.
func (s *Source) ReadBack() (queries, rows int64) { return s.readBack.ReadBack() }
