package cdc

import (
	"context"
	"time"
)

// Source reads a database's change log.
//
// The command calls Check and Describe at start-up, then Run once; Acknowledge may be
// called from any goroutine while Run is running.
type Source interface {
	// Describe returns the named tables as the catalog describes them now, in the
	// order asked. A missing table is an error that names it.
	Describe(ctx context.Context, tables []TableName) ([]*Table, error)

	// Check verifies the database's prerequisites for the tables of its
	// configuration (log settings, privileges, table settings) and reports every
	// problem with the statement that fixes it. Run assumes Check passed.
	Check(ctx context.Context) error

	// Run sends batches to out in log order until ctx is done (it then returns
	// ctx's error) or a failure stops it. With an empty from, Run takes a snapshot
	// first when its configuration asks for one; otherwise it resumes streaming
	// after from, sending nothing at or before it. Run never sends a change twice
	// within one call, but after a restart everything after the last acknowledged
	// position is sent again.
	Run(ctx context.Context, from Position, out chan<- Batch) error

	// Acknowledge tells the source that everything up to and including pos is
	// durably stored downstream, so the database may discard its log before pos.
	// It never blocks; positions older than one already acknowledged are ignored.
	Acknowledge(pos Position)

	// Close releases the source's connections. It is safe to call after Run returned.
	Close() error
}

// ValueSampler is implemented by sources that can list the distinct values of a
// column cheaply: cdc validate checks enum maps against them. A source gives up
// (complete false) on large tables or slow queries rather than load the database.
type ValueSampler interface {
	// DistinctValues returns up to limit distinct non-NULL values of a column in
	// their text form; complete says whether they are all of them.
	DistinctValues(ctx context.Context, table TableName, column string, limit int) (values []string, complete bool, err error)
}

// RowSampler is implemented by sources that can read a few rows of a table:
// cdc validate checks an outbox's rows against their routes' schemas.
type RowSampler interface {
	// SampleRows returns up to limit rows of a described table, decoded as a
	// snapshot decodes them, and the table they are rows of.
	SampleRows(ctx context.Context, table TableName, limit int) (*Table, [][]Value, error)
}

// TableReader is implemented by sources that can read the current rows of their
// tables apart from the log: no slot, no checkpoint, nothing written to the
// database. cdc verify compares the rows with the topics.
type TableReader interface {
	// ReadTables sends every row of the source's configured tables to out as
	// OpRead changes without positions, all read in one consistent view, and
	// returns once the last is sent. The tables must have been described.
	ReadTables(ctx context.Context, out chan<- Batch) error
}

// Rechecker is implemented by sources that can read their tables from the
// catalog again while Run streams, on a connection of their own: a change the
// log does not show (a table dropped or renamed, its keys changed, a partition
// attached or detached) is then found within an interval instead of never.
type Rechecker interface {
	// Recheck returns the mapped tables as the catalog describes them now,
	// in the order of the source's configuration. It fails with what
	// changed when the source can no longer serve a table exactly.
	Recheck(ctx context.Context) ([]*Table, error)
}

// CatalogKeeper is implemented by sources whose database can change a mapped
// table's rows without a trace in its log, even while cdc is stopped
// (PostgreSQL: a partition detached or dropped, a table dropped and created
// again under its name). They describe the mapped tables' identity as text
// that is stored with every checkpoint, and compare it when they resume.
type CatalogKeeper interface {
	// Catalog is the mapped tables' identity as the source knows it now.
	Catalog() string
	// ResumeCatalog is given, before Run, the catalog stored with the
	// checkpoint Run resumes from ("" if none was stored).
	ResumeCatalog(stored string)
}

// Backfiller is implemented by sources that can backfill while they stream.
type Backfiller interface {
	// Backfill asks the next Run to fill b's tables for b's entities while
	// it streams, before any change after its start position. A backfill
	// under way in the position Run resumes from is merged with it. Backfill
	// fails if the database cannot (a PostgreSQL before 14, a MySQL source
	// without its watermark table).
	Backfill(b Backfill) error
}

// Signaler is implemented by sources whose running stream can be asked for a
// backfill through the database's own log (cdc snapshot --online): the
// request is ordered with the changes, needs no connection to the daemon, and
// waits in the log while the daemon is stopped.
type Signaler interface {
	Signal(ctx context.Context, b Backfill) error
}

// LogReporter is implemented by sources that can tell how much of the
// database's log the connector holds back, and how long the database keeps it:
// the operator's warning before the database runs out of disk, or discards log
// the connector still needs.
type LogReporter interface {
	LogStatus(ctx context.Context) (LogStatus, error)
}

