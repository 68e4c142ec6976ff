package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
	"github.com/cdc-dev/cdc/sources/internal/backfill"
	"github.com/cdc-dev/cdc/sources/internal/reread"
)

// streamer reads the replication stream from one START_REPLICATION to its end.
type streamer struct {
	s    *Source
	conn *pgconn.PgConn
	out  chan<- cdc.Batch
	// from is the stored position: changes at or before it were delivered by an
	// earlier run (the server resends the transaction at from's LSN).
	from      Position
	relations map[uint32]*cdc.Table // nil value: a table cdc does not map
	// bases holds the base type of each column of the mapped relations,
	// which decodes the values sent in binary.
	bases map[uint32][]uint32

	inTxn      bool
	txn        Position // commit LSN and index of the last change read
	commitTime time.Time
	xid        uint32 // the transaction's
	// transaction names it in the changes (see cdc.Change.Transaction),
	// made at its first mapped change.
	transaction string
	batch       []cdc.Change
	// incomplete says the batch holds new rows the server sent without some
	// of their values, which reread completes at the flush.
	incomplete bool
	reread     rereader
	memory     memory.BatchMemory // the batches' changes and values
	message    rowMessage

	// backfill is the backfill under way, and the reader of its chunks.
	backfill backfill.Stream[*cdc.Table]

	// streamed holds the transactions the server streams before their
	// commit; block is the one whose block of messages is being read.
	streamed *streamedTransactions
	block    *heldTransaction
	blockXid uint32
	// walStart is the LSN of the message being read, as the server gives it
	// (for a streamed transaction's first block, the LSN of its first change).
	walStart pglogrepl.LSN

	lastSent      pglogrepl.LSN // highest LSN passed down
	lastHeartbeat time.Time
	lastStatus    time.Time
	reported      pglogrepl.LSN
}

// stream streams from the slot, and runs beside it the backfill under way at
// from and those a signal asks for (see Source.Signal).
func (s *Source) stream(parent context.Context, conn *pgconn.PgConn, from Position, out chan<- cdc.Batch) error {
	ctx, stop := context.WithCancelCause(parent)
	defer stop(nil)
	err := s.receive(ctx, stop, conn, from, out)
	if cause := context.Cause(ctx); parent.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause // the backfill's
	}
	return err
}

