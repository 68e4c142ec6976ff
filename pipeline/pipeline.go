// Package pipeline runs one connector: it reads batches from a source, maps them to
// entity records, produces them, and stores the checkpoint once the brokers have
// acknowledged everything before it. Stages are joined by bounded channels and a
// bound on records in flight, so a slow broker slows the source instead of
// filling memory.
//
// It must never store, or acknowledge to the source, a position that has an
// unacknowledged record before it.
package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/metrics"
	"github.com/cdc-dev/cdc/sink"
)

// Defaults for Config fields left zero.
const (
	DefaultCheckpointInterval = time.Second
	DefaultShutdownTimeout    = 30 * time.Second
	// DefaultRecheckInterval is how often the mapped tables are read from the
	// catalog again (see cdc.Rechecker): a catalog query per table.
	DefaultRecheckInterval = 15 * time.Second
)

// CheckpointStore keeps the checkpoint between runs.
type CheckpointStore interface {
	// Save stores cp durably: once it returns nil, a crash loses nothing before
	// cp.Position. On error nothing is assumed stored.
	Save(cp cdc.Checkpoint) error
}

// Transactor commits records together with the checkpoint of what they hold:
// the exactly-once mode.
type Transactor interface {
	// Flush waits until every record handed to the producer since the last
	// commit is acknowledged or given up (their callbacks have returned).
	Flush(ctx context.Context) error
	// Commit commits what was sent since the last commit, with cp unless its
	// position is empty: a read_committed consumer sees all of it and the
	// checkpoint, or none. On error none of it counts as written.
	Commit(ctx context.Context, cp cdc.Checkpoint) error
	// Abort drops what was sent since the last commit and opens the next
	// transaction: the producer outlives the run, so that a restart keeps its
	// transactional id rather than taking it again. It returns once every
	// record's callback has returned.
	Abort() error
}

