package mysql

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
	"github.com/cdc-dev/cdc/sources/internal/backfill"
	"github.com/cdc-dev/cdc/sources/internal/reread"
)

// streamer reads the binlog from one start position to its end.
type streamer struct {
	s   *Source
	out chan<- cdc.Batch
	// skip is how many changes of the current transaction an earlier run
	// delivered: from.Row for the first transaction not wholly before from.
	skip int
	// from is where the run resumes; transactions wholly before it are read
	// again only when from.Prepared made the stream start earlier, for the
	// rows of XA transactions still prepared (see xa.go).
	from      Position
	fromGTIDs mysql.GTIDSet
	// replaying says the current transaction lies wholly before from;
	// resumed, that a transaction that does not has begun.
	replaying, resumed bool
	// nextGTID is the GTID of the transaction whose GTID event was just read.
	nextGTID string
	// txnGTID is the current transaction's GTID, "" where the server has none.
	txnGTID string
	// transaction names it in the changes (see cdc.Change.Transaction),
	// made at its first mapped change.
	transaction string
	// xa is the XA transaction being read, between XA START and XA PREPARE;
	// prepared holds those prepared and not yet committed or rolled back, in
	// the order they were prepared.
	xa       *xaTransaction
	prepared []*xaTransaction

	file      string
	committed Position // the boundary after the last whole transaction
	txnStart  Position // the boundary the current transaction started at
	inTxn     bool
	begun     bool // the transaction opened with BEGIN (not a lone DDL statement)
	row       int  // changes of the current transaction so far, mapped or not
	batch     []cdc.Change
	memory    memory.BatchMemory // the batches' changes and values
	images    imageReader
	ddlReader *ddlReader
	captured  bool // the current transaction changed a mapped table
	// incomplete says the batch holds new rows whose images lack values,
	// which reread completes when the batch is sent.
	incomplete bool
	reread     rereader

	lastSent     time.Time
	lastSentPos  Position
	tables       map[uint64]*tableState
	shapes       map[cdc.TableName]*cdc.Table // the shape last handed out, per table
	mapped       map[cdc.TableName]bool
	warnedFormat bool

	// backfill is the backfill under way, whose chunks reader reads; every
	// position from committed on carries it.
	backfill backfill.Stream[*described]
}

// tableState is what a table-map event says about a table id.
type tableState struct {
	name     cdc.TableName
	table    *cdc.Table // nil: a table cdc does not map
	decoders []*decoder
	columns  []binlogColumn // how its row images are laid out
	// binaryJSON: a column holds MySQL's binary JSON, which go-mysql decodes
	binaryJSON bool
	// watermark marks the backfill's watermark table.
	watermark bool
	// the raw description, to notice a table id described anew
	columnTypes []byte
	columnMeta  []uint16
	nulls       []byte
	names       []string
}

var errSilent = errors.New("silent stream")

// stream streams the binlog from from, and runs beside it the backfill under
// way at from and those a signal asks for (see Source.Signal).
func (s *Source) stream(parent context.Context, from Position, out chan<- cdc.Batch) error {
	ctx, stop := context.WithCancelCause(parent)
	defer stop(nil)
	err := s.receive(ctx, stop, from, out)
	if cause := context.Cause(ctx); parent.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause // the backfill's
	}
	return err
}