func (s *Source) receive(ctx context.Context, stop context.CancelCauseFunc, conn *pgconn.PgConn, from Position, out chan<- cdc.Batch) error {
	args := []string{"publication_names '" + s.cfg.Publication + "'"}
	streaming := s.serverVersion >= 14 && s.cfg.Streaming
	if streaming {
		args = append(args, "proto_version '2'", "streaming 'on'")
	} else {
		args = append(args, "proto_version '1'")
	}
	if s.serverVersion >= 14 {
		args = append(args, "messages 'true'") // a backfill's watermarks
	}
	format := "text"
	if s.serverVersion >= 14 && s.cfg.Binary {
		if blocker := s.binaryBlocker(); blocker == "" {
			args, format = append(args, "binary 'true'"), "binary"
		} else {
			s.log.Info("the stream stays in text mode: cdc decodes binary values of the built-in base types only", "column", blocker)
		}
	}
	err := pglogrepl.StartReplication(ctx, conn, s.cfg.Slot, from.LSN, pglogrepl.StartReplicationOptions{PluginArgs: args})
	if err != nil {
		return fmt.Errorf("start replication from slot %s at %s: %w", s.cfg.Slot, from.LSN, err)
	}
	s.log.Info("streaming", "slot", s.cfg.Slot, "from", from.String(), "format", format, "in_progress_transactions", streaming)
	st := &streamer{s: s, conn: conn, out: out, from: from, relations: map[uint32]*cdc.Table{}, bases: map[uint32][]uint32{}, lastSent: from.LSN, reread: rereader{s: s},
		backfill: backfill.Stream[*cdc.Table]{Fill: from.Backfill, ChunkSize: s.cfg.BackfillChunkSize, Open: s.openBackfill, Check: s.checkBackfill, Stop: stop,
			Describe: func(t cdc.TableName) *cdc.Table { return s.tables[t] }, Progress: &s.progress, Log: s.log},
		streamed: newStreamedTransactions(s.cfg.StreamedMemory, s.cfg.SpillDirectory, &s.held, func(xid uint32) {
			s.log.Info("a streamed transaction in progress goes on disk: those held passed source.postgres.streaming_memory_mib", "xid", xid, "memory_bytes", s.cfg.StreamedMemory)
		})}
	defer st.reread.close()
	defer st.streamed.close()
	if st.backfill.Fill != nil {
		if err := st.backfill.Start(ctx); err != nil {
			return err
		}
	}
	// Receiving wakes up at least every second to report status: a read
	// deadline, renewed when it expires. Messages are received without a
	// context, which pgconn would watch with an allocation and a lock per
	// message (a tenth of the daemon's CPU in a backlog drain); the stream's
	// end moves the deadline to the past instead.
	netConn := conn.Conn()
	wake := func() {
		if ctx.Err() == nil { // the end's deadline stays (at worst a renewal racing it waits a second)
			_ = netConn.SetReadDeadline(time.Now().Add(time.Second))
		}
	}
	defer context.AfterFunc(ctx, func() { _ = netConn.SetReadDeadline(time.Unix(1, 0)) })()
	wake()
	// silent is how long receiving has waited since the last message; time
	// spent waiting for the pipeline does not count.
	var silent time.Duration
	for {
		if err := st.maybeReportStatus(false); err != nil {
			return err
		}
		waiting := time.Now()
		msg, err := conn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				if silent += time.Since(waiting); silent > s.cfg.DeadAfter {
					return cdc.Transient(fmt.Errorf("the replication connection to slot %s sent nothing, not even the keepalives cdc asks for, for %s: the connection to PostgreSQL is lost; cdc resumes from the last stored position", s.cfg.Slot, s.cfg.DeadAfter))
				}
				wake()
				continue
			}
			return fmt.Errorf("replication connection to slot %s lost: %w; cdc resumes from the last stored position", s.cfg.Slot, err)
		}
		silent = 0
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if err := st.handleCopyData(ctx, msg.Data); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication from slot %s: %w", s.cfg.Slot, pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyDone:
			return fmt.Errorf("replication from slot %s: the server ended the stream", s.cfg.Slot)
		}
	}
}

func (st *streamer) handleCopyData(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("replication keepalive: %w", err)
		}
		if err := st.maybeReportStatus(ka.ReplyRequested); err != nil {
			return err
		}
		return st.heartbeat(ctx, ka.ServerWALEnd)
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("replication data: %w", err)
		}
		st.walStart = xld.WALStart
		return st.handleMessage(ctx, xld.WALData)
	}
	return nil
}

func (st *streamer) handleMessage(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if st.block != nil && data[0] != 'E' {
		return st.hold(data)
	}
	switch data[0] {
	case 'I', 'U', 'D':
		return st.rowChange(ctx, data)
	case 'S', 'E', 'c', 'A':
		return st.streamMessage(ctx, data)
	}
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return fmt.Errorf("decode pgoutput message: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return st.relation(ctx, m)
	case *pglogrepl.BeginMessage:
		st.inTxn, st.txn, st.commitTime, st.xid = true, Position{LSN: m.FinalLSN, Backfill: st.backfill.Fill}, m.CommitTime, m.Xid
		st.transaction = ""
	case *pglogrepl.LogicalDecodingMessage:
		if m.Transactional {
			// It counts as a change of its transaction: a restart from a
			// heartbeat stored at its commit's LSN meets it again.
			st.txn.Index++
		}
		switch {
		case m.Prefix == BackfillMessagePrefix:
			return st.watermark(ctx, m)
		case m.Prefix == SignalMessagePrefix:
			return st.signal(ctx, m)
		case slices.Contains(st.s.cfg.MessagePrefixes, m.Prefix):
			return st.outboxMessage(ctx, m)
		}
	case *pglogrepl.CommitMessage:
		st.inTxn = false
		return st.flush(ctx)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if t := st.relations[id]; t != nil {
				return fmt.Errorf("TRUNCATE of %s in the transaction committed at %s: a truncate removes every row, and cdc cannot tombstone keys it does not know; stopped so the topic is not silently wrong. %s",
					t.Name, st.txn.LSN, st.s.startOver())
			}
		}
	}
	return nil
}