// Config wires one pipeline. Source, Entities, Producer and Checkpoints are required.
type Config struct {
	Source cdc.Source
	// Entities are mapped, each with its Framing (by entity name).
	Entities    []*mapping.Entity
	Framing     map[string]mapping.Framing
	Producer    *sink.Producer
	Checkpoints CheckpointStore
	// Transactions, if set, makes the pipeline exactly-once: the checkpoint
	// is committed with the records in one transaction every
	// CheckpointInterval, and Checkpoints is not used.
	Transactions Transactor
	// Filled names the entities whose topics were filled; it is stored with
	// each checkpoint (see cdc.Checkpoint).
	Filled []string
	// Connector names the connector in event headers (ce_source, ce_id).
	Connector string
	// DeadLetterTopic receives the dead letters of entities under the
	// dead_letter policy.
	DeadLetterTopic string
	// MaxMessageBytes is each topic's max.message.bytes (sink.DefaultMaxMessageBytes
	// for a topic not in it): a record larger is a value error, stopped or
	// sent to the dead-letter topic as the entity's on_error says.
	MaxMessageBytes map[string]int
	// CompactHeaders leaves out the record headers that are the same on every
	// record of a topic (see events.go).
	CompactHeaders bool
	// TransactionTopic, if set, receives a record at the end of each
	// transaction (see TransactionSchema), framed with TransactionFraming.
	TransactionTopic   string
	TransactionFraming mapping.Framing
	// HoldTransactionBytes bounds the memory of one transaction's records
	// held until its end (DefaultHoldTransactionBytes if zero).
	HoldTransactionBytes int
	// ResumeTransaction is the stored checkpoint's Transaction.
	ResumeTransaction *cdc.TransactionProgress
	// Metrics counts what the pipeline does (a set of its own if nil).
	Metrics *metrics.Metrics

	CheckpointInterval time.Duration
	// RecheckInterval is how often a source that is a cdc.Rechecker reads its
	// tables again, and the mapping checks that each entity's key still
	// identifies rows (DefaultRecheckInterval if zero).
	RecheckInterval time.Duration
	// ShutdownTimeout bounds how long a stop waits for in-flight records; what is
	// not acknowledged by then is sent again on the next start.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

// Run runs the pipeline from the position after `from` (empty: from scratch)
// until ctx ends, which is a clean stop (nil error) once in-flight records are
// acknowledged and the checkpoint stored, or until a failure, which is returned
// after the checkpoint of everything acknowledged so far is stored.
func Run(ctx context.Context, cfg Config, from cdc.Position) error {
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.RecheckInterval <= 0 {
		cfg.RecheckInterval = DefaultRecheckInterval
	}
	if cfg.HoldTransactionBytes <= 0 {
		cfg.HoldTransactionBytes = DefaultHoldTransactionBytes
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	countSkip := func(e *mapping.Entity, reason mapping.SkipReason) {
		c := cfg.Metrics.Entity(e.Name)
		if reason == mapping.SkipUnchanged {
			c.SkippedSame.Inc()
		} else {
			c.SkippedFiltered.Inc()
		}
	}
	r := &run{cfg: cfg, log: cfg.Logger, stored: from, storeNow: make(chan struct{}, 1),
		mapper: mapping.NewMapper(cfg.Entities, mapping.Options{Framing: cfg.Framing, OnSkip: countSkip})}
	r.work, r.stop = context.WithCancel(context.Background())
	defer r.stop()
	return r.run(ctx, from)
}

type run struct {
	cfg     Config
	log     *slog.Logger
	mapper  *mapping.Mapper
	tracker tracker
	// storeNow asks the checkpointer to store the acknowledged position at once.
	storeNow chan struct{}

	// work is canceled to stop reading and sending: on a failure, or when the
	// caller's context ends.
	work context.Context
	stop context.CancelFunc

	mu     sync.Mutex
	failed error

	aggregates *aggregates // nil without aggregate entities

	stored cdc.Position // owned by the checkpointer
}

// fail stops the run on its first failure, or on a later one that says
// another process took the connector over: no restart can help that one.
func (r *run) fail(err error) {
	r.mu.Lock()
	if r.failed == nil || (isFenced(err) && !isFenced(r.failed)) {
		r.failed = err
	}
	r.mu.Unlock()
	r.stop()
}

func isFenced(err error) bool {
	var fenced *sink.FencedError
	return errors.As(err, &fenced)
}

func (r *run) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *run) run(ctx context.Context, from cdc.Position) error {
	var err error
	if r.aggregates, err = newAggregates(r.work, &r.cfg); err != nil {
		return err
	}
	batches := make(chan cdc.Batch, 4)
	go func() {
		err := r.cfg.Source.Run(r.work, from, batches)
		if err != nil && r.work.Err() == nil {
			r.fail(err)
		}
		close(batches)
	}()
	if rechecker, ok := r.cfg.Source.(cdc.Rechecker); ok {
		go r.recheck(rechecker)
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		r.send(batches)
		if r.cfg.Transactions == nil || isFenced(r.err()) {
			r.cfg.Producer.Close() // returns once every record sent is acknowledged or given up
			return
		}
		if err := r.cfg.Transactions.Abort(); isFenced(err) {
			r.fail(err)
		}
	}()

	ticker := time.NewTicker(r.cfg.CheckpointInterval)
	defer ticker.Stop()
	stopping := ctx.Done()
	var deadline <-chan time.Time
	for {
		select {
		case <-ticker.C:
			r.checkpoint()
		case <-r.storeNow:
			r.checkpoint()
		case <-stopping:
			r.log.Info("stopping: waiting for in-flight records", "batches_in_flight", r.tracker.outstanding())
			r.stop()
			stopping, deadline = nil, time.After(r.cfg.ShutdownTimeout)
		case <-deadline:
			r.checkpoint()
			r.log.Warn("stopped before every in-flight record was acknowledged; they are sent again on the next start",
				"batches_in_flight", r.tracker.outstanding())
			return r.err()
		case <-sent:
			r.checkpoint()
			return r.err()
		}
	}
}

// recheck reads the source's tables again every RecheckInterval until the
// run stops, and stops it when they changed in a way the log does not show.
// A failure to read them is left to the stream, which meets the same
// database: only an answer stops the run.
func (r *run) recheck(source cdc.Rechecker) {
	tick := time.NewTicker(r.cfg.RecheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.work.Done():
			return
		case <-tick.C:
		}
		tables, err := source.Recheck(r.work)
		if err != nil && (cdc.IsTransient(err) || r.work.Err() != nil) {
			r.log.Debug("cannot read the tables from the catalog again", "err", err)
			continue
		}
		if err == nil {
			errs := make([]error, len(tables))
			for i, t := range tables {
				errs[i] = r.mapper.CheckKeys(t)
			}
			if r.aggregates != nil {
				errs = append(errs, r.aggregates.check(tables))
			}
			err = errors.Join(errs...)
		}
		if err != nil {
			r.fail(fmt.Errorf("the mapped tables changed in a way their log does not show, so cdc stopped rather than let a topic drift from its table:\n%w", err))
			return
		}
	}
}

