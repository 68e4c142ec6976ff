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
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/metrics"
	"github.com/cdc-dev/cdc/pipeline"
	"github.com/cdc-dev/cdc/sink"
	"github.com/cdc-dev/cdc/sources/mysql"
	"github.com/cdc-dev/cdc/sources/postgres"
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

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("connector", cfg.Name)
}

// backfillAdded asks the source to backfill, while it streams, the entities
// configured after the connector's snapshot (their topics hold none of the
// rows that did not change since), and returns the entities the checkpoint
// is to list. With snapshot.mode never, or a source that cannot, they only
// get changes from now on.
func backfillAdded(cfg *Config, src cdc.Source, entities []*mapping.Entity, cp cdc.Checkpoint, log *slog.Logger) ([]string, error) {
	added := backfillOf(entities, func(e *mapping.Entity) bool { return !slices.Contains(cp.Entities, e.Name) })
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

// backfillOf is the backfill of the entities wanted: they and their tables.
func backfillOf(entities []*mapping.Entity, wanted func(*mapping.Entity) bool) cdc.Backfill {
	var b cdc.Backfill
	var chosen []*mapping.Entity
	for _, e := range entities {
		if wanted(e) {
			chosen = append(chosen, e)
			b.Entities = append(b.Entities, e.Name)
		}
	}
	b.Tables = sortedTables(mapping.NewMapper(chosen))
	return b
}

// openSource connects to the configured database.
func openSource(ctx context.Context, cfg *Config, tables []cdc.TableName, log *slog.Logger) (cdc.Source, error) {
	switch cfg.Source.Kind {
	case "postgres":
		return postgres.New(ctx, postgres.Config{
			DSN: cfg.Source.DSN, Slot: cfg.Source.Postgres.Slot, Publication: cfg.Source.Postgres.Publication,
			Tables: tables, Entities: entitiesByTable(cfg), Snapshot: cdc.SnapshotMode(cfg.Snapshot.Mode), ChunkSize: cfg.Snapshot.ChunkSize,
			BackfillChunkSize: cfg.Snapshot.BackfillChunkSize, Parallelism: cfg.Snapshot.Parallelism,
			HeartbeatMessageInterval: cfg.Source.Postgres.heartbeatMessageEvery, ApplicationName: "cdc " + cfg.Name,
			Logger: log.With("component", "source"),
		})
	case "mysql":
		watermarks, _ := cdc.ParseTableName(cfg.Source.MySQL.WatermarkTable) // checked, or empty
		var cascades []cdc.TableName
		for _, t := range cfg.Source.MySQL.AcceptUnloggedCascades {
			name, _ := cdc.ParseTableName(t) // checked
			cascades = append(cascades, name)
		}
		tlsConfig, err := tlsFor("source.mysql.tls", cfg.Source.MySQL.TLS, log)
		if err != nil {
			return nil, err
		}
		return mysql.New(ctx, mysql.Config{
			AcceptUnloggedCascades: cascades, TLS: tlsConfig,
			DSN: cfg.Source.DSN, ServerID: cfg.Source.MySQL.ServerID, Name: cfg.Name, Tables: tables,
			Snapshot: cdc.SnapshotMode(cfg.Snapshot.Mode), ChunkSize: cfg.Snapshot.ChunkSize,
			BackfillChunkSize: cfg.Snapshot.BackfillChunkSize, Parallelism: cfg.Snapshot.Parallelism, UseGTID: *cfg.Source.MySQL.GTID,
			ZeroDates: mysql.ZeroDates(cfg.Source.MySQL.ZeroDates), WatermarkTable: watermarks, Logger: log.With("component", "source"),
		})
	}
	return nil, fmt.Errorf("source kind %q is not supported", cfg.Source.Kind)
}

// entitiesByTable names the configured entities of each table.
func entitiesByTable(cfg *Config) map[cdc.TableName][]string {
	byTable := map[cdc.TableName][]string{}
	for _, e := range cfg.Entities {
		if name, err := cdc.ParseTableName(e.Table); err == nil {
			byTable[name] = append(byTable[name], e.Name)
		}
	}
	return byTable
}

// kafkaConfig is the sink's configuration, with the TLS and SASL settings
// built (log, if set, gets the warnings of settings that verify nothing).
func kafkaConfig(cfg *Config, log *slog.Logger) (sink.Config, error) {
	c := sink.Config{
		Brokers: cfg.Kafka.Brokers, ClientID: "cdc-" + cfg.Name,
		Partitions: cfg.Kafka.Topic.Partitions, ReplicationFactor: cfg.Kafka.Topic.ReplicationFactor,
		CheckpointTopic: cfg.Kafka.CheckpointTopic, Compression: cfg.Kafka.Compression,
	}
	var err error
	if c.TLS, err = tlsFor("kafka.tls", cfg.Kafka.TLS, log); err != nil {
		return c, err
	}
	if c.SASL, err = saslMechanism(cfg.Kafka.SASL); err != nil {
		return c, err
	}
	if r := cfg.Kafka.SchemaRegistry; r != nil {
		c.Registry = sink.Registry{URL: r.URL, Username: r.Username, Password: r.Password, Token: r.Token}
		if c.Registry.TLS, err = tlsFor("kafka.schema_registry.tls", r.TLS, log); err != nil {
			return c, err
		}
	}
	return c, nil
}

// dialKafka connects to the configured cluster.
func dialKafka(ctx context.Context, cfg *Config, log *slog.Logger) (*sink.Kafka, error) {
	kc, err := kafkaConfig(cfg, log)
	if err != nil {
		return nil, err
	}
	return sink.Dial(ctx, kc, log.With("component", "sink"))
}

// sortedTables lists the mapped tables in a stable order (snapshots follow it).
func sortedTables(m *mapping.Mapper) []cdc.TableName {
	tables := m.Tables()
	sort.Slice(tables, func(i, j int) bool { return tables[i].String() < tables[j].String() })
	return tables
}

// openMapped builds the configured entities and their mapper, and connects
// to the database of their tables.
func openMapped(ctx context.Context, cfg *Config, log *slog.Logger) ([]*mapping.Entity, *mapping.Mapper, cdc.Source, error) {
	entities, err := cfg.mappingEntities()
	if err != nil {
		return nil, nil, nil, err
	}
	mapper := mapping.NewMapper(entities)
	src, err := openSource(ctx, cfg, sortedTables(mapper), log)
	if err != nil {
		return nil, nil, nil, err
	}
	return entities, mapper, src, nil
}

// compileAll checks every mapping against the tables as the catalog has them,
// and that every entity's key identifies its table's rows.
func compileAll(ctx context.Context, src cdc.Source, m *mapping.Mapper) error {
	tables, err := src.Describe(ctx, sortedTables(m))
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tables {
		if _, err := m.Compile(t); err != nil {
			errs = append(errs, err)
		}
		if err := m.CheckKeys(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
// never reached is most often a mistake in the configuration.
//
// The metrics and the HTTP endpoints outlive the attempts: /readyz answers 503
// while the connector waits to restart, and cdc_restarts_total counts restarts.
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
	defer func() {
		if transactional != nil {
			transactional.Close()
		}
	}()
	reached := false
	opts.reached = func() { reached = true }
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
		err := runDaemon(ctx, cfg, log, opts)
		if err == nil || ctx.Err() != nil || !reached || !cdc.IsTransient(err) {
			return err
		}
		if !began.IsZero() && time.Since(began) > maxRetryDelay {
			delay = firstRetryDelay // it ran for a while: a new failure, not the same one again
		}
		wait := delay/2 + rand.N(delay/2+1)
		notReady := func(context.Context) error { return fmt.Errorf("restarting after a transient failure: %w", err) }
		current.Store(&notReady)
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
	if cfg.Kafka.ExactlyOnce {
		opts.TransactionalID = "cdc-" + cfg.Name
	}
	return k.NewProducer(opts)
}

// runDaemon checks everything that can be checked before producing anything,
// then runs the pipeline until ctx ends or it fails (or, in snapshot mode
// only, until the snapshot is stored).
func runDaemon(ctx context.Context, cfg *Config, log *slog.Logger, opts daemonOptions) error {
	ctx, cancel := context.WithCancel(ctx) // ends what this attempt started
	defer cancel()
	type opened struct {
		entities []*mapping.Entity
		mapper   *mapping.Mapper
		src      cdc.Source
	}
	db, err := await(ctx, log, "connect to the database and check it", func(ctx context.Context) (opened, error) {
		entities, mapper, src, err := openMapped(ctx, cfg, log)
		if err != nil {
			return opened{}, err
		}
		if err := src.Check(ctx); err != nil {
			src.Close()
			return opened{}, fmt.Errorf("the database is not ready for cdc:\n%w", err)
		}
		if err := compileAll(ctx, src, mapper); err != nil {
			src.Close()
			return opened{}, err
		}
		return opened{entities, mapper, src}, nil
	}, func(o opened) { o.src.Close() })
	if err != nil {
		return err
	}
	entities, mapper, src := db.entities, db.mapper, db.src
	defer src.Close()

	if cfg.Kafka.Version != "" {
		log.Warn("kafka.version is no longer used: cdc asks the brokers which protocol versions they speak; remove it")
	}
	k, err := await(ctx, log, "reach the Kafka brokers", func(ctx context.Context) (*sink.Kafka, error) {
		return dialKafka(ctx, cfg, log)
	}, func(k *sink.Kafka) { k.Close() })
	if err != nil {
		return err
	}
	defer k.Close()
	var topics []string
	for _, e := range entities {
		topics = append(topics, e.Topic)
	}
	if slices.ContainsFunc(entities, func(e *mapping.Entity) bool { return e.OnError == mapping.OnErrorDeadLetter }) {
		topics = append(topics, cfg.Kafka.DeadLetterTopic)
	}
	limits, err := await(ctx, log, "create and check the topics", func(context.Context) (map[string]int, error) {
		if err := k.EnsureTopics(topics[:len(entities)]); err != nil {
			return nil, err
		}
		if len(topics) > len(entities) {
			if err := k.EnsureDeadLetterTopic(cfg.Kafka.DeadLetterTopic); err != nil {
				return nil, err
			}
		}
		return k.MaxMessageBytes(topics)
	}, nil)
	if err != nil {
		return err
	}
	type framing struct{ key, value []byte }
	framings, err := await(ctx, log, "register the schemas", func(ctx context.Context) ([]framing, error) {
		out := make([]framing, len(entities))
		for i, e := range entities {
			keySchema, _ := e.KeySchema() // checked by mappingEntities
			var err error
			if out[i].key, out[i].value, err = k.Framing(ctx, e.Topic, keySchema, e.Schema); err != nil {
				return nil, fmt.Errorf("entity %q: %w", e.Name, err)
			}
		}
		return out, nil
	}, nil)
	if err != nil {
		return err
	}
	for i, e := range entities {
		e.KeyHeader, e.ValueHeader = framings[i].key, framings[i].value
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
	if !cfg.Kafka.ExactlyOnce || producer == nil || producer.Closed() {
		producer, err = await(ctx, log, "start the Kafka producer", func(context.Context) (*sink.Producer, error) {
			return openProducer(k, cfg, m, limits)
		}, func(p *sink.Producer) { p.Close() })
		if err != nil {
			return err
		}
		if cfg.Kafka.ExactlyOnce {
			*opts.transactional = producer
		}
	}
	if cfg.Kafka.ExactlyOnce {
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
	log.Info("starting", "source", cfg.Source.Kind, "entities", len(entities), "resume_from", string(cp.Position), "exactly_once", cfg.Kafka.ExactlyOnce)
	opts.running()
	return pipeline.Run(ctx, pipeline.Config{
		Source: src, Mapper: mapper, Producer: producer, Checkpoints: store, Transactions: transactions, Entities: names,
		Connector: cfg.Name, DeadLetterTopic: cfg.Kafka.DeadLetterTopic, MaxMessageBytes: limits, Metrics: m,
		Logger: log.With("component", "pipeline"),
	}, cp.Position)
}