// transactionID names the transaction under way (see cdc.Change.Transaction).
func (st *streamer) transactionID() string {
	if st.transaction == "" {
		st.transaction = fmt.Sprintf("%d:%s", st.xid, st.txn.LSN)
	}
	return st.transaction
}

// outboxMessage passes down a logical message of an outbox route as the
// insert of a row of cdc.LogicalMessages, in its transaction.
func (st *streamer) outboxMessage(ctx context.Context, m *pglogrepl.LogicalDecodingMessage) error {
	if !m.Transactional {
		// Sent as soon as it is written, even if its transaction rolls back:
		// not an event of a committed change.
		st.s.log.Error("skipped a logical message with an outbox route's prefix written outside a transaction (pg_logical_emit_message(false, ...)): it is decoded even if its transaction rolls back, so it is no outbox event. Write outbox events with pg_logical_emit_message(true, prefix, payload)",
			"prefix", m.Prefix, "lsn", m.LSN.String())
		return nil
	}
	if !st.txn.after(st.from) {
		return nil
	}
	row := st.memory.Row(2)
	row[0], row[1] = cdc.String(st.memory.CopyString(m.Prefix)), cdc.String(st.memory.Copy(m.Content))
	return st.add(ctx, cdc.Change{Table: cdc.LogicalMessages, Op: cdc.OpInsert, After: row,
		Position: Position{LSN: st.txn.LSN, Index: st.txn.Index}.cdc(), CommitTime: st.commitTime, Transaction: st.transactionID()})
}

// add adds a change to the batch, and passes the batch down once full.
func (st *streamer) add(ctx context.Context, ch cdc.Change) error {
	st.batch = append(st.batch, ch)
	if len(st.batch) >= st.s.cfg.BatchSize || st.memory.Full() {
		return st.flush(ctx)
	}
	return nil
}

// relation records a table's shape as of the changes that follow. An unchanged
// shape keeps its *cdc.Table, so the mapping keeps its compiled plan; a new shape
// gets a new one, which the mapping checks before the next change is mapped.
func (st *streamer) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	name, mapped, err := st.s.mappedRelation(ctx, m.RelationID, cdc.TableName{Schema: m.Namespace, Name: m.RelationName}, st.txn)
	if err != nil || !mapped {
		st.relations[m.RelationID] = nil
		return err
	}
	known := st.s.tables[name]
	if m.ReplicaIdentity == 'n' {
		return fmt.Errorf("table %s now has REPLICA IDENTITY NOTHING: its updates and deletes are logged without any old key, so cdc cannot tell which row they change; ALTER TABLE %s REPLICA IDENTITY DEFAULT (or FULL)",
			name, tableList([]cdc.TableName{name}))
	}
	t, bases, err := st.s.tableFromRelation(ctx, m, known)
	if err != nil {
		return err
	}
	st.bases[m.RelationID] = bases
	if t != known {
		st.s.log.Info("table shape changed", "table", name.String(), "at", st.txn.String())
		st.s.tables[name] = t
	}
	st.relations[m.RelationID] = t
	return nil
}

