// Package cdc holds the core of the change-data-capture daemon: the row changes a
// source reads from a database's log, their typed values, their positions, and the
// Source seam that every database backend implements.
//
// It is plain data and must never import a database driver, Kafka client or the
// mapping: sources, mapping and sink depend on it, never the reverse.
package cdc

import "time"

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
	// Transaction names the database transaction that made the change, the
	// same whenever the change is read again (PostgreSQL "xid:commit LSN",
	// MySQL its GTID, or the binlog file:offset it starts at); empty for
	// snapshot rows. The changes of a transaction follow each other.
	Transaction string
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
	// InTransaction says the transaction of the last change goes on in the
	// next batch: a source splits a large transaction into several batches,
	// and only the last says it ended.
	InTransaction bool
	// release gives the batch's memory back to its source.
	release func()
}

// NewBatch returns a batch of changes whose Release calls release: a source
// that reuses the changes' memory gets it back there.
func NewBatch(changes []Change, release func()) Batch {
	return Batch{Changes: changes, release: release}
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

// Checkpoint is what the pipeline stores so that a restart resumes where the last
// run stopped: the position up to which everything is acknowledged by the brokers.
type Checkpoint struct {
	Position Position
	// Entities names the entities whose topics were filled up to Position: an
	// entity added to the configuration later has no snapshot in its topic yet.
	Entities []string
	// Catalog is the source's CatalogKeeper.Catalog, if it is one.
	Catalog string
	// Transaction, when Position lies inside a transaction whose records
	// were sent before its end (one too large to hold), is how many records
	// of it were sent before Position: a restart numbers the rest after them.
	Transaction *TransactionProgress
}

// TransactionProgress counts the records a database transaction wrote so far.
type TransactionProgress struct {
	ID      string
	Records int
	// Topics counts them per topic.
	Topics map[string]int
}