func (s *Source) receive(ctx context.Context, stop context.CancelCauseFunc, from Position, out chan<- cdc.Batch) error {
	// With XA transactions prepared at from, the stream starts at the oldest
	// one's prepare (see Position.Prepared).
	start := from.boundary()
	if from.Prepared != nil {
		start = *from.Prepared
	}
	st := &streamer{
		s: s, out: out, from: from, file: start.File,
		committed: Position{File: start.File, Offset: start.Offset, GTIDSet: start.GTIDSet, Backfill: from.Backfill},
		tables:    map[uint64]*tableState{}, shapes: map[cdc.TableName]*cdc.Table{}, mapped: map[cdc.TableName]bool{},
		lastSentPos: from,
		ddlReader:   newDDLReader(),
		reread:      rereader{s: s, states: map[*cdc.Table]*tableState{}},
		backfill: backfill.Stream[*described]{Fill: from.Backfill, ChunkSize: s.cfg.BackfillChunkSize, Open: s.openBackfill, Check: s.checkBackfill, Stop: stop,
			Describe: func(t cdc.TableName) *described { return s.tables[t] }, Progress: &s.progress, Log: s.log},
	}
	defer st.reread.close()
	if s.gtid && from.GTIDSet != "" && from.Prepared != nil {
		var err error
		if st.fromGTIDs, err = mysql.ParseGTIDSet(s.flavor(), from.GTIDSet); err != nil {
			return fmt.Errorf("stored GTID set %q: %w", from.GTIDSet, err)
		}
	}
	for _, name := range s.cfg.Tables {
		st.mapped[name] = true
		st.shapes[name] = s.tables[name].table
	}
	flavor := s.flavor()
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: s.cfg.ServerID, Flavor: flavor, Localhost: s.replicaHost(),
		Host: s.endpoint.host, Port: s.endpoint.port, User: s.endpoint.user, Password: s.endpoint.password,
		TLSConfig: s.tls,
		// Only the rows of tables with MySQL's binary JSON are decoded by
		// go-mysql (see rows.go). Their times, dates and decimals arrive as
		// MySQL's own text, TIMESTAMPs in UTC: the snapshot reads the same
		// text, and one parser serves both; DATETIME and TIMESTAMP from 1970
		// on arrive as times.
		TimestampStringLocation: time.UTC,
		RenderJSONAsMySQLText:   true,
		ParseTime:               true,
		HeartbeatPeriod:         s.cfg.HeartbeatInterval,
		// cdc resumes from its own checkpoint; go-mysql's reconnect would resume
		// from a position of its own, maybe inside a transaction.
		DisableRetrySync: true,
		// Events are decoded ahead of the pipeline; a few dozen (each up to
		// binlog_row_event_max_size, 8 KiB by default) keep the reader busy: 256
		// held 15 MB more at the peak of a backlog drain, for no more speed.
		EventCacheCount:     64,
		RowsEventDecodeFunc: keepRowImages,
		Logger:              slog.New(slog.DiscardHandler),
	})
	defer func() {
		closed := make(chan struct{})
		go func() {
			syncer.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(closeTimeout):
			s.log.Warn("the binlog connection did not close in time; leaving it to the operating system", "waited", closeTimeout)
		}
	}()

	var events *replication.BinlogStreamer
	var err error
	if s.gtid && (start.GTIDSet != "" || s.mariadb) {
		var set mysql.GTIDSet
		if set, err = mysql.ParseGTIDSet(flavor, start.GTIDSet); err != nil {
			return fmt.Errorf("stored GTID set %q: %w", start.GTIDSet, err)
		}
		events, err = syncer.StartSyncGTID(set)
	} else {
		st.committed.GTIDSet = ""
		events, err = syncer.StartSync(mysql.Position{Name: start.File, Pos: start.Offset})
	}
	if err != nil {
		return fmt.Errorf("start reading the binlog at %s: %w", from, err)
	}
	s.log.Info("streaming", "from", from.String(), "gtid", s.gtid, "server_id", s.cfg.ServerID)
	if st.backfill.Fill != nil {
		if err := st.backfill.Start(ctx); err != nil {
			return err
		}
	}

	// A watchdog ends the wait for an event when the server has sent nothing,
	// not even a heartbeat, for too long: the connection is dead. Time spent
	// waiting for the pipeline does not count.
	watched, stopWatch := context.WithCancelCause(ctx)
	defer stopWatch(nil)
	var waitingSince atomic.Int64
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-watched.Done():
				return
			case now := <-tick.C:
				if since := waitingSince.Load(); since != 0 && now.Sub(time.Unix(0, since)) > s.cfg.DeadAfter {
					stopWatch(errSilent)
					return
				}
			}
		}
	}()
	for {
		waitingSince.Store(time.Now().UnixNano())
		ev, err := events.GetEvent(watched)
		waitingSince.Store(0)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(context.Cause(watched), errSilent):
				return cdc.Transient(fmt.Errorf("the binlog stream sent nothing, not even a heartbeat, for %s: the connection to MySQL is lost; cdc resumes from the last stored position", s.cfg.DeadAfter))
			}
			var myErr *mysql.MyError
			switch {
			case errors.As(err, &myErr) && sameServerID(myErr):
				return fmt.Errorf("the server ended the binlog stream because another replica uses this connector's server id %d: most often a second cdc process with the same connector name (run one process per name; in exactly-once mode the newer process goes on), otherwise a replica with the same id (set source.mysql.server_id to one no other replica uses): %w",
					s.cfg.ServerID, err)
			case errors.As(err, &myErr) && myErr.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG:
				return purgedError(st.committed, "the server cannot send it: "+myErr.Message)
			case errors.As(err, &myErr) && !cdc.IsTransient(classify(err)):
				return fmt.Errorf("the server ended the binlog stream: %w", err)
			}
			return cdc.Transient(fmt.Errorf("binlog stream lost: %w; cdc resumes from the last stored position", err))
		}
		if err := st.handle(ctx, ev, ev.Header.LogPos); err != nil {
			return err
		}
	}
}

