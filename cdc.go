// Package cdc holds the core of the change-data-capture daemon: the row changes a
// source reads from a database's log, their typed values, their positions, and the
// Source seam that every database backend implements.
//
// It is plain data and must never import a database driver, Kafka client or the
// mapping: sources, mapping and sink depend on it, never the reverse.
package cdc

import (
	"context"
	"time"
)

// Op is what happened to a row.
type Op uint8

const (
	// OpRead is a row read by a snapshot: it existed when the snapshot was taken.
	OpRead Op = iota + 1
	OpInsert
	OpUpdate
	OpDelete
)

func (o Op) String() string {
	switch o {
	case OpRead:
		return "read"
	case OpInsert:
		return "insert"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	}
	return "unknown"
}

// Position is a point in a source's change log, in the source's own text form (for
// PostgreSQL the commit LSN and the index of the change inside its transaction;
// for MySQL the binlog coordinates or GTID set of a transaction boundary and the
// index). Only the source that made a position interprets it: the pipeline keeps
// positions in the order it received them. The empty Position means
// "no position": snapshot rows carry it, and a Source given it starts from scratch.
type Position string

// Change is one row change, as the database logged it.
type Change struct {
	// Table describes the row's columns as they were when the change was logged.
	// A source hands out a new *Table whenever the table's shape changes, so
	// consumers can cache per pointer and re-check when it differs.
	Table *Table
	Op    Op
	// Before is the row before an update or delete (nil for reads and inserts);
	// After is the row after a read, insert or update (nil for deletes). Both are
	// indexed like Table.Columns.
	Before, After []Value
	// Position orders the change in the log; the empty Position marks snapshot rows.
	Position Position
	// CommitTime is when the change's transaction committed (zero for snapshot rows).
	CommitTime time.Time
	// Entities, on a read of a backfill, are the entities it is for; nil
	// sends the change to every entity of its table.
	Entities []string
}

// Batch is the unit a source hands to the pipeline: changes in log order and the
// position the log stands at after them. A Batch with no changes is a progress
// marker (a heartbeat, the end of a snapshot): once everything before it is
// acknowledged, its Position can be stored as the checkpoint.
type Batch struct {
	Changes  []Change
	Position Position
	// StoreNow asks for Position to be stored as soon as everything up to it
	// is acknowledged, not at the next checkpoint interval: the source waits
	// for it (the marker that a snapshot is under way), or it marks a milestone
	// (a snapshot's end).
	StoreNow bool
	// release gives the batch's memory back to its source (BatchMemory).
	release func()
}

// Release is called by the consumer once it no longer reads the changes,
// their values included: the source may then reuse their memory. Batches are
// released in the order they were received (a release may cover the batches
// before it); a consumer that does not call it leaves the memory to the
// garbage collector. It does nothing for a batch whose source reuses nothing.
func (b Batch) Release() {
	if b.release != nil {
		b.release()
	}
}

// SnapshotMode says when a source takes a snapshot.
type SnapshotMode string

const (
	// SnapshotInitial snapshots the tables when there is no stored position.
	SnapshotInitial SnapshotMode = "initial"
	// SnapshotNever streams only: from the database's current log position
	// when there is no stored position.
	SnapshotNever SnapshotMode = "never"
	// SnapshotOnly snapshots the tables, stores the position streaming would
	// start from, and returns: a later run in another mode streams from there.
	SnapshotOnly SnapshotMode = "only"
	// SnapshotWhenNeeded is SnapshotInitial, and snapshots again when the
	// database no longer has the log from the stored position on (a purged
	// binlog, a dropped replication slot) instead of stopping.
	SnapshotWhenNeeded SnapshotMode = "when_needed"
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

// Checkpoint is what the pipeline stores so that a restart resumes where the last
// run stopped: the position up to which everything is acknowledged by the brokers.
type Checkpoint struct {
	Position Position
	// Entities names the entities whose topics were filled up to Position: an
	// entity added to the configuration later has no snapshot in its topic yet.
	Entities []string
	// Catalog is the source's CatalogKeeper.Catalog, if it is one.
	Catalog string
}
