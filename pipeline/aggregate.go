package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/aggregate"
	"github.com/cdc-dev/cdc/mapping"
)

// maxPendingLookups bounds the roots collected before they are recomputed,
// inside a transaction too large to wait for its end.
const maxPendingLookups = 10000

// aggregateWait is how long touched roots wait for the next batch, when
// none is ready, before they are recomputed.
const aggregateWait = time.Millisecond

// maxRecomputeDelay bounds how long touched roots wait for more batches.
const maxRecomputeDelay = 100 * time.Millisecond

// aggregateCommitRecords is how many records of aggregates an exactly-once
// run sends before it commits, in the middle of a fan-out.
const aggregateCommitRecords = 10000

// aggregates recomputes the roots of aggregate entities that the changes of
// a run touch. Changes only name roots; at the end of each batch's last
// transaction the roots are read back, with their edges' rows, from one view
// of the database that includes every change read so far (the fence), and
// their records are sent before the batch's own: the checkpoint passes the
// batch only once they are acknowledged. A root's record is thus computed
// from a view that includes every change to its rows before the checkpoint
// it precedes, and views only move forward: a later record of a key is never
// computed from an older view.
type aggregates struct {
	view     cdc.ViewReader
	entities []*aggregate.Entity
	// definitions and framing are the entities' as configured: read only,
	// from the recheck's goroutine too.
	definitions []*mapping.Entity
	framing     map[string]mapping.Framing
	fence       cdc.Fence
	pending     int
	since       time.Time // when the first root pending was collected
	// exactlyOnce: every commit carries the checkpoint of what it commits,
	// so a batch's roots are never left for later batches (see due).
	exactlyOnce bool
	sent        int // records since the last commit (exactly-once)
}

// newAggregates compiles the aggregate entities against their tables as
// the catalog describes them; nil if there are none.
func newAggregates(ctx context.Context, cfg *Config) (*aggregates, error) {
	g := &aggregates{framing: cfg.Framing, exactlyOnce: cfg.Transactions != nil}
	for _, e := range cfg.Entities {
		if !e.IsAggregate() {
			continue
		}
		view, ok := cfg.Source.(cdc.ViewReader)
		if !ok {
			return nil, fmt.Errorf("%s: entity %q is an aggregate, and this source cannot read its tables back", e.Origin, e.Name)
		}
		g.view = view
		tables, err := cfg.Source.Describe(ctx, e.Tables())
		if err != nil {
			return nil, err
		}
		a, err := aggregate.New(e, cfg.Framing[e.Name], tables, aggregate.DefaultChunk, cfg.Metrics.Aggregate(e.Name))
		if err != nil {
			return nil, err
		}
		g.entities, g.definitions = append(g.entities, a), append(g.definitions, e)
	}
	if g.entities == nil {
		return nil, nil
	}
	// A view that cannot be opened (MySQL reports no snapshot position) is
	// found now, before anything is produced.
	if err := g.view.ReadView(ctx, cdc.Fence{}, func(cdc.View) error { return nil }); err != nil {
		return nil, fmt.Errorf("aggregate entities are read back from a view of the database, which cannot be opened: %w", err)
	}
	return g, nil
}

// check compiles the aggregates against their tables as the catalog
// describes them now (see cdc.Rechecker): a column they read changed in a
// way that no longer fits, and the views would read it as it was.
func (g *aggregates) check(tables []*cdc.Table) error {
	var errs []error
	for _, e := range g.definitions {
		if _, err := mapping.CompileAggregate(e, mapping.Described(tables), g.framing[e.Name]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// touch collects the roots a change touches, and its transaction for the fence.
func (g *aggregates) touch(ch *cdc.Change) error {
	for _, a := range g.entities {
		n, err := a.Touch(ch)
		if err != nil {
			return err
		}
		g.pending += n
	}
	if ch.Transaction != "" && (len(g.fence.Transactions) == 0 || g.fence.Transactions[len(g.fence.Transactions)-1] != ch.Transaction) {
		g.fence.Transactions = append(g.fence.Transactions, ch.Transaction)
	}
	if ch.Position != "" {
		g.fence.Position = ch.Position
	}
	return nil
}

// due says whether the roots collected are recomputed after a batch. They
// wait for the end of the batch's last transaction, and while more batches
// are ready (a backlog, a burst), so that one view serves many transactions,
// up to maxPendingLookups roots or maxRecomputeDelay. A batch whose position
// must be stored now (a snapshot's marker, a backfill's watermark) does not
// wait: the source may wait for it. Nor does one in exactly-once mode: the
// positions of batches whose roots wait are not stored, and a commit of
// their records without them would send them again after a crash.
func (g *aggregates) due(b *cdc.Batch, more bool) bool {
	if g.pending == 0 {
		if !b.InTransaction {
			g.fence = cdc.Fence{} // nothing to read for those transactions
		}
		return false
	}
	if g.since.IsZero() {
		g.since = time.Now()
	}
	if g.pending >= maxPendingLookups {
		return true
	}
	return !b.InTransaction && (b.StoreNow || !more || g.exactlyOnce || time.Since(g.since) >= maxRecomputeDelay)
}

// recompute reads the roots collected back from one view and hands their
// records to send, a chunk of roots at a time.
func (g *aggregates) recompute(ctx context.Context, send func([]mapping.Record) error) error {
	err := g.view.ReadView(ctx, g.fence, func(v cdc.View) error {
		for _, a := range g.entities {
			if err := a.Recompute(ctx, v, send); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	g.pending, g.fence, g.since = 0, cdc.Fence{}, time.Time{}
	return nil
}