// erSlaveSameID is MariaDB's ER_SLAVE_SAME_ID: a replica with the same server
// id connected. MySQL says it with ER_MASTER_FATAL_ERROR_READING_BINLOG and
// this text.
const erSlaveSameID = 4052

func sameServerID(err *mysql.MyError) bool {
	return err.Code == erSlaveSameID || strings.Contains(err.Message, "same server_uuid/server_id")
}

// handle processes one event; end is the binlog offset after it.
func (st *streamer) handle(ctx context.Context, ev *replication.BinlogEvent, end uint32) error {
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		st.file = string(e.NextLogName)
		// The server's own rotate at the start of a stream names the file it
		// starts in (with GTIDs, maybe one before the stored position's); a real
		// one ends a file, and the next transaction starts the new one.
		if !st.inTxn && ev.Header.Flags&replication.LOG_EVENT_ARTIFICIAL_F == 0 {
			st.committed.File, st.committed.Offset = st.file, uint32(e.Position)
		}
	case *replication.MariadbGTIDEvent:
		// MariaDB logs no BEGIN: its GTID event opens the transaction, unless
		// it announces a statement that commits alone (DDL).
		st.nextGTID = e.GTID.String()
		st.begin()
		st.begun = !e.IsStandalone()
		if e.Flags&mariadbPreparedXA != 0 {
			st.startXA()
		}
	case *replication.GTIDEvent:
		st.nextGTID = mysqlGTID(e.SID, e.GNO)
		st.begin()
	case *replication.GtidTaggedLogEvent:
		st.nextGTID = ""
		st.begin()
	case *replication.GenericEvent:
		if ev.Header.EventType == replication.XA_PREPARE_LOG_EVENT {
			return st.prepare(ctx, e.Data, end)
		}
	case *replication.QueryEvent:
		return st.query(ctx, e, end)
	case *replication.TableMapEvent:
		return st.tableMap(e)
	case *replication.RowsEvent:
		return st.rows(ctx, ev.Header, e)
	case *replication.XIDEvent:
		return st.commit(ctx, e.GSet, end)
	case *replication.TransactionPayloadEvent:
		for _, inner := range e.Events {
			if err := st.handle(ctx, inner, end); err != nil {
				return err
			}
		}
	default:
		if ev.Header.EventType == replication.HEARTBEAT_EVENT || ev.Header.EventType == replication.HEARTBEAT_LOG_EVENT_V2 {
			return st.idle(ctx)
		}
	}
	return nil
}

func (st *streamer) begin() {
	if st.inTxn {
		return
	}
	st.inTxn, st.begun, st.row, st.captured = true, false, 0, false
	st.txnStart = st.committed
	st.txnGTID, st.nextGTID = st.nextGTID, ""
	st.transaction = ""
	st.replaying = st.beforeFrom()
	if !st.replaying && !st.resumed {
		st.skip, st.resumed = st.from.Row, true
	}
}

// transactionID names the current transaction: by its GTID, or where the
// server has none, by the boundary it starts at.
func (st *streamer) transactionID() string {
	if st.transaction == "" {
		st.transaction = st.txnGTID
		if st.transaction == "" {
			st.transaction = st.txnStart.File + ":" + strconv.FormatUint(uint64(st.txnStart.Offset), 10)
		}
	}
	return st.transaction
}