// send maps each batch and hands its records to the producer, in log order.
// In exactly-once mode it also commits, between batches: every
// CheckpointInterval, at once when a batch asks for its position to be
// stored, and at the end of a clean stop.
func (r *run) send(batches <-chan cdc.Batch) {
	var mapped []mapping.Record
	ev := newEvents(r.cfg.Connector, r.cfg.DeadLetterTopic, r.cfg.Metrics)
	ev.compact = r.cfg.CompactHeaders
	tx := transactions{log: r.log, holdBytes: r.cfg.HoldTransactionBytes, topic: r.cfg.TransactionTopic, framing: r.cfg.TransactionFraming, resume: r.cfg.ResumeTransaction}
	storeNow := false // asked by a batch whose records wait for its transaction's end
	var commitTick <-chan time.Time
	if r.cfg.Transactions != nil {
		tick := time.NewTicker(r.cfg.CheckpointInterval)
		defer tick.Stop()
		commitTick = tick.C
	}
	uncommitted := false
	var ahead *cdc.Batch // read while the aggregates waited for more batches
	for {
		var b cdc.Batch
		if ahead != nil {
			b, ahead = *ahead, nil
		} else {
			select {
			case <-commitTick:
				// Not while roots wait for a transaction's end: the batches'
				// positions are held until they are recomputed.
				if uncommitted && r.work.Err() == nil && (r.aggregates == nil || r.aggregates.pending == 0) {
					r.commit()
					uncommitted = false
				}
				continue
			case batch, ok := <-batches:
				if !ok {
					if uncommitted && r.err() == nil && (r.aggregates == nil || r.aggregates.pending == 0) {
						r.commit() // a clean stop, or a snapshot-only run done
					}
					return
				}
				b = batch
			}
		}
		if r.work.Err() != nil {
			b.Release()
			continue // drain so the source can return
		}
		// The aggregates' records go first: the batch's own are mapped into
		// the arena after them, since theirs release it when acknowledged,
		// and the batch's position is stored only once they are.
		err := r.aggregate(ev, &tx, &b, batches, &ahead)
		for i := 0; err == nil && i < len(b.Changes); i++ {
			if mapped, err = r.mapper.Map(&b.Changes[i], mapped, &ev.arena); err != nil {
				r.fail(err)
			}
		}
		// The lag is measured from the newest commit; a marker says the source
		// had nothing newer when it sent it.
		var at time.Time
		if len(b.Changes) == 0 {
			at = time.Now()
		} else {
			at = b.Changes[len(b.Changes)-1].CommitTime
		}
		b.Release() // the records hold copies of what they need
		if err != nil {
			continue
		}
		open, ready := tx.leftOpen(mapped, &b)
		if ready == 0 && len(mapped) > 0 {
			// Everything waits for the transaction's end: the batch's position
			// is passed by the next one's.
			storeNow = storeNow || b.StoreNow
			continue
		}
		records, err := r.records(ev, &tx, mapped[:ready], open, b.InTransaction)
		if err != nil {
			r.fail(err) // nothing of the batch is sent
			continue
		}
		// The records' memory is reused once they, and every record before
		// them, are acknowledged: those held for their transaction's end,
		// carved before the mark, get memory of their own.
		// The batch's position lies past the records held: it is not stored.
		position := b.Position
		if ready < len(mapped) || (r.aggregates != nil && r.aggregates.pending > 0) {
			position = "" // its records, or its aggregates' records, are still to come
		}
		for i := ready; i < len(mapped); i++ {
			detach(&mapped[i])
		}
		mapped = append(mapped[:0], mapped[ready:]...)
		mark := ev.mark()
		e, urgent := r.tracker.add(position, len(records), b.StoreNow || storeNow, at, tx.progress(), func() { ev.release(mark) })
		storeNow = false
		// If the send is given up, the batch stays incomplete: its position is
		// never stored.
		_ = r.cfg.Producer.Send(r.work, records, func(err error) { r.acked(e, err) })
		uncommitted = r.cfg.Transactions != nil
		switch {
		case urgent && r.cfg.Transactions != nil:
			r.commit()
			uncommitted = false
		case urgent:
			r.askStore()
		}
	}
}

