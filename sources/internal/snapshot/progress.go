package snapshot

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cdc-dev/cdc"
)

// Progress keeps the progress of a source's snapshot; it is safe for
// concurrent use (the snapshot updates it, metrics and progress displays read it).
type Progress struct {
	mu     sync.Mutex
	tables []cdc.TableProgress
	logged time.Time
}

// progressLogInterval is how often Add logs a long table's progress.
const progressLogInterval = 10 * time.Second

// Start records that a table's snapshot started, with the estimated row count.
func (p *Progress) Start(table cdc.TableName, estimated int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tables = slices.DeleteFunc(p.tables, func(t cdc.TableProgress) bool { return t.Table == table })
	p.tables = append(p.tables, cdc.TableProgress{Table: table, Estimated: estimated, Started: time.Now()})
	p.logged = time.Now()
}

// Add counts n rows of the table read, and logs the table's progress every
// progressLogInterval.
func (p *Progress) Add(table cdc.TableName, n int, log *slog.Logger) {
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
func (p *Progress) Finish(table cdc.TableName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := p.find(table); i >= 0 {
		p.tables[i].Finished = time.Now()
	}
}

// Tables returns the tables started so far, in the order they started.
func (p *Progress) Tables() []cdc.TableProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.tables)
}

func (p *Progress) find(table cdc.TableName) int {
	return slices.IndexFunc(p.tables, func(t cdc.TableProgress) bool { return t.Table == table })
}