// beforeFrom reports whether the transaction that starts at txnStart lies
// wholly before the position the run resumes from: by its GTID where
// positions are GTID sets, by its place in the binlog files otherwise.
func (st *streamer) beforeFrom() bool {
	switch {
	case st.from.Prepared == nil:
		return false // streaming started at from itself
	case st.fromGTIDs != nil && st.txnGTID != "":
		gtid, err := mysql.ParseGTIDSet(st.s.flavor(), st.txnGTID)
		return err == nil && st.fromGTIDs.Contain(gtid)
	}
	return st.txnStart.File < st.from.File || (st.txnStart.File == st.from.File && st.txnStart.Offset < st.from.Offset)
}

func (st *streamer) query(ctx context.Context, e *replication.QueryEvent, end uint32) error {
	q := bytes.TrimSpace(e.Query)
	switch {
	case bytes.EqualFold(q, []byte("BEGIN")):
		st.begin()
		st.begun = true
		return nil
	case bytes.EqualFold(q, []byte("COMMIT")), bytes.EqualFold(q, []byte("ROLLBACK")):
		// A ROLLBACK is logged when non-transactional tables changed: their rows
		// were logged, and stay changed.
		return st.commit(ctx, e.GSet, end)
	case len(q) > 3 && bytes.EqualFold(q[:3], []byte("XA ")):
		return st.xaStatement(ctx, string(q), e.GSet, end)
	case st.begun:
		// A statement inside a transaction: a savepoint, or a statement logged
		// as SQL because a session chose binlog_format STATEMENT or MIXED.
		if !st.warnedFormat && !bytes.HasPrefix(bytes.ToUpper(q), []byte("SAVEPOINT")) {
			st.warnedFormat = true
			st.s.log.Warn("the binlog holds a statement-based transaction: cdc sees only row events, so changes made by statements are not captured; keep binlog_format = ROW for every session",
				"database", string(e.Schema), "position", st.txnStart.String())
		}
		return nil
	}
	// DDL commits on its own. The tables it changes show their new shape in
	// their next table-map event; only statements that remove or replace rows
	// without row events need to be recognized here.
	st.begin()
	if !st.replaying { // an earlier run passed it
		if err := st.ddl(string(q), string(e.Schema)); err != nil {
			return err
		}
	}
	return st.commit(ctx, e.GSet, end)
}

// startOver says how to recover from rows changed outside the binlog.
const startOver = "To recover, snapshot again from scratch: delete the checkpoint (a tombstone for the connector's key in the checkpoint topic) and the entities' topics (or give them new topic versions), then start cdc"

// ddl stops the stream at a statement that removes or replaces a mapped
// table's rows, or takes its name, without row events (see ddlReader).
func (st *streamer) ddl(query, db string) error {
	effects, err := st.ddlReader.effects(query, db)
	if err != nil {
		for _, w := range tokenize(query) {
			for name := range st.mapped {
				if strings.EqualFold(w.text, name.Name) {
					return fmt.Errorf("%w at %s; it names the mapped table %s, so cdc stopped rather than guess whether the table's rows changed without row events. Check the table; %s",
						err, st.txnStart, name, startOver)
				}
			}
		}
		st.s.log.Warn("cdc could not read a statement of the binlog; it names no mapped table", "err", err, "position", st.txnStart.String())
		return nil
	}
	for _, effect := range effects {
		for name := range st.mapped {
			if !strings.EqualFold(effect.table.Schema, name.Schema) || (effect.table.Name != "" && !strings.EqualFold(effect.table.Name, name.Name)) {
				continue
			}
			return fmt.Errorf("statement %q at %s: %s of the mapped table %s, and the binlog holds no row events for it, so cdc cannot tombstone keys it does not know; it stopped so that the topics are not silently wrong. %s",
				clip(query), st.txnStart, effect.what, name, startOver)
		}
	}
	return nil
}

