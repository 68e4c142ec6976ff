package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/metrics"
	"github.com/cdc-dev/cdc/pipeline"
	"github.com/cdc-dev/cdc/sink"
)

// configFlag parses a command's flags, of which --config is required.
func configFlag(cmd string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (string, error) {
	fs := flag.NewFlagSet("cdc "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `file` (see config.example.yaml)")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return "", errUsage
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cdc %s: --config FILE is required, and nothing else\n", cmd)
		fs.Usage()
		return "", errUsage
	}
	return *path, nil
}

// loadFromFlags parses a command's flags and loads its --config.
func loadFromFlags(cmd string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*Config, error) {
	path, err := configFlag(cmd, args, stderr, extra)
	if err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// backfillAdded asks the source to backfill, while it streams, the entities
// configured after the connector's snapshot (their topics hold none of the
// rows that did not change since), and returns the entities the checkpoint
// is to list. With snapshot.mode never, or a source that cannot, they only
// get changes from now on.
func backfillAdded(cfg *Config, src cdc.Source, entities []*mapping.Entity, cp cdc.Checkpoint, log *slog.Logger) ([]string, error) {
	// An outbox's rows were published when inserted: there is nothing to fill.
	added := backfillOf(entities, func(e *mapping.Entity) bool { return !slices.Contains(cp.Entities, e.Name) && e.Outbox == nil })
	if len(added.Entities) == 0 || cfg.Snapshot.Mode == string(cdc.SnapshotOnly) {
		return cp.Entities, nil
	}
	backfiller, ok := src.(cdc.Backfiller)
	if cfg.Snapshot.Mode == string(cdc.SnapshotNever) || !ok {
		log.Warn("entities added after the initial snapshot: their topics receive changes from now on, but rows that did not change are not in them (snapshot.mode never, or a source without online backfill)",
			"entities", strings.Join(added.Entities, ","))
		return cp.Entities, nil
	}
	if err := backfiller.Backfill(added); err != nil {
		return nil, err
	}
	log.Info("entities added after the initial snapshot are backfilled while streaming", "entities", strings.Join(added.Entities, ","))
	return append(slices.Clone(cp.Entities), added.Entities...), nil
}

// backfillOf is the backfill of the entities wanted: they and their tables
// (of an aggregate, its root table: each root read is computed whole).
func backfillOf(entities []*mapping.Entity, wanted func(*mapping.Entity) bool) cdc.Backfill {
	var b cdc.Backfill
	for _, e := range entities {
		if wanted(e) {
			b.Entities = append(b.Entities, e.Name)
			if !slices.Contains(b.Tables, e.Table) {
				b.Tables = append(b.Tables, e.Table)
			}
		}
	}
	slices.SortFunc(b.Tables, func(a, b cdc.TableName) int { return strings.Compare(a.String(), b.String()) })
	return b
}

func runCommand(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := loadFromFlags("run", args, stderr, nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	err = superviseDaemon(ctx, cfg, log, daemonOptions{})
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		log.Info("stopped")
		return nil
	}
	if err != nil && cfg.Log.Format == "json" {
		// main prints the error as text; a JSON log gets it as a record too,
		// with its fix as an attribute (see problemHandler).
		log.Error("stopped: the connector needs its operator", "err", err)
	}
	return err
}

// logStatusInterval is how often the database's log status is read for the
// lag-in-bytes and time-to-data-loss metrics: a catalog query, cheap but not free.
const logStatusInterval = 15 * time.Second

// daemonOptions vary runDaemon between commands.
type daemonOptions struct {
	// watchSnapshot, if set, is given the source's snapshot progress.
	watchSnapshot func(cdc.ProgressReporter)

	// Set by superviseDaemon for each attempt.
	metrics *metrics.Metrics
	// ready, if set, is given the attempt's readiness check once it has one.
	ready func(func(context.Context) error)
	// reached is called once the database and the brokers have answered.
	reached func()
	// running is called when the pipeline starts: everything was checked.
	running func()
	// transactional holds the exactly-once producer from one attempt to the
	// next (see sink.Producer.AbortTransaction); nil before the first.
	transactional **sink.Producer
	// attempt runs the connector once (runDaemon if nil): tests of the
	// supervisor replace it.
	attempt func(context.Context, *Config, *slog.Logger, daemonOptions) error
}

// Restarts after a transient failure wait from firstRetryDelay, doubling up
// to maxRetryDelay, each wait drawn at random from its upper half so that
// connectors restarting together do not hit the database in step.
const (
	firstRetryDelay = time.Second
	maxRetryDelay   = 30 * time.Second
)

// superviseDaemon runs the connector and restarts it from its stored
// checkpoint after a transient failure (a connection to the database or the
// brokers lost, a server restarting), for as long as it takes. Any other
// failure is returned: it needs the operator. A transient failure before the
// database and the brokers first answered is returned too: a server that was
// never reached is most often a mistake in the configuration; but a database
// that answers it is shutting down or starting up was reached, and is waited
// for.
//
// The metrics and the HTTP endpoints outlive the attempts: /readyz answers 503
// while the connector waits to restart, and cdc_restarts_total counts restarts.
//
// With standby.enabled, the instances of the connector elect their leader
// through Kafka (see sink.Kafka.Lead): this one runs the connector only
// while it leads, and stands by otherwise.
func superviseDaemon(ctx context.Context, cfg *Config, log *slog.Logger, opts daemonOptions) error {
	m := metrics.New()
	var current atomic.Pointer[func(context.Context) error]
	waiting := func(context.Context) error { return errors.New("the connector is starting") }
	current.Store(&waiting)
	if cfg.HTTP.Listen != "off" {
		ready := func(ctx context.Context) error { return (*current.Load())(ctx) }
		if err := m.Serve(ctx, cfg.HTTP.Listen, ready, log.With("component", "http")); err != nil {
			return err
		}
	}
	opts.metrics = m
	opts.ready = func(f func(context.Context) error) { current.Store(&f) }
	var transactional *sink.Producer
	opts.transactional = &transactional
	closeProducer := func() {
		if transactional != nil {
			transactional.Close()
			transactional = nil
		}
	}
	defer closeProducer()
	attempts := func(ctx context.Context) error {
		current.Store(&waiting)
		return runAttempts(ctx, cfg, log, opts, m, func(f func(context.Context) error) { current.Store(&f) })
	}
	if !cfg.Standby.Enabled {
		m.Leading(true)
		return attempts(ctx)
	}
	// Several instances: the connector's group elects the one that runs it.
	m.Leading(false)
	standingBy := func(context.Context) error { return nil }
	current.Store(&standingBy)
	k, err := await(ctx, log, "reach the Kafka brokers", func(ctx context.Context) (*sink.Kafka, error) {
		kc, err := kafkaConfig(cfg, log)
		if err != nil {
			return nil, err
		}
		return sink.Dial(ctx, kc, log.With("component", "standby"))
	}, func(k *sink.Kafka) { k.Close() })
	if err != nil {
		return err
	}
	defer k.Close()
	return k.Lead(ctx, sink.LeadOptions{Group: "cdc-" + cfg.Name, SessionTimeout: cfg.Standby.sessionTimeout, Log: log.With("component", "standby"),
		OnChange: func(leading bool) {
			m.Leading(leading)
			if !leading {
				current.Store(&standingBy)
			}
		}}, func(ctx context.Context) error {
		err := attempts(ctx)
		// A producer kept for the next attempt is not kept for the next
		// leadership: another leader may have taken its id meanwhile.
		closeProducer()
		if ctx.Err() != nil {
			return nil // the leadership ended: stand by
		}
		return err
	})
}

// runAttempts runs the connector, and restarts it from its stored checkpoint
// after a transient failure (see superviseDaemon), until ctx ends or a
// failure needs the operator. notReady sets what /readyz says meanwhile.
func runAttempts(ctx context.Context, cfg *Config, log *slog.Logger, opts daemonOptions, m *metrics.Metrics, notReady func(func(context.Context) error)) error {
	reached := false
	opts.reached = func() { reached = true }
	runOnce := opts.attempt
	if runOnce == nil {
		runOnce = runDaemon
	}
	var failing error // the failure being retried, as last logged
	delay := firstRetryDelay
	for attempt := 1; ; attempt++ {
		var began time.Time
		opts.running = func() {
			began = time.Now()
			if failing != nil {
				log.Info("connector running again", "attempt", attempt)
				failing = nil
			}
		}
		err := runOnce(ctx, cfg, log, opts)
		if err == nil || ctx.Err() != nil || !cdc.IsTransient(err) || !reached && !cdc.IsRestarting(err) {
			return err
		}
		if !began.IsZero() && time.Since(began) > maxRetryDelay {
			delay = firstRetryDelay // it ran for a while: a new failure, not the same one again
		}
		wait := delay/2 + rand.N(delay/2+1)
		notReady(func(context.Context) error { return fmt.Errorf("restarting after a transient failure: %w", err) })
		m.Restarted()
		// Once per state change, not per attempt: the same failure again is a debug line.
		if failing == nil || failing.Error() != err.Error() {
			log.Warn("transient failure: restarting from the last stored checkpoint", "err", err, "retry_in", wait.Round(time.Millisecond))
		} else {
			log.Debug("still failing; restarting again", "err", err, "attempt", attempt, "retry_in", wait.Round(time.Millisecond))
		}
		failing = err
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// openProducer starts a producer. In exactly-once mode it takes the
// connector's transactional id before the first checkpoint is read, so that
// no older process can commit after that; the caller keeps it from one
// attempt to the next, so that it is not taken again (see
// sink.Producer.AbortTransaction). One id per connector: a second process
// with the same name fences the first.
func openProducer(k *sink.Kafka, cfg *Config, m *metrics.Metrics, limits map[string]int) (*sink.Producer, error) {
	opts := sink.ProducerOptions{OnBrokerError: m.BrokerError, MaxMessageBytes: limits}
	if cfg.transactional() {
		opts.TransactionalID = "cdc-" + cfg.Name
	}
	return k.NewProducer(opts)
}

// transactionFraming is the transaction topic's key in the framing map,
// which no entity's name can be ("" is refused).
const transactionFraming = ""

// entityTopics returns the topics of the table entities, which must be
// compacted, and those of events (outbox routes, and the dead letters if an
// entity sends any), kept by time.
func entityTopics(cfg *Config, entities []*mapping.Entity) (tables, events []string) {
	for _, e := range entities {
		if e.Outbox != nil {
			events = append(events, e.Topic)
		} else {
			tables = append(tables, e.Topic)
		}
	}
	if slices.ContainsFunc(entities, func(e *mapping.Entity) bool { return e.OnError == mapping.OnErrorDeadLetter }) {
		events = append(events, cfg.Kafka.DeadLetterTopic)
	}
	return tables, events
}

// runDaemon checks everything that can be checked before producing anything,
// then runs the pipeline until ctx ends or it fails (or, in snapshot mode
// only, until the snapshot is stored).
func runDaemon(ctx context.Context, cfg *Config, log *slog.Logger, opts daemonOptions) error {
	ctx, cancel := context.WithCancel(ctx) // ends what this attempt started
	defer cancel()
	c, err := openConnector(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.checkDatabase(ctx); err != nil {
		return fmt.Errorf("the database is not ready for cdc:\n%w", err)
	}
	if err := c.checkMappings(ctx); err != nil {
		return err
	}
	if cfg.Kafka.Version != "" {
		log.Warn("kafka.version is no longer used: cdc asks the brokers which protocol versions they speak; remove it")
	}
	if err := c.dialBrokers(ctx); err != nil {
		return err
	}
	entities, src, k := c.entities, c.src, c.kafka
	tables, events := entityTopics(cfg, entities)
	limits, err := await(ctx, log, "create and check the topics", func(context.Context) (map[string]int, error) {
		if err := k.EnsureTopics(tables); err != nil {
			return nil, err
		}
		for _, topic := range events {
			if err := k.EnsureEventTopic(topic); err != nil {
				return nil, err
			}
		}
		if topic := cfg.Kafka.TransactionTopic; topic != "" {
			if err := k.EnsureTransactionTopic(topic); err != nil {
				return nil, err
			}
		}
		return k.MaxMessageBytes(append(tables, events...))
	}, nil)
	if err != nil {
		return err
	}
	framing, err := await(ctx, log, "register the schemas", func(ctx context.Context) (map[string]mapping.Framing, error) {
		out := map[string]mapping.Framing{}
		for _, e := range entities {
			keySchema, _ := e.KeySchema() // checked by mappingEntities
			key, value, err := k.Framing(ctx, e.Topic, keySchema, e.Schema)
			if err != nil {
				return nil, fmt.Errorf("entity %q: %w", e.Name, err)
			}
			out[e.Name] = mapping.Framing{Key: key, Value: value}
		}
		if topic := cfg.Kafka.TransactionTopic; topic != "" {
			key, value, err := k.Framing(ctx, topic, pipeline.TransactionKeySchema, pipeline.TransactionSchema)
			if err != nil {
				return nil, fmt.Errorf("transaction topic %s: %w", topic, err)
			}
			out[transactionFraming] = mapping.Framing{Key: key, Value: value}
		}
		return out, nil
	}, nil)
	if err != nil {
		return err
	}
	// The database, the brokers and the registry answered: a failure to
	// reach them from now on is waited out, not a mistake in the configuration.
	opts.reached()
	store, err := await(ctx, log, "open the checkpoint store", func(context.Context) (*sink.CheckpointStore, error) {
		return k.Checkpoints(cfg.Name)
	}, func(s *sink.CheckpointStore) { s.Close() })
	if err != nil {
		return err
	}
	defer store.Close()
	m := opts.metrics
	var transactions pipeline.Transactor
	producer := *opts.transactional
	if !cfg.transactional() || producer == nil || producer.Closed() {
		producer, err = await(ctx, log, "start the Kafka producer", func(context.Context) (*sink.Producer, error) {
			return openProducer(k, cfg, m, limits)
		}, func(p *sink.Producer) { p.Close() })
		if err != nil {
			return err
		}
		if cfg.transactional() {
			*opts.transactional = producer
		}
	}
	if cfg.transactional() {
		transactions = sink.Transactions{Producer: producer, Store: store}
	} else {
		defer producer.Close() // the pipeline closes it first, once everything is acknowledged
	}
	cp, found, err := store.Load(ctx)
	if err != nil {
		return err
	}
	names := make([]string, len(entities))
	for i, e := range entities {
		names[i] = e.Name
	}
	if found {
		if names, err = backfillAdded(cfg, src, entities, cp, log); err != nil {
			return err
		}
		if keeper, ok := src.(cdc.CatalogKeeper); ok {
			keeper.ResumeCatalog(cp.Catalog)
		}
	}
	if p, ok := src.(cdc.ProgressReporter); ok && opts.watchSnapshot != nil {
		opts.watchSnapshot(p)
	}
	m.WatchSource(ctx, src, logStatusInterval, log.With("component", "metrics"))
	opts.ready(func(ctx context.Context) error {
		if err := producer.Ping(ctx); err != nil {
			return fmt.Errorf("no Kafka broker answers: %w", err)
		}
		if err := m.SourceError(); err != nil {
			return fmt.Errorf("the database does not answer: %w", err)
		}
		return nil
	})
	log.Info("starting", "source", cfg.Source.Kind, "entities", len(entities), "resume_from", string(cp.Position), "exactly_once", cfg.Kafka.ExactlyOnce, "transactional", cfg.transactional())
	opts.running()
	return pipeline.Run(ctx, pipeline.Config{
		Source: src, Entities: entities, Framing: framing, Producer: producer, Checkpoints: store, Transactions: transactions, Filled: names,
		Connector: cfg.Name, DeadLetterTopic: cfg.Kafka.DeadLetterTopic, MaxMessageBytes: limits, Metrics: m,
		CompactHeaders: cfg.Kafka.Headers == "compact", TransactionTopic: cfg.Kafka.TransactionTopic, TransactionFraming: framing[transactionFraming], ResumeTransaction: cp.Transaction,
		Logger: log.With("component", "pipeline"),
	}, cp.Position)
}