// aggregate collects the roots the batch's changes touch and, when they are
// due, recomputes and sends them.
func (r *run) aggregate(ev *events, tx *transactions, b *cdc.Batch, batches <-chan cdc.Batch, ahead **cdc.Batch) error {
	if r.aggregates == nil {
		return nil
	}
	var err error
	for i := 0; err == nil && i < len(b.Changes); i++ {
		err = r.aggregates.touch(&b.Changes[i])
	}
	if err == nil && r.aggregates.due(b, !r.aggregates.exactlyOnce && r.more(batches, ahead)) {
		err = r.aggregates.recompute(r.work, func(recs []mapping.Record) error { return r.sendAggregates(ev, tx, recs) })
	}
	if err != nil {
		r.fail(err)
	}
	return err
}

// more says whether another batch follows at once: one is in the channel,
// or arrives within aggregateWait (it is then read into ahead). A burst of
// small transactions, each its own batch, then shares one view.
func (r *run) more(batches <-chan cdc.Batch, ahead **cdc.Batch) bool {
	if len(batches) > 0 {
		return true
	}
	if r.aggregates.pending == 0 {
		return false
	}
	select {
	case b, ok := <-batches:
		if ok {
			*ahead = &b
		}
		return ok
	case <-time.After(aggregateWait):
		return false
	}
}

// sendAggregates sends the records of recomputed aggregates, which carry no
// position of their own. In exactly-once mode a long fan-out is committed
// as it goes, so that no Kafka transaction grows with it: the checkpoint
// committed stays before the changes that asked for it.
func (r *run) sendAggregates(ev *events, tx *transactions, mapped []mapping.Record) error {
	if len(mapped) == 0 {
		return r.work.Err()
	}
	records, err := r.records(ev, tx, mapped, "", false)
	if err != nil {
		return err
	}
	mark := ev.mark()
	e, _ := r.tracker.add("", len(records), false, time.Time{}, nil, func() { ev.release(mark) })
	if err := r.cfg.Producer.Send(r.work, records, func(err error) { r.acked(e, err) }); err != nil {
		return err
	}
	if r.cfg.Transactions != nil {
		r.aggregates.sent += len(records)
		if r.aggregates.sent >= aggregateCommitRecords {
			r.commit()
			r.aggregates.sent = 0
		}
	}
	return r.err()
}

// detach copies what a record holds of the events' arena.
func detach(rec *mapping.Record) {
	rec.Key = bytes.Clone(rec.Key)
	if rec.Value != nil {
		rec.Value = bytes.Clone(rec.Value)
	}
	if e := rec.Event; e != nil {
		detached := *e
		detached.ID, detached.Type = bytes.Clone(e.ID), bytes.Clone(e.Type)
		detached.Headers = slices.Clone(e.Headers)
		for i := range detached.Headers {
			detached.Headers[i].Value = bytes.Clone(detached.Headers[i].Value)
		}
		rec.Event = &detached
	}
}

// records builds the Kafka records of the mapped records, in log order,
// numbering those of each transaction, and after each transaction that ends
// among them, its record in the transaction topic. open is the transaction
// the batch leaves open, if inTransaction.
func (r *run) records(ev *events, tx *transactions, mapped []mapping.Record, open string, inTransaction bool) ([]sink.Record, error) {
	// ends says whether the run of records of transaction id ends it.
	ends := func(id string) bool { return id != "" && !(inTransaction && id == open) }
	closing := 0 // records of the transaction topic
	if tx.topic != "" {
		for i := range mapped {
			if id := mapped[i].Transaction; (i+1 == len(mapped) || mapped[i+1].Transaction != id) && ends(id) {
				closing++
			}
		}
	}
	records := ev.records.Take(len(mapped) + closing)[:0]
	now := time.Now() // the records' timestamp: the client would read the clock for each
	for start := 0; start < len(mapped); {
		id := mapped[start].Transaction
		end := start + 1
		for end < len(mapped) && mapped[end].Transaction == id {
			end++
		}
		ended := ends(id)
		index, count := 0, 0
		if id != "" {
			tx.begin(id)
			index = tx.open.Records
			if ended {
				count = index + end - start
			}
		}
		for i := start; i < end; i++ {
			rec := &mapped[i]
			if id != "" {
				index++
			}
			record := ev.record(rec, index, count)
			if size, limit := sink.RecordSize(&record), r.maxMessageBytes(record.Topic); size > limit {
				var err error
				if record, err = ev.tooLarge(rec, index, count, size, limit, r.maxMessageBytes(r.cfg.DeadLetterTopic)); err != nil {
					return nil, err
				}
			}
			if rec.DeadLetter != nil {
				r.log.Error("change sent to the dead-letter topic", "entity", rec.Entity.Name, "topic", r.cfg.DeadLetterTopic,
					"position", string(rec.Position), "reason", rec.DeadLetter.Reason)
			}
			if id != "" {
				tx.count(record.Topic)
			}
			record.Timestamp = now
			records = append(records, record)
		}
		if ended {
			if end, ok := tx.end(ev, mapped[end-1].Position, mapped[end-1].CommitTime); ok {
				end.Timestamp = now
				records = append(records, end)
			}
		}
		for i := start; i < end; i++ {
			mapped[i] = mapping.Record{} // the records hold what they need
		}
		start = end
	}
	return records, nil
}