func (st *streamer) tableMap(e *replication.TableMapEvent) error {
	if old, ok := st.tables[e.TableID]; ok && old.same(e) {
		return nil
	}
	name := cdc.TableName{Schema: string(e.Schema), Name: string(e.Table)}
	state := &tableState{name: name, columnTypes: slices.Clone(e.ColumnType), columnMeta: slices.Clone(e.ColumnMeta),
		nulls: slices.Clone(e.NullBitmap), names: slices.Clone(e.ColumnNameString()), columns: binlogColumns(e)}
	state.binaryJSON = hasBinaryJSON(state.columns)
	st.tables[e.TableID] = state
	if !st.mapped[name] {
		state.watermark = name == st.s.cfg.WatermarkTable
		return nil
	}
	types, err := tableMapTypes(e, st.s.collations)
	if err != nil {
		return err
	}
	t := &cdc.Table{Name: name}
	for _, pk := range e.PrimaryKey {
		t.PrimaryKey = append(t.PrimaryKey, int(pk))
	}
	for _, ct := range types {
		c, err := ct.column(st.s.cfg.ZeroDates)
		if err != nil {
			return fmt.Errorf("table %s changed at position %s: %v", name, st.txnStart, err)
		}
		t.Columns = append(t.Columns, c)
	}
	t.Identity = rowImageIdentity(st.s.rowImage, t, types)
	if prev := st.shapes[name]; prev != nil && sameColumns(prev, t) {
		t = prev // same shape: the mapping compiled for it still holds
	} else {
		st.s.log.Info("table definition changed", "table", name.String(), "position", st.txnStart.String(), "columns", len(t.Columns))
		st.shapes[name] = t
	}
	state.table = t
	for i, ct := range types {
		state.decoders = append(state.decoders, newDecoder(ct, t.Columns[i], st.s.cfg.ZeroDates))
	}
	st.reread.states[t] = state
	return nil
}

func (ts *tableState) same(e *replication.TableMapEvent) bool {
	return ts.name.Schema == string(e.Schema) && ts.name.Name == string(e.Table) &&
		bytes.Equal(ts.columnTypes, e.ColumnType) && slices.Equal(ts.columnMeta, e.ColumnMeta) &&
		bytes.Equal(ts.nulls, e.NullBitmap) && slices.Equal(ts.names, e.ColumnNameString())
}

// sameColumns compares what decides how values decode and map; the type's
// spelling (varchar(50) or varchar) does not.
func sameColumns(a, b *cdc.Table) bool {
	return slices.EqualFunc(a.Columns, b.Columns, func(x, y cdc.Column) bool {
		x.DatabaseType, y.DatabaseType = "", ""
		return x == y
	})
}

