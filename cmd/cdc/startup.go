package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/sink"
	"github.com/cdc-dev/cdc/sources"
	"github.com/cdc-dev/cdc/sources/mysql"
	"github.com/cdc-dev/cdc/sources/postgres"
)

// connector is what a command opens of its configuration, in the order every
// command opens it: the entities, then the database (opened, checked, the
// mappings compiled against its tables), then the brokers. Each step waits
// at most stepLimit (see await) and logs to waits when it takes long.
type connector struct {
	cfg      *Config
	log      *slog.Logger // the source's and the sink's
	waits    *slog.Logger
	entities []*mapping.Entity
	// tables are the mapped tables, each once, in a stable order: snapshots
	// follow it.
	tables []cdc.TableName
	src    cdc.Source
	kafka  *sink.Kafka
}

// newConnector reads the configuration's entities and their schemas. With
// some that cannot be read, it returns the problems with them, and the
// connector of the others (cdc validate goes on with them).
func newConnector(cfg *Config, log, waits *slog.Logger) (*connector, error) {
	entities, err := cfg.mappingEntities()
	return &connector{cfg: cfg, log: log, waits: waits, entities: entities, tables: tablesOf(entities)}, err
}

// openConnector reads the configuration's entities and connects to the
// database; the caller closes it.
func openConnector(ctx context.Context, cfg *Config, log *slog.Logger) (*connector, error) {
	c, err := newConnector(cfg, log, log)
	if err == nil {
		err = c.openDatabase(ctx)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// tablesOf lists the tables the entities read (an aggregate's edges'
// too), each once, sorted by name.
func tablesOf(entities []*mapping.Entity) []cdc.TableName {
	var tables []cdc.TableName
	for _, e := range entities {
		for _, t := range e.Tables() {
			if !slices.Contains(tables, t) && t != cdc.LogicalMessages.Name {
				tables = append(tables, t)
			}
		}
	}
	slices.SortFunc(tables, func(a, b cdc.TableName) int {
		if a.String() < b.String() {
			return -1
		}
		return 1
	})
	return tables
}

// Close closes what the steps opened.
func (c *connector) Close() {
	if c.kafka != nil {
		c.kafka.Close()
	}
	if c.src != nil {
		c.src.Close()
	}
}

// openDatabase connects to the database.
func (c *connector) openDatabase(ctx context.Context) error {
	src, err := await(ctx, c.waits, "connect to the database", func(ctx context.Context) (cdc.Source, error) {
		return openSource(ctx, c.cfg, c.tables, c.log)
	}, func(src cdc.Source) { src.Close() })
	if err != nil {
		return err // src may be a nil pointer in an interface
	}
	c.src = src
	return nil
}

// checkDatabase checks the database's prerequisites (see cdc.Source.Check).
func (c *connector) checkDatabase(ctx context.Context) error {
	return awaitErr(ctx, c.waits, "check the database", c.src.Check)
}

// checkMappings checks every mapping against the tables as the catalog has
// them, and that every entity's key identifies its table's rows.
func (c *connector) checkMappings(ctx context.Context) error {
	return awaitErr(ctx, c.waits, "check the mappings against the tables", func(ctx context.Context) error {
		tables, err := c.src.Describe(ctx, c.tables)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(c.entities, func(e *mapping.Entity) bool { return e.Table == cdc.LogicalMessages.Name }) {
			tables = append(tables, cdc.LogicalMessages)
		}
		return c.checkMappingsAgainst(tables)
	})
}

// checkMappingsAgainst checks every mapping against the tables given, and
// that every entity's key identifies its table's rows.
func (c *connector) checkMappingsAgainst(tables []*cdc.Table) error {
	mapper := mapping.NewMapper(c.entities, mapping.Options{})
	var errs []error
	for _, e := range c.entities {
		if e.IsAggregate() {
			if _, err := mapping.CompileAggregate(e, mapping.Described(tables), mapping.Framing{}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, t := range tables {
		if _, err := mapper.Compile(t); err != nil {
			errs = append(errs, err)
		}
		if err := mapper.CheckKeys(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// leaves lists the errors joined in errs (through nested joins), in order.
func leaves(errs ...error) []error {
	var out []error
	for _, err := range errs {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			out = append(out, leaves(joined.Unwrap()...)...)
		} else if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// dialBrokers connects to the Kafka cluster.
func (c *connector) dialBrokers(ctx context.Context) error {
	k, err := await(ctx, c.waits, "reach the Kafka brokers", func(ctx context.Context) (*sink.Kafka, error) {
		kc, err := kafkaConfig(c.cfg, c.waits)
		if err != nil {
			return nil, err
		}
		return sink.Dial(ctx, kc, c.log.With("component", "sink"))
	}, func(k *sink.Kafka) { k.Close() })
	if err != nil {
		return err
	}
	c.kafka = k
	return nil
}

// openSource connects to the configured database.
func openSource(ctx context.Context, cfg *Config, tables []cdc.TableName, log *slog.Logger) (cdc.Source, error) {
	settings := sources.Settings{
		Snapshot: cdc.SnapshotMode(cfg.Snapshot.Mode), ChunkSize: cfg.Snapshot.ChunkSize, BackfillChunkSize: cfg.Snapshot.BackfillChunkSize,
		Parallelism: cfg.Snapshot.Parallelism, Logger: log.With("component", "source"),
	}
	for _, e := range cfg.Entities {
		if name, err := cdc.ParseTableName(e.Table); err == nil && e.Outbox != nil {
			settings.EventTables = append(settings.EventTables, name)
		}
	}
	settings.MemberTables = memberTables(cfg)
	switch cfg.Source.Kind {
	case "postgres":
		return postgres.New(ctx, postgres.Config{
			DSN: cfg.Source.DSN, Slot: cfg.Source.Postgres.Slot, Publication: cfg.Source.Postgres.Publication,
			Tables: tables, Entities: entitiesByTable(cfg), HeartbeatMessageInterval: cfg.Source.Postgres.heartbeatMessageEvery,
			ApplicationName: "cdc " + cfg.Name, Settings: settings, TakeOverSlot: cfg.Standby.Enabled, MessagePrefixes: messagePrefixes(cfg),
			Binary:         cfg.Source.Postgres.Binary == nil || *cfg.Source.Postgres.Binary,
			Streaming:      cfg.Source.Postgres.Streaming == nil || *cfg.Source.Postgres.Streaming,
			StreamedMemory: cfg.Source.Postgres.StreamingMemoryMiB << 20, SpillDirectory: cfg.Source.Postgres.SpillDirectory,
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
			DSN: cfg.Source.DSN, ServerID: cfg.Source.MySQL.ServerID, Name: cfg.Name, Tables: tables,
			UseGTID: *cfg.Source.MySQL.GTID, ZeroDates: mysql.ZeroDates(cfg.Source.MySQL.ZeroDates), WatermarkTable: watermarks,
			TLS: tlsConfig, AcceptUnloggedCascades: cascades, Settings: settings,
		})
	}
	return nil, fmt.Errorf("source kind %q is not supported", cfg.Source.Kind)
}

// memberTables lists the tables that only aggregates embed: no entity reads
// them as its own table.
func memberTables(cfg *Config) []cdc.TableName {
	var members []cdc.TableName
	for _, e := range cfg.Entities {
		for _, entry := range e.edges() {
			if entry.edge == nil {
				continue // refused by validate
			}
			if name, err := cdc.ParseTableName(entry.edge.Table); err == nil && !slices.Contains(members, name) {
				members = append(members, name)
			}
		}
	}
	return slices.DeleteFunc(members, func(t cdc.TableName) bool {
		return slices.ContainsFunc(cfg.Entities, func(e EntityConfig) bool { return e.Table == t.String() })
	})
}

// messagePrefixes lists the routes of the outboxes of logical messages.
func messagePrefixes(cfg *Config) []string {
	var prefixes []string
	for _, e := range cfg.Entities {
		if e.Outbox != nil && e.Outbox.Messages {
			prefixes = append(prefixes, e.Outbox.routes()...)
		}
	}
	return prefixes
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
