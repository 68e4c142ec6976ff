// Package metrics holds the connector's Prometheus metrics and its HTTP
// endpoints for operators: /metrics, /healthz (the process is alive) and
// /readyz (the connector is connected and moving data).
//
// Counters are resolved once per entity, so that counting a record costs an
// atomic add; gauges about the database's log are read from the source every
// poll interval, never at scrape time (a scrape must not load the database).
package metrics

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cdc-dev/cdc"
)

// Metrics is one connector's set of metrics.
type Metrics struct {
	Registry *prometheus.Registry

	events, tombstones, skipped, deadLetters *prometheus.CounterVec
	acknowledged, produceErrors, restarts    prometheus.Counter
	brokerErrors                             *prometheus.CounterVec

	mu       sync.Mutex
	entities map[string]*Entity

	caughtUp, stored atomic.Int64          // unix nanoseconds; 0: not yet
	sourceErr        atomic.Pointer[error] // the last log status reading's failure; nil: it succeeded
	progress         atomic.Pointer[cdc.ProgressReporter]
	readBack         atomic.Pointer[cdc.ReadBackReporter]
	held             atomic.Pointer[cdc.HeldReporter]

	behindBytes, timeToLoss, statusUp prometheus.Gauge
	leader                            prometheus.Gauge

	aggregatePending                                *prometheus.GaugeVec
	aggregateRoots, aggregateQueries, aggregateRows *prometheus.CounterVec
	standby                                         atomic.Bool
	lastWritten                                     int64
	lastPoll                                        time.Time
}

// Entity holds one entity's counters.
type Entity struct {
	ops                          [len(opNames)]prometheus.Counter // by cdc.Op
	Tombstones, DeadLetters      prometheus.Counter
	SkippedFiltered, SkippedSame prometheus.Counter
}

// Op returns the counter of records of an operation.
func (e *Entity) Op(op cdc.Op) prometheus.Counter { return e.ops[op] }

var opNames = [...]string{cdc.OpRead: "read", cdc.OpInsert: "insert", cdc.OpUpdate: "update", cdc.OpDelete: "delete"}

// New creates the metrics of a connector, registered with a registry of their
// own (with the Go runtime's and the process's collectors).
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(), entities: map[string]*Entity{}}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.Registry.MustRegister(c)
		return c
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.Registry.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		m.Registry.MustRegister(g)
		return g
	}
	m.events = counterVec("cdc_events_total", "Entity records handed to the producer, by entity and the operation of the change (read: snapshot).", "entity", "op")
	m.tombstones = counterVec("cdc_tombstones_total", "Tombstones handed to the producer (deletes, rows leaving the entity, key changes, soft deletes).", "entity")
	m.skipped = counterVec("cdc_changes_skipped_total", "Changes that produced no record for an entity: the row is outside it (filtered), or only columns it does not show changed (unchanged).", "entity", "reason")
	m.deadLetters = counterVec("cdc_dead_letters_total", "Changes sent to the dead-letter topic instead of the entity's.", "entity")
	m.acknowledged = counter("cdc_records_acknowledged_total", "Records every in-sync replica has acknowledged.")
	m.produceErrors = counter("cdc_produce_errors_total", "Records the brokers did not accept within the retry time (the connector restarts from its checkpoint on the first).")
	m.restarts = counter("cdc_restarts_total", "Times the connector failed transiently (connection lost, brokers unavailable) and was restarted from its checkpoint.")
	m.brokerErrors = counterVec("cdc_broker_request_errors_total", "Connections to brokers that failed, and requests or responses that failed on the wire, by stage (connect, write, read); the client retries them.", "stage")
	m.behindBytes = gauge("cdc_source_lag_bytes", "Log the database keeps for the connector: PostgreSQL WAL retained by the slot, MySQL binlog bytes after the stored position.")
	m.timeToLoss = gauge("cdc_time_to_data_loss_seconds", "Estimated time until the database discards log the connector still needs (+Inf: no limit applies; 0: already lost).")
	m.statusUp = gauge("cdc_source_status_up", "1 if the last read of the database's log status succeeded, 0 otherwise.")
	m.leader = gauge("cdc_leader", "1 while this instance runs the connector; 0 while it stands by for another instance of the same connector (standby.enabled).")
	m.aggregatePending = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdc_aggregate_pending_roots",
		Help: "Roots of an aggregate entity that changes touched and that are not recomputed yet (a dimension change fanning out to many roots shows here)."}, []string{"entity"})
	m.Registry.MustRegister(m.aggregatePending)
	m.aggregateRoots = counterVec("cdc_aggregate_roots_total", "Roots of an aggregate entity recomputed from the database (each gives a record or a tombstone).", "entity")
	m.aggregateQueries = counterVec("cdc_aggregate_queries_total", "Queries an aggregate entity ran to recompute its roots (roots, then each edge's rows).", "entity")
	m.aggregateRows = counterVec("cdc_aggregate_rows_read_total", "Rows an aggregate entity read to recompute its roots.", "entity")
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cdc_source_lag_seconds",
			Help: "Now minus the commit time of the last change acknowledged by the brokers (or of the last idle heartbeat)."},
			func() float64 { return since(m.caughtUp.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cdc_checkpoint_age_seconds",
			Help: "Seconds since the stored checkpoint last covered everything acknowledged."},
			func() float64 { return since(m.stored.Load()) }),
		progressCollector{m},
	)
	return m
}

