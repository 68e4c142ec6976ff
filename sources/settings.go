// Package sources holds what every source is configured with: how it
// snapshots, batches and watches its connection, with one set of defaults.
// Each database is a package below it (postgres, mysql); the machinery they
// share is under sources/internal.
package sources

import (
	"log/slog"
	"slices"
	"time"

	"github.com/cdc-dev/cdc"
)

// Defaults for Settings fields left zero.
const (
	DefaultBatchSize = 1024
	// DefaultChunkSize is the number of rows a snapshot query reads. Each
	// query costs a round trip and a start of the database's scan, 1.5–2 ms
	// on the bench machine: at 10,000 rows that was a tenth of a snapshot's
	// time, at 100,000 a hundredth. What an interrupted snapshot reads again
	// (a chunk, 2×Parallelism with parallel reads) stays a fraction of a
	// second of reading.
	DefaultChunkSize = 100_000
	// DefaultBackfillChunkSize is the number of rows a backfill reads between
	// two watermarks. Smaller than a snapshot's chunk: the source holds the
	// whole chunk in memory until the stream reaches its high watermark.
	DefaultBackfillChunkSize = 10_000
	// DefaultHeartbeatInterval is how often, at most, an idle stream's
	// position is passed down, so that the database can release log written
	// by other tables.
	DefaultHeartbeatInterval = time.Second
)

// Settings configure what every source does the same way.
type Settings struct {
	Snapshot cdc.SnapshotMode
	// BatchSize is the number of changes a batch holds at most.
	BatchSize int
	// ChunkSize is the number of rows one snapshot query reads.
	ChunkSize int
	// BackfillChunkSize is the number of rows one backfill query reads.
	BackfillChunkSize int
	// Parallelism is the number of connections that read a snapshot's chunks
	// (1: the snapshot's own).
	Parallelism       int
	HeartbeatInterval time.Duration
	// DeadAfter is how long the stream may stay silent while cdc waits for
	// it before the connection counts as lost.
	DeadAfter time.Duration
	Logger    *slog.Logger
	// EventTables are mapped tables whose rows are events, not state (outbox
	// tables): streamed, but never snapshotted, since their rows were
	// published when they were inserted.
	EventTables []cdc.TableName
	// MemberTables are mapped tables that only aggregate entities embed:
	// streamed, since their changes name the roots to compute again, but
	// never snapshotted, since a snapshot computes every root from a view.
	MemberTables []cdc.TableName
}

// SnapshotTables returns the tables a snapshot reads: those given, but the
// event tables and member tables.
func (s Settings) SnapshotTables(tables []cdc.TableName) []cdc.TableName {
	return slices.DeleteFunc(slices.Clone(tables), func(t cdc.TableName) bool {
		return slices.Contains(s.EventTables, t) || slices.Contains(s.MemberTables, t)
	})
}

// WithDefaults returns the settings with the fields left zero set to their
// defaults; deadAfter is the source's, which depends on how often its
// database is asked to speak.
func (s Settings) WithDefaults(deadAfter time.Duration) Settings {
	if s.Snapshot == "" {
		s.Snapshot = cdc.SnapshotInitial
	}
	if s.BatchSize <= 0 {
		s.BatchSize = DefaultBatchSize
	}
	if s.ChunkSize <= 0 {
		s.ChunkSize = DefaultChunkSize
	}
	if s.BackfillChunkSize <= 0 {
		s.BackfillChunkSize = DefaultBackfillChunkSize
	}
	if s.Parallelism <= 0 {
		s.Parallelism = 1
	}
	if s.HeartbeatInterval <= 0 {
		s.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if s.DeadAfter <= 0 {
		s.DeadAfter = deadAfter
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	return s
}
