package cdc

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

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

// SnapshotProgress keeps the progress of a source's snapshot; it is safe for
// concurrent use (the snapshot updates it, metrics and progress displays read it).
type SnapshotProgress struct {
	mu     sync.Mutex
	tables []TableProgress
	logged time.Time
}

// progressLogInterval is how often Add logs a long table's progress.
const progressLogInterval = 10 * time.Second

// Start records that a table's snapshot started, with the estimated row count.
func (p *SnapshotProgress) Start(table TableName, estimated int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tables = slices.DeleteFunc(p.tables, func(t TableProgress) bool { return t.Table == table })
	p.tables = append(p.tables, TableProgress{Table: table, Estimated: estimated, Started: time.Now()})
	p.logged = time.Now()
}

// Add counts n rows of the table read, and logs the table's progress every
// progressLogInterval.
func (p *SnapshotProgress) Add(table TableName, n int, log *slog.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.find(table)
	if i < 0 {
		return
	}
	t := &p.tables[i]
	t.Rows += int64(n)
	if now := time.Now(); now.Sub(p.logged) >= progressLogInterval {
		p.logged = now
		log.Info("snapshot progress", "table", table.String(), "rows", t.Rows, "estimated_rows", t.Estimated,
			"rows_per_second", int64(t.Rate(now)), "eta_seconds", int64(t.ETA(now).Seconds()))
	}
}

// Finish records that the table is read.
func (p *SnapshotProgress) Finish(table TableName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := p.find(table); i >= 0 {
		p.tables[i].Finished = time.Now()
	}
}

// Tables returns the tables started so far, in the order they started.
func (p *SnapshotProgress) Tables() []TableProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.tables)
}

func (p *SnapshotProgress) find(table TableName) int {
	return slices.IndexFunc(p.tables, func(t TableProgress) bool { return t.Table == table })
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

// BackfillChunkSent counts and logs a backfill chunk the stream sent (sent of
// its rows; the others were changed in its window), and the end of its table
// and of the backfill.
func (p *SnapshotProgress) BackfillChunkSent(c *BackfillChunk, sent int, fill Backfill, log *slog.Logger) {
	p.Add(c.Table.Name, sent, log)
	log.Debug("backfill chunk sent", "table", c.Table.Name.String(), "rows", sent, "left_to_the_stream", len(c.Rows)-sent)
	if c.Finished {
		p.Finish(c.Table.Name)
		log.Info("backfill of table finished", "table", c.Table.Name.String())
	}
	if _, _, more := fill.Next(); !more {
		log.Info("backfill finished", "entities", strings.Join(fill.Entities, ","))
	}
}