func (st *streamer) rows(ctx context.Context, h *replication.EventHeader, e *replication.RowsEvent) error {
	state := st.tables[e.TableID]
	if state == nil {
		return fmt.Errorf("binlog rows event for table id %d without its table map at %s", e.TableID, st.txnStart)
	}
	var op cdc.Op
	step := 1
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		op = cdc.OpInsert
	case replication.EnumRowsEventTypeUpdate:
		op, step = cdc.OpUpdate, 2
	case replication.EnumRowsEventTypeDelete:
		op = cdc.OpDelete
	default:
		if h.EventType != replication.PARTIAL_UPDATE_ROWS_EVENT {
			return fmt.Errorf("unknown rows event %s at %s", h.EventType, st.txnStart)
		}
		// MySQL's binlog_row_value_options=PARTIAL_JSON, which a session may
		// set: its JSON values are diffs. Counted like any update on other
		// tables; a mapped table's cannot be served.
		if state.table != nil {
			return fmt.Errorf("table %s, rows event in the transaction at %s: a partial update (binlog_row_value_options=PARTIAL_JSON) carries JSON diffs, not whole values: set binlog_row_value_options = '' for every session that writes the table",
				state.name, st.txnStart)
		}
		op, step = cdc.OpUpdate, 2
	}
	failed := func(err error) error {
		return fmt.Errorf("table %s, rows event in the transaction at %s: %w", state.name, st.txnStart, err)
	}
	images, err := st.rowImages(h, e, state)
	if err != nil {
		return failed(err)
	}
	st.begin() // rows outside BEGIN/GTID: a server without GTIDs on a non-transactional table
	for {
		var row [2]rowImage
		for k := range step {
			var ok bool
			row[k], ok, err = images.next(k)
			switch {
			case err != nil:
				return failed(err)
			case !ok && k > 0:
				return failed(errors.New("an update without its after image"))
			case !ok:
				return nil
			}
		}
		st.row++
		if st.replaying && st.xa == nil {
			continue // sent by an earlier run
		}
		if state.watermark && st.row > st.skip && op != cdc.OpDelete && st.xa == nil {
			if connector, mark, ok := row[step-1].texts(); ok {
				if err := st.watermark(ctx, connector, mark); err != nil {
					return err
				}
			}
		}
		if state.table == nil || st.row <= st.skip {
			continue
		}
		pos := st.txnStart
		pos.Row = st.row
		// The change's own position leaves out the backfill under way, whose
		// progress a resend after a restart may not repeat: ce_id, made from
		// it, stays the same. The batch's position carries it.
		own := pos
		own.Backfill = nil
		c := cdc.Change{Table: state.table, Op: op, CommitTime: time.Unix(int64(h.Timestamp), 0).UTC(), Position: own.cdc(), Transaction: st.transactionID()}
		// A column an image lacks (binlog_row_image MINIMAL or NOBLOB) is
		// unknown in an old row, and in a new one was left as it was (an
		// update) or not set by the statement (an insert): read back later.
		var lacks bool // the new row lacks values
		switch op {
		case cdc.OpInsert:
			c.After, lacks, err = st.decodeRow(state, row[0], nil, nil, cdc.Unchanged())
		case cdc.OpDelete:
			c.Before, _, err = st.decodeRow(state, row[0], nil, nil, cdc.Unknown())
		case cdc.OpUpdate:
			if c.Before, _, err = st.decodeRow(state, row[0], nil, nil, cdc.Unknown()); err == nil {
				c.After, lacks, err = st.decodeRow(state, row[1], &row[0], c.Before, cdc.Unchanged())
			}
		}
		if err != nil {
			return err
		}
		if st.xa != nil {
			// Kept until its XA COMMIT, past the batches' memory.
			st.xa.changes = append(st.xa.changes, ownedChange(c))
			continue
		}
		st.backfill.Touch(state.table, c.Before, c.After)
		st.captured = true
		st.incomplete = st.incomplete || lacks
		if st.batch == nil {
			st.batch = st.memory.Changes(st.s.cfg.BatchSize)
		}
		st.batch = append(st.batch, c)
		if len(st.batch) >= st.s.cfg.BatchSize || st.memory.Full() {
			if err := st.send(ctx, pos, false); err != nil {
				return err
			}
		}
	}
}

// rowImages returns the reader of a rows event's images: cdc's own, unless
// go-mysql is to decode them.
func (st *streamer) rowImages(h *replication.EventHeader, e *replication.RowsEvent, state *tableState) (*imageReader, error) {
	r := &st.images
	*r = imageReader{fields: r.fields}
	kept, ok := keptImages(e)
	switch {
	case !ok: // decoded by go-mysql already
	case libraryDecodes(h, state):
		if err := kept.decodeWithLibrary(e); err != nil {
			return nil, err
		}
	default:
		if len(state.columns) != int(e.ColumnCount) {
			return nil, fmt.Errorf("the event has %d columns, its table map %d", e.ColumnCount, len(state.columns))
		}
		data, err := kept.data(h)
		if err != nil {
			return nil, err
		}
		r.data, r.columns = data, state.columns
		r.present = [2][]byte{e.ColumnBitmap1, e.ColumnBitmap2}
		for k := range r.fields {
			r.fields[k] = slices.Grow(r.fields[k][:0], len(state.columns))[:len(state.columns)]
		}
		return r, nil
	}
	r.decoded, r.skipped = e.Rows, e.SkippedColumns
	return r, nil
}