// commit waits for the records sent, then commits them with the checkpoint
// of everything acknowledged (exactly-once mode). Only the send loop calls it.
func (r *run) commit() {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	defer cancel()
	if err := r.cfg.Transactions.Flush(ctx); err != nil {
		r.fail(cdc.Transient(err))
		return
	}
	if r.err() != nil {
		return // a record failed: nothing of this transaction may be committed
	}
	pos, at, progress := r.tracker.position()
	cp := cdc.Checkpoint{Entities: r.cfg.Filled, Catalog: r.catalog(), Transaction: progress}
	if pos != r.stored {
		cp.Position = pos
	}
	if err := r.cfg.Transactions.Commit(ctx, cp); err != nil {
		r.fail(failure(err))
		return
	}
	r.cfg.Metrics.Checkpointed(at, time.Now())
	if cp.Position != "" {
		r.stored = pos
		r.cfg.Source.Acknowledge(pos)
		r.log.Debug("transaction committed with its checkpoint", "position", string(pos))
	}
}

// failure classifies a failure of the brokers: transient (the connector is
// restarted from its checkpoint), unless another process took the connector over.
func failure(err error) error {
	if isFenced(err) {
		return err
	}
	return cdc.Transient(err)
}

func (r *run) acked(e *entry, err error) {
	switch {
	case err == nil: // most calls: isFenced's errors.As target would escape
	case isFenced(err):
		r.fail(err)
		return
	case sink.IsMessageTooLarge(err):
		// Checked before sending against the limits read at start: the
		// topic's limit was lowered since, and no retry can help.
		r.cfg.Metrics.Failed()
		r.fail(fmt.Errorf("the brokers refused a record as larger than its topic accepts (its max.message.bytes was lowered since cdc started?): raise the topic's max.message.bytes, then start cdc again: %w", err))
		return
	default:
		r.cfg.Metrics.Failed()
		r.fail(cdc.Transient(fmt.Errorf("the brokers did not accept a record within the retry time, so nothing after it is stored as done: %w", err)))
		return
	}
	r.cfg.Metrics.Acknowledged()
	if r.tracker.ack(e) {
		r.askStore()
	}
}

func (r *run) maxMessageBytes(topic string) int {
	if n, ok := r.cfg.MaxMessageBytes[topic]; ok {
		return n
	}
	return sink.DefaultMaxMessageBytes
}

// catalog is the source's catalog, stored with each checkpoint (see
// cdc.CatalogKeeper).
func (r *run) catalog() string {
	if keeper, ok := r.cfg.Source.(cdc.CatalogKeeper); ok {
		return keeper.Catalog()
	}
	return ""
}

func (r *run) askStore() {
	select {
	case r.storeNow <- struct{}{}:
	default: // already asked
	}
}

// checkpoint stores the acknowledged position if it moved, then lets the source
// release the log before it.
func (r *run) checkpoint() {
	if r.cfg.Transactions != nil {
		return // committed with the records, by the send loop
	}
	pos, at, progress := r.tracker.position()
	if pos == "" || pos == r.stored {
		r.cfg.Metrics.Checkpointed(at, time.Now()) // the stored one is still current
		return
	}
	if err := r.cfg.Checkpoints.Save(cdc.Checkpoint{Position: pos, Entities: r.cfg.Filled, Catalog: r.catalog(), Transaction: progress}); err != nil {
		r.fail(cdc.Transient(err)) // the brokers' trouble: the records before it are sent again
		return
	}
	r.stored = pos
	r.cfg.Metrics.Checkpointed(at, time.Now())
	r.cfg.Source.Acknowledge(pos)
	r.log.Debug("checkpoint stored", "position", string(pos))
}