// rowChange handles an Insert, Update or Delete message. The message's bytes
// are the connection's buffer, valid until the next message: the values of a
// mapped table's change are decoded from a copy in the arena.
func (st *streamer) rowChange(ctx context.Context, data []byte) error {
	if len(data) < 5 {
		return fmt.Errorf("decode pgoutput %c message: %w", data[0], errShortMessage)
	}
	relation := binary.BigEndian.Uint32(data[1:5])
	st.txn.Index++
	t, known := st.relations[relation]
	if !known {
		return fmt.Errorf("change for relation %d before its relation message", relation)
	}
	if t == nil || !st.txn.after(st.from) {
		return nil
	}
	m := &st.message
	if err := m.parse(st.memory.Copy(data)); err != nil {
		return fmt.Errorf("%s at %s: decode pgoutput %c message: %w", t.Name, st.txn, data[0], err)
	}
	// The change's own position leaves out the backfill under way, whose
	// progress a resend after a restart may not repeat: ce_id, made from it,
	// stays the same. The batch's position carries it.
	ch := cdc.Change{Table: t, Op: m.op, Position: Position{LSN: st.txn.LSN, Index: st.txn.Index}.cdc(), CommitTime: st.commitTime, Transaction: st.transactionID()}
	var err error
	var incomplete bool
	if m.oldKind != 0 {
		if ch.Before, _, err = decodeTuple(t, st.bases[relation], m.old, &st.memory.Arena); err != nil {
			return fmt.Errorf("%s at %s: old row: %w", t.Name, st.txn, err)
		}
	}
	if m.op != cdc.OpDelete {
		if ch.After, incomplete, err = decodeTuple(t, st.bases[relation], m.new, &st.memory.Arena); err != nil {
			return fmt.Errorf("%s at %s: new row: %w", t.Name, st.txn, err)
		}
	}
	switch {
	case m.oldKind == 'K':
		// Only the identity's columns, which are NOT NULL: the NULLs are the
		// columns the server left out.
		for i, c := range m.old {
			if c.kind == 'n' {
				ch.Before[i] = cdc.Unknown()
			}
		}
	case m.oldKind == 0 && m.op == cdc.OpUpdate:
		ch.Before = oldIdentity(t, ch.After, &st.memory.Arena)
	}
	if incomplete {
		st.incomplete = true
		if len(st.reread.xids) == 0 || st.reread.xids[len(st.reread.xids)-1] != int64(st.xid) {
			st.reread.xids = append(st.reread.xids, int64(st.xid))
		}
	}
	st.backfill.Touch(t, ch.Before, ch.After)
	return st.add(ctx, ch)
}

// oldIdentity is the old row of an update logged without one: the server
// logs the old key only when it changed, so the identity's columns are the
// new row's, and the others are unknown.
func oldIdentity(t *cdc.Table, after []cdc.Value, arena *memory.Arena) []cdc.Value {
	identity := t.Identity
	if identity == nil {
		identity = t.PrimaryKey // a partition with an identity of its own, under a root with FULL
	}
	before := arena.Row(len(after))
	for i := range before {
		before[i] = cdc.Unknown()
	}
	for _, k := range identity {
		before[k] = after[k]
	}
	return before
}