func since(unixNano int64) float64 {
	if unixNano == 0 {
		return math.NaN() // not known yet
	}
	return time.Since(time.Unix(0, unixNano)).Seconds()
}

// Entity returns the counters of an entity.
func (m *Metrics) Entity(name string) *Entity {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entities[name]; ok {
		return e
	}
	e := &Entity{
		Tombstones:      m.tombstones.WithLabelValues(name),
		DeadLetters:     m.deadLetters.WithLabelValues(name),
		SkippedFiltered: m.skipped.WithLabelValues(name, "filtered"),
		SkippedSame:     m.skipped.WithLabelValues(name, "unchanged"),
	}
	for op, n := range opNames {
		if n != "" {
			e.ops[op] = m.events.WithLabelValues(name, n)
		}
	}
	m.entities[name] = e
	return e
}

// Restarted counts a restart of the connector after a transient failure.
func (m *Metrics) Restarted() { m.restarts.Inc() }

// Aggregate returns the counters of an aggregate entity.
func (m *Metrics) Aggregate(name string) Aggregate {
	return Aggregate{Pending: m.aggregatePending.WithLabelValues(name), Roots: m.aggregateRoots.WithLabelValues(name),
		Queries: m.aggregateQueries.WithLabelValues(name), Rows: m.aggregateRows.WithLabelValues(name)}
}

// Aggregate holds an aggregate entity's counters.
type Aggregate struct {
	Pending              prometheus.Gauge
	Roots, Queries, Rows prometheus.Counter
}

// Acknowledged counts a record acknowledged by the brokers; Failed one they refused.
func (m *Metrics) Acknowledged() { m.acknowledged.Inc() }
func (m *Metrics) Failed()       { m.produceErrors.Inc() }

// BrokerError counts a failed connection, request or response (stage connect,
// write or read) that the Kafka client retries.
func (m *Metrics) BrokerError(stage string) { m.brokerErrors.WithLabelValues(stage).Inc() }

// Checkpointed records that everything up to a change committed at caughtUp
// (zero: unknown) is acknowledged and stored, at storedAt.
func (m *Metrics) Checkpointed(caughtUp, storedAt time.Time) {
	if !caughtUp.IsZero() {
		m.caughtUp.Store(caughtUp.UnixNano())
	}
	m.stored.Store(storedAt.UnixNano())
}