// LogStatus describes the log the connector still needs, as the database sees it.
type LogStatus struct {
	// BehindBytes is the log the database keeps for the connector: written
	// since the last position the connector acknowledged (PostgreSQL: WAL
	// retained by the slot; MySQL: binlog bytes after the stored position).
	BehindBytes int64
	// WrittenBytes counts the log the server has written, for a write rate
	// (PostgreSQL: the current WAL position); 0 when the source cannot tell.
	WrittenBytes int64
	// SafeBytes is how much more log the server may write before it discards
	// log the connector needs (PostgreSQL: the slot's safe_wal_size); -1 when
	// no size limit applies.
	SafeBytes int64
	// KeptFor is the age at which the server discards log files (MySQL:
	// binlog_expire_logs_seconds); 0 when no age limit applies.
	KeptFor time.Duration
	// Lost says the server has already discarded log the connector needs.
	Lost bool
}

// ProgressReporter is implemented by sources that report their snapshot's progress.
type ProgressReporter interface {
	SnapshotProgress() []TableProgress
}

// TableProgress is the snapshot of one table so far.
type TableProgress struct {
	Table TableName
	// Rows read so far; Estimated is the catalog's estimate of the table's
	// rows when the snapshot started (0: unknown).
	Rows, Estimated   int64
	Started, Finished time.Time // Finished is zero while the table is read
}

// Rate is the table's rows per second so far; ETA the time left at that rate
// (0 when finished or unknown).
func (t TableProgress) Rate(now time.Time) float64 {
	end := t.Finished
	if end.IsZero() {
		end = now
	}
	if s := end.Sub(t.Started).Seconds(); s > 0 {
		return float64(t.Rows) / s
	}
	return 0
}

func (t TableProgress) ETA(now time.Time) time.Duration {
	rate := t.Rate(now)
	if !t.Finished.IsZero() || rate == 0 || t.Estimated <= t.Rows {
		return 0
	}
	return time.Duration(float64(t.Estimated-t.Rows) / rate * float64(time.Second))
}

// ReadBackReporter is implemented by sources that read rows back from their
// tables for values the log left out (REPLICA IDENTITY DEFAULT's unchanged
// TOAST, binlog_row_image MINIMAL or NOBLOB): the load that puts on the
// database.
type ReadBackReporter interface {
	// ReadBack returns the queries run so far and the rows they read.
	ReadBack() (queries, rows int64)
}

// HeldReporter is implemented by sources that hold transactions in progress
// until their commit (PostgreSQL's streamed transactions).
type HeldReporter interface {
	// Held returns the bytes held, in memory and on disk.
	Held() (memory, disk int64)
}

// SettingsReader is implemented by sources that can say how the database logs
// each table, beyond its shape: cdc catalog writes it, so that cdc validate
// --catalog finds a setting the source cannot serve with no database.
type SettingsReader interface {
	// TableSettings returns the settings of the named tables.
	TableSettings(ctx context.Context, tables []TableName) (map[TableName]TableSettings, error)
}

// TableSettings is how the database logs a table, where it matters to cdc.
type TableSettings struct {
	// ReplicaIdentity is PostgreSQL's REPLICA IDENTITY of the table, and
	// PartitionIdentities that of each leaf partition of a partitioned one:
	// FULL, DEFAULT, USING INDEX or NOTHING.
	ReplicaIdentity     string            `json:"replica_identity,omitempty"`
	PartitionIdentities map[string]string `json:"partitions,omitempty"`
	// CascadingForeignKeys names the table's foreign keys whose ON DELETE or
	// ON UPDATE action changes its rows (MySQL: InnoDB does not log those
	// changes), with their actions.
	CascadingForeignKeys map[string]string `json:"cascading_foreign_keys,omitempty"`
	// RowImage is MySQL's binlog_row_image, the server's setting (a session
	// may log otherwise): FULL, MINIMAL or NOBLOB.
	RowImage string `json:"row_image,omitempty"`
}

// ViewReader is implemented by sources that can read rows by the values of
// some of their columns, in one consistent view of the database that
// includes given changes: aggregate entities are computed from such a view
// (see docs/aggregates.md).
type ViewReader interface {
	// ReadView opens a read-only view of the database that includes every
	// change of fence, calls read with it, and closes it. A view that does
	// not include them yet (a transaction is logged before it is visible)
	// is opened again until it does.
	ReadView(ctx context.Context, fence Fence, read func(View) error) error
}

// Fence names changes a view must include: the transactions of changes
// (Change.Transaction) and the position of the last of them.
type Fence struct {
	Transactions []string
	Position     Position
}

// View reads rows from one consistent state of the database.
type View interface {
	// Rows calls each with the rows of a described table whose columns
	// equal one of the tuples of values (nil values: every row), ordered
	// by the columns of orderBy, the first after the tuple after when it
	// is set, at most limit of them when limit > 0. The rows are indexed
	// like the table's columns, and valid during the call only.
	Rows(ctx context.Context, q RowQuery, each func(t *Table, row []Value) error) error
}

// RowQuery is what View.Rows reads.
type RowQuery struct {
	Table   TableName
	Columns []string
	Values  [][]Value
	OrderBy []string
	After   []Value
	Limit   int
}