// decodeTuple decodes a row, its values sent in text or, of the base types
// given, in binary; incomplete says it lacks values the server did not
// resend (unchanged TOAST).
func decodeTuple(t *cdc.Table, bases []uint32, tuple []tupleColumn, arena *memory.Arena) (values []cdc.Value, incomplete bool, err error) {
	if len(tuple) != len(t.Columns) {
		return nil, false, fmt.Errorf("%d columns, the relation has %d", len(tuple), len(t.Columns))
	}
	values = arena.Row(len(t.Columns))
	for i, c := range tuple {
		switch c.kind {
		case 'n':
		case 'u':
			values[i], incomplete = cdc.Unchanged(), true
		case 't':
			v, err := decodeText(t.Columns[i].Kind, t.Columns[i].WithTimeZone, c.data)
			if err != nil {
				return nil, false, fmt.Errorf("column %s: %w", t.Columns[i].Name, err)
			}
			values[i] = v
		case 'b':
			var base uint32
			if i < len(bases) {
				base = bases[i]
			}
			v, err := decodeBinary(base, c.data, arena)
			if errors.Is(err, errNoBinaryDecoder) {
				// A column added since the stream chose binary mode.
				return nil, false, cdc.Transient(fmt.Errorf("column %s (%s) %w: cdc restarts the stream, which stays in text mode while the column exists", t.Columns[i].Name, t.Columns[i].DatabaseType, err))
			}
			if err != nil {
				return nil, false, fmt.Errorf("column %s (%s): %w", t.Columns[i].Name, t.Columns[i].DatabaseType, err)
			}
			values[i] = v
		default:
			return nil, false, fmt.Errorf("column %s: unexpected tuple data type %q", t.Columns[i].Name, c.kind)
		}
	}
	return values, incomplete, nil
}

// flush passes the changes read so far down, as one batch.
func (st *streamer) flush(ctx context.Context) error {
	if len(st.batch) == 0 {
		return nil
	}
	if st.incomplete {
		var err error
		if _, err = reread.Complete(ctx, st.batch, st.reread.read, &st.s.readBack, st.s.cfg.EventTables); err != nil {
			return err
		}
		st.incomplete, st.reread.xids = false, st.reread.xids[:0]
	}
	b := st.memory.Batch(st.batch)
	b.Position = st.txn.cdc() // the last change's, with the backfill under way
	b.InTransaction = st.inTxn
	st.batch = st.memory.Changes(min(st.s.cfg.BatchSize, 2*len(st.batch)))
	st.lastSent = st.txn.LSN
	return st.emit(ctx, b)
}

// heartbeat passes the server's WAL end down when the stream is idle between
// transactions: everything before it has been sent, so once the pipeline has
// acknowledged everything before the marker, the slot may release that WAL. This
// is what keeps an idle (or unmapped-only) database from retaining WAL forever.
func (st *streamer) heartbeat(ctx context.Context, walEnd pglogrepl.LSN) error {
	// A keepalive sent with a streamed transaction's last block, or
	// between it and its commit, is past that commit: the marker stays
	// before every transaction held.
	walEnd = min(walEnd, st.streamed.oldest())
	if st.inTxn || walEnd <= st.lastSent || time.Since(st.lastHeartbeat) < st.s.cfg.HeartbeatInterval {
		return nil
	}
	st.lastSent, st.lastHeartbeat = walEnd, time.Now()
	return st.emit(ctx, cdc.Batch{Position: Position{LSN: walEnd, Backfill: st.backfill.Fill}.cdc()})
}

// emit sends a batch downstream, reporting status while it waits so that a slow
// broker does not make the server drop the connection (wal_sender_timeout).
func (st *streamer) emit(ctx context.Context, b cdc.Batch) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case st.out <- b:
			return nil
		case <-tick.C:
			if err := st.maybeReportStatus(false); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// maybeReportStatus tells the server how far the slot may advance: the last
// acknowledged position. It reports at least every StatusInterval, within a
// second of a new acknowledgement, and at once when the server asks.
func (st *streamer) maybeReportStatus(asked bool) error {
	acked := pglogrepl.LSN(st.s.acked.Load())
	since := time.Since(st.lastStatus)
	if !asked && since < st.s.cfg.StatusInterval && (acked == st.reported || since < time.Second) {
		return nil
	}
	// The server's reply (a keepalive) shows the connection is alive.
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), st.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: acked, WALFlushPosition: acked, WALApplyPosition: acked, ReplyRequested: true,
	})
	if err != nil {
		return fmt.Errorf("report position to slot %s: %w", st.s.cfg.Slot, err)
	}
	st.lastStatus, st.reported = time.Now(), acked
	return nil
}