// decodeRow decodes a row image. For the after image of an update, the
// before image and its values are given: a column whose bytes are the before
// image's keeps the value decoded from them (an update usually changes a few
// columns of many). A column the image lacks gets the value absent, and
// partial says there was one.
func (st *streamer) decodeRow(state *tableState, image rowImage, before *rowImage, beforeValues []cdc.Value, absent cdc.Value) (values []cdc.Value, partial bool, err error) {
	n := len(image.values)
	if image.values == nil {
		n = len(image.fields)
	}
	if n != len(state.decoders) {
		return nil, false, fmt.Errorf("binlog row of %s has %d columns, its table map %d", state.name, n, len(state.decoders))
	}
	values = st.memory.Row(n)
	for i, d := range state.decoders {
		switch {
		case image.absent(i):
			values[i], partial = absent, true
		case image.values != nil:
			values[i], err = d.binlog(image.values[i], &st.memory.Arena)
		case image.fields[i].null:
		case before != nil && before.fields != nil && !before.fields[i].null && !before.fields[i].absent && bytes.Equal(image.fields[i].raw, before.fields[i].raw):
			values[i] = beforeValues[i]
		default:
			values[i], err = d.binary(state.columns[i], image.fields[i].raw, &st.memory.Arena)
		}
		if err != nil {
			return nil, false, fmt.Errorf("table %s, column %s, in the transaction at %s: %w%s", state.name, state.table.Columns[i].Name, st.txnStart, err, zeroDateHint(err))
		}
	}
	return values, partial, nil
}

// commit ends the current transaction; gset is the GTID set after it.
func (st *streamer) commit(ctx context.Context, gset mysql.GTIDSet, end uint32) error {
	if end == 0 && !st.s.gtid {
		// MariaDB 11.4's binlog_legacy_event_pos=OFF (refused by Check; a
		// session cannot change it, but the server's setting can change).
		return fmt.Errorf("the binlog event that ends the transaction at %s has no end offset (binlog_legacy_event_pos=OFF?), so no position in the binlog file can be stored after it: use GTID positions (source.mysql.gtid: true), or SET GLOBAL binlog_legacy_event_pos = ON", st.txnStart)
	}
	st.endTransaction(gset, end)
	captured := st.captured
	st.captured = false
	if !st.resumed {
		return nil // before from: an earlier run sent it
	}
	if captured || time.Since(st.lastSent) >= st.s.cfg.HeartbeatInterval {
		return st.send(ctx, st.committed, true)
	}
	return nil
}

// endTransaction moves the boundary past the current transaction; gset is
// the GTID set after it, or nil to compute it from the transaction's GTID.
func (st *streamer) endTransaction(gset mysql.GTIDSet, end uint32) {
	st.committed.File, st.committed.Offset = st.file, end
	switch {
	case !st.s.gtid:
	case gset != nil:
		st.committed.GTIDSet = gset.String()
	case st.txnGTID != "":
		// An event the library gives no GTID set (an XA PREPARE).
		if set, err := mysql.ParseGTIDSet(st.s.flavor(), st.committed.GTIDSet); err == nil && set.Update(st.txnGTID) == nil {
			st.committed.GTIDSet = set.String()
		}
	}
	st.inTxn, st.begun, st.row, st.skip, st.replaying, st.xa = false, false, 0, 0, false, nil
}

// idle passes the position of skipped transactions down on a heartbeat, so the
// checkpoint follows the binlog while mapped tables do not change.
func (st *streamer) idle(ctx context.Context) error {
	last := st.lastSentPos
	last.Prepared = nil // committed never carries it: send adds it
	if st.inTxn || !st.resumed || st.committed == last {
		return nil
	}
	return st.send(ctx, st.committed, true)
}

// send hands the batch down; a boundary batch may be a bare progress marker.
func (st *streamer) send(ctx context.Context, pos Position, boundary bool) error {
	if st.incomplete {
		var err error
		if _, err = reread.Complete(ctx, st.batch, st.reread.read, &st.s.readBack, st.s.cfg.EventTables); err != nil {
			return err
		}
		st.incomplete = false
	}
	b := st.memory.Batch(st.batch)
	pos.Prepared = st.oldestPrepared()
	b.Position = pos.cdc()
	b.InTransaction = st.inTxn
	select {
	case st.out <- b:
	case <-ctx.Done():
		return ctx.Err()
	}
	st.batch = nil
	st.lastSent = time.Now()
	if boundary {
		st.lastSentPos = pos
	}
	return nil
}