// Leading says whether this instance runs the connector (true) or stands
// by for another instance of it: cdc_leader, and what /readyz says.
func (m *Metrics) Leading(leading bool) {
	m.standby.Store(!leading)
	if leading {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}

// WatchSource reports the source's snapshot progress and, every interval
// until ctx ends, its log status, if the source can tell them.
func (m *Metrics) WatchSource(ctx context.Context, src cdc.Source, interval time.Duration, log *slog.Logger) {
	if p, ok := src.(cdc.ProgressReporter); ok {
		m.progress.Store(&p)
	}
	if r, ok := src.(cdc.ReadBackReporter); ok {
		m.readBack.Store(&r)
	}
	if h, ok := src.(cdc.HeldReporter); ok {
		m.held.Store(&h)
	}
	r, ok := src.(cdc.LogReporter)
	if !ok {
		return
	}
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		failing := false
		for {
			st, err := r.LogStatus(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				m.statusUp.Set(0)
				m.sourceErr.Store(&err)
				if !failing { // once per state change, not per attempt
					log.Warn("cannot read the database's log status; the lag and time-to-data-loss metrics are stale", "err", err)
				}
				failing = true
			case err == nil:
				// The readings first: a scrape that sees the status up sees them.
				m.updateLog(st, time.Now())
				m.statusUp.Set(1)
				m.sourceErr.Store(nil)
				if failing {
					log.Info("reading the database's log status again")
				}
				failing = false
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// SourceError says why the database did not answer the last reading of its
// log status; nil if it did (or the source reports none).
func (m *Metrics) SourceError() error {
	if err := m.sourceErr.Load(); err != nil {
		return *err
	}
	return nil
}

// updateLog sets the log gauges. The time to data loss is the least of: the
// safe bytes left at the measured write rate, and the age limit minus the
// connector's lag.
func (m *Metrics) updateLog(st cdc.LogStatus, now time.Time) {
	m.behindBytes.Set(float64(st.BehindBytes))
	ttl := math.Inf(1)
	if st.SafeBytes >= 0 && st.WrittenBytes > 0 && !m.lastPoll.IsZero() {
		if rate := float64(st.WrittenBytes-m.lastWritten) / now.Sub(m.lastPoll).Seconds(); rate > 0 {
			ttl = min(ttl, float64(st.SafeBytes)/rate)
		}
	}
	if st.KeptFor > 0 {
		lag := since(m.caughtUp.Load())
		if math.IsNaN(lag) {
			lag = 0
		}
		ttl = min(ttl, max(st.KeptFor.Seconds()-lag, 0))
	}
	if st.Lost {
		ttl = 0
	}
	m.timeToLoss.Set(ttl)
	m.lastWritten, m.lastPoll = st.WrittenBytes, now
}

// progressCollector reads the snapshot's progress at scrape time (memory
// only), from the source last watched.
type progressCollector struct{ m *Metrics }

var (
	snapshotRows      = prometheus.NewDesc("cdc_snapshot_rows", "Rows of the table read by the snapshot so far.", []string{"table"}, nil)
	snapshotEstimated = prometheus.NewDesc("cdc_snapshot_rows_estimated", "The catalog's estimate of the table's rows when its snapshot started.", []string{"table"}, nil)
	snapshotDone      = prometheus.NewDesc("cdc_snapshot_finished", "1 once the table's snapshot is read.", []string{"table"}, nil)
)

func (progressCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- snapshotRows
	ch <- snapshotEstimated
	ch <- snapshotDone
	ch <- readBackQueries
	ch <- readBackRows
	ch <- heldBytes
}

var (
	readBackQueries = prometheus.NewDesc("cdc_source_read_back_queries_total", "Queries that read rows back from the tables for values the log left out.", nil, nil)
	readBackRows    = prometheus.NewDesc("cdc_source_read_back_rows_total", "Rows read back from the tables for values the log left out.", nil, nil)
	heldBytes       = prometheus.NewDesc("cdc_source_held_transaction_bytes", "Bytes of transactions the database streams before their commit, held until it: in memory, or on disk past source.postgres.streaming_memory_mib.", []string{"where"}, nil)
)

func (c progressCollector) Collect(ch chan<- prometheus.Metric) {
	if r := c.m.readBack.Load(); r != nil {
		queries, rows := (*r).ReadBack()
		ch <- prometheus.MustNewConstMetric(readBackQueries, prometheus.CounterValue, float64(queries))
		ch <- prometheus.MustNewConstMetric(readBackRows, prometheus.CounterValue, float64(rows))
	}
	if h := c.m.held.Load(); h != nil {
		memory, disk := (*h).Held()
		ch <- prometheus.MustNewConstMetric(heldBytes, prometheus.GaugeValue, float64(memory), "memory")
		ch <- prometheus.MustNewConstMetric(heldBytes, prometheus.GaugeValue, float64(disk), "disk")
	}
	src := c.m.progress.Load()
	if src == nil {
		return
	}
	for _, t := range (*src).SnapshotProgress() {
		name := t.Table.String()
		done := 0.0
		if !t.Finished.IsZero() {
			done = 1
		}
		ch <- prometheus.MustNewConstMetric(snapshotRows, prometheus.GaugeValue, float64(t.Rows), name)
		ch <- prometheus.MustNewConstMetric(snapshotEstimated, prometheus.GaugeValue, float64(t.Estimated), name)
		ch <- prometheus.MustNewConstMetric(snapshotDone, prometheus.GaugeValue, done, name)
	}
}
