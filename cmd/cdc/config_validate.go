package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/tlsconfig"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/metrics"
	"github.com/cdc-dev/cdc/sink"
	"github.com/cdc-dev/cdc/sources"
	"github.com/cdc-dev/cdc/sources/mysql"
)

var (
	connectorName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
	pgIdentifier   = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	kafkaTopicName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)
)

// errorf formats a mistake at the line of a key path; a missing key is reported
// at its parent's line, or the file.
func (c *Config) errorf(path, format string, args ...any) error {
	return c.problem(path, "", format, args...)
}

// problem is a mistake at the line of a key path (see errorf) with its fix.
func (c *Config) problem(path, fix, format string, args ...any) *cdc.Problem {
	where := c.path
	for p := path; p != ""; {
		if line, ok := c.lines[p]; ok {
			where = fmt.Sprintf("%s:%d", c.path, line)
			break
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return &cdc.Problem{Where: where, What: path + ": " + fmt.Sprintf(format, args...), Fix: fix}
}

// origin is the file:line of a key path, for messages of later checks.
func (c *Config) origin(path string) string {
	return fmt.Sprintf("%s:%d", c.path, c.lines[path])
}

// validate fills defaults and refuses every contradiction, all reported at once.
func (c *Config) validate() error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, c.errorf(path, format, args...)) }

	if !connectorName.MatchString(c.Name) {
		bad("name", "want a connector name of letters, digits, '.', '_' or '-' (it names the slot, publication and checkpoint), got %q", c.Name)
	}
	c.Standby.sessionTimeout = sink.DefaultSessionTimeout
	if timeout := c.Standby.SessionTimeout; timeout != "" {
		d, err := time.ParseDuration(timeout)
		if err != nil || d < time.Second {
			bad("standby.session_timeout", "%q: want a duration of at least 1s, such as 6s (the brokers' group.min.session.timeout.ms bounds it, 6s by default)", timeout)
		}
		c.Standby.sessionTimeout = d
	}
	defaultID := "cdc_" + strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '_'
	}, c.Name)
	switch c.Source.Kind {
	case "postgres":
		if c.Source.Postgres.Slot == "" {
			c.Source.Postgres.Slot = defaultID
		}
		if c.Source.Postgres.Publication == "" {
			c.Source.Postgres.Publication = defaultID
		}
		if !pgIdentifier.MatchString(c.Source.Postgres.Slot) {
			bad("source.postgres.slot", "%q: slot names are lowercase letters, digits and '_', at most 63", c.Source.Postgres.Slot)
		}
		if !pgIdentifier.MatchString(c.Source.Postgres.Publication) {
			bad("source.postgres.publication", "%q: use lowercase letters, digits and '_', at most 63", c.Source.Postgres.Publication)
		}
		if every := c.Source.Postgres.HeartbeatMessageInterval; every != "" {
			d, err := time.ParseDuration(every)
			if err != nil || d < time.Second {
				bad("source.postgres.heartbeat_message_interval", "%q: want a duration of at least 1s, such as 30s or 5m, or nothing to write no heartbeat", every)
			}
			c.Source.Postgres.heartbeatMessageEvery = d
		}
		if c.Source.Postgres.StreamingMemoryMiB < 0 {
			bad("source.postgres.streaming_memory_mib", "%d: want the MiB of streamed transactions held in memory before they go to disk (default 64)", c.Source.Postgres.StreamingMemoryMiB)
		}
		if dir := c.Source.Postgres.SpillDirectory; dir != "" {
			if info, err := os.Stat(dir); err != nil || !info.IsDir() {
				bad("source.postgres.spill_directory", "%q is not a directory: streamed transactions past source.postgres.streaming_memory_mib are held there until their commit; create it, or leave it out for the system's temporary directory", dir)
			}
		}
	case "mysql":
		my := &c.Source.MySQL
		if my.ServerID == 0 {
			my.ServerID = mysql.DefaultServerID(c.Name)
		}
		if my.GTID == nil {
			on := true
			my.GTID = &on
		}
		switch my.ZeroDates {
		case "":
			my.ZeroDates = string(mysql.ZeroDatesError)
		case string(mysql.ZeroDatesError), string(mysql.ZeroDatesNull):
		default:
			bad("source.mysql.zero_dates", "%q: want error (stop at a zero date) or null (send it as NULL)", my.ZeroDates)
		}
		if my.WatermarkTable != "" {
			if _, err := cdc.ParseTableName(my.WatermarkTable); err != nil {
				bad("source.mysql.watermark_table", "%q: want database.table, e.g. shop.cdc_watermarks", my.WatermarkTable)
			}
		}
		for _, t := range my.AcceptUnloggedCascades {
			if _, err := cdc.ParseTableName(t); err != nil {
				bad("source.mysql.accept_unlogged_cascades", "%q: want database.table, e.g. shop.order_line", t)
			}
		}
	case "":
		bad("source.kind", "required: postgres or mysql")
	default:
		bad("source.kind", "%q: want postgres or mysql", c.Source.Kind)
	}
	if c.Source.DSN == "" {
		example := "postgres://user:password@host:5432/database"
		if c.Source.Kind == "mysql" {
			example = "user:password@tcp(host:3306)/database"
		}
		bad("source.dsn", "required, e.g. %s (use ${VAR} for the password)", example)
	}
	switch c.Snapshot.Mode {
	case "":
		c.Snapshot.Mode = "initial"
	case "initial", "never", "only", "when_needed":
	default:
		bad("snapshot.mode", "%q: want initial, never, only or when_needed", c.Snapshot.Mode)
	}
	// count defaults a count left zero, and refuses one outside 1 to most.
	count := func(key string, v *int, def, most int, unit, note string) {
		switch {
		case *v == 0:
			*v = def
		case *v < 1 || *v > most:
			bad(key, "%d: want a number of %s from 1 to %d (default %d)%s", *v, unit, most, def, note)
		}
	}
	count("snapshot.chunk_size", &c.Snapshot.ChunkSize, sources.DefaultChunkSize, 1_000_000, "rows", "")
	count("snapshot.backfill_chunk_size", &c.Snapshot.BackfillChunkSize, sources.DefaultBackfillChunkSize, maxBackfillChunkSize, "rows",
		"; a backfill holds a chunk in memory")
	count("snapshot.parallelism", &c.Snapshot.Parallelism, 1, maxSnapshotParallelism, "connections", "")
	// An entry may hold several brokers, comma-separated (one ${VAR} for all).
	var brokers []string
	for i, entry := range c.Kafka.Brokers {
		for _, b := range strings.Split(entry, ",") {
			if b = strings.TrimSpace(b); b == "" {
				continue
			}
			if host, port, ok := strings.Cut(b, ":"); !ok || host == "" || port == "" {
				bad(fmt.Sprintf("kafka.brokers[%d]", i), "%q: want host:port", b)
				continue
			}
			brokers = append(brokers, b)
		}
	}
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "required: a list of host:port")
	}
	c.Kafka.Brokers = brokers
	if c.Kafka.CheckpointTopic == "" {
		c.Kafka.CheckpointTopic = sink.DefaultCheckpointTopic
	}
	switch c.Kafka.Headers {
	case "":
		c.Kafka.Headers = "full"
	case "full", "compact":
	default:
		bad("kafka.headers", "%q: want full (every CloudEvents attribute on every record) or compact (without ce_specversion, ce_source and content-type, the same on every record)", c.Kafka.Headers)
	}
	if c.Kafka.Compression == "" {
		c.Kafka.Compression = sink.DefaultCompression
	}
	if codecs := sink.CompressionCodecs(); !slices.Contains(codecs, c.Kafka.Compression) {
		bad("kafka.compression", "%q: want one of %s", c.Kafka.Compression, strings.Join(codecs, ", "))
	}
	checkTLS := func(key string, t *TLSConfig) {
		if t.On() {
			if _, err := tlsconfig.Build(t.settings()); err != nil {
				bad(key, "%v", err)
			}
		}
	}
	checkTLS("kafka.tls", c.Kafka.TLS)
	if s := c.Kafka.SASL; s != nil {
		switch s.Mechanism {
		case "plain", "scram-sha-256", "scram-sha-512":
			if s.Username == "" || s.Password == "" {
				bad("kafka.sasl", "mechanism %s needs username and password (password: ${VAR} or ${file:/path})", s.Mechanism)
			}
		case "oauthbearer":
			if (s.TokenFile == "") == (s.TokenCommand == "") {
				bad("kafka.sasl", "mechanism oauthbearer needs token_file (read again when it changes) or token_command, one of them")
			}
		case "aws-msk-iam":
		default:
			bad("kafka.sasl.mechanism", "%q: want one of %s", s.Mechanism, strings.Join(saslMechanisms, ", "))
		}
		if s.Mechanism == "plain" && !c.Kafka.TLS.On() {
			errs = append(errs, c.problem("kafka.sasl", "turn kafka.tls on (managed clusters require SASL_SSL)", "mechanism plain sends the password as it is"))
		}
	}
	if r := c.Kafka.SchemaRegistry; r != nil {
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("kafka.schema_registry", "want an http:// or https:// URL (or {url: ..., tls: ..., username: ..., password: ...})")
		}
		if r.Token != "" && (r.Username != "" || r.Password != "") {
			errs = append(errs, c.problem("kafka.schema_registry", "give one", "token and username/password are two ways to authenticate"))
		}
		checkTLS("kafka.schema_registry.tls", r.TLS)
	}
	checkTLS("source.mysql.tls", c.Source.MySQL.TLS)
	if p := c.Kafka.Topic.Partitions; p < -1 {
		bad("kafka.topic.partitions", "%d: want a positive number, or -1 for the brokers' default", p)
	}
	if r := c.Kafka.Topic.ReplicationFactor; r < -1 {
		bad("kafka.topic.replication_factor", "%d: want a positive number, or -1 for the brokers' default", r)
	}
	switch c.Log.Level {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "text"
	case "text", "json":
	default:
		bad("log.format", "%q: want text or json", c.Log.Format)
	}
	switch listen := c.HTTP.Listen; listen {
	case "":
		c.HTTP.Listen = metrics.DefaultListen
	case "off":
	default:
		if _, port, err := net.SplitHostPort(listen); err != nil || port == "" {
			bad("http.listen", "%q: want host:port (e.g. %s, or :9464 for every interface), or off", listen, metrics.DefaultListen)
		}
	}
	errs = append(errs, c.validateEntities()...)
	return errors.Join(errs...)
}

// maxBackfillChunkSize bounds the memory of a backfill's chunk, held until
// the stream reaches its high watermark: 100,000 rows of 1 KB are 100 MB.
const maxBackfillChunkSize = 100_000

// maxSnapshotParallelism keeps a snapshot's connections well inside a
// server's usual max_connections.
const maxSnapshotParallelism = 32

func (c *Config) validateEntities() []error {
	var errs []error
	if len(c.Entities) == 0 {
		return []error{c.errorf("entities", "required: at least one entity (see config.example.yaml)")}
	}
	names, topics := map[string]bool{}, map[string]bool{}
	deadLetters := false
	for i, e := range c.Entities {
		bad := func(key, format string, args ...any) {
			errs = append(errs, c.errorf(fmt.Sprintf("entities[%d].%s", i, key), format, args...))
		}
		switch {
		case e.Name == "":
			bad("name", "required")
		case names[e.Name]:
			bad("name", "%q names two entities", e.Name)
		}
		names[e.Name] = true
		if e.Outbox != nil && e.Outbox.Messages {
			if e.Table != "" {
				bad("table", "an outbox of logical messages reads no table: remove it")
			}
		} else if _, err := cdc.ParseTableName(e.Table); err != nil {
			bad("table", "%v", err)
		}
		if e.aggregate() {
			errs = append(errs, c.validateEdges(i)...)
		}
		if e.Outbox != nil {
			errs = append(errs, c.validateOutbox(i, topics)...)
		} else {
			switch err := c.topicName(fmt.Sprintf("entities[%d].topic", i), e.Topic); {
			case err != nil:
				errs = append(errs, err)
			case topics[e.Topic]:
				errs = append(errs, c.problem(fmt.Sprintf("entities[%d].topic", i), "give each entity a compacted topic of its own", "%s is the topic of two entities", e.Topic))
			case e.Topic == c.Kafka.CheckpointTopic:
				bad("topic", "%s is the checkpoint topic", e.Topic)
			}
			topics[e.Topic] = true
			if e.Schema == "" {
				bad("schema", "required: the .avsc file of the entity's value record")
			}
			if len(e.Key) == 0 {
				bad("key", "required: the fields that identify an entity, e.g. key: [id]")
			}
			if len(e.Fields) == 0 {
				bad("fields", "required: a mapping of Avro field to column")
			}
		}
		switch e.OnError {
		case "":
			c.Entities[i].OnError = string(mapping.OnErrorStop)
		case string(mapping.OnErrorStop):
		case string(mapping.OnErrorDeadLetter):
			deadLetters = true
		default:
			bad("on_error", "%q: want stop (the daemon stops at a value the entity cannot represent) or dead_letter (it goes to kafka.dead_letter_topic)", e.OnError)
		}
		if hashes(e.Fields) && c.Masking.Salt == "" {
			errs = append(errs, c.problem(fmt.Sprintf("entities[%d].fields", i), "set masking.salt (e.g. masking: {salt: ${CDC_MASK_SALT}})", "hash masks need a secret salt"))
		}
	}
	outboxes := map[string]bool{}
	for i, e := range c.Entities {
		if e.Outbox == nil || e.Outbox.Messages {
			continue
		}
		if outboxes[e.Table] {
			errs = append(errs, c.problem(fmt.Sprintf("entities[%d].table", i), "give one outbox entity all the routes of the table",
				"%s is the outbox of two entities: a row would go to the routes of either", e.Table))
		}
		outboxes[e.Table] = true
	}
	for i, e := range c.Entities {
		if e.Outbox == nil && outboxes[e.Table] {
			errs = append(errs, c.problem(fmt.Sprintf("entities[%d].table", i), "map the outbox's rows as events only, or map another table",
				"%s is an outbox table: its rows are events, never snapshotted, and its updates and deletes publish nothing, so a table entity on it would drift from it", e.Table))
		}
	}
	if c.Masking.Salt != "" && len(c.Masking.Salt) < 16 {
		errs = append(errs, c.problem("masking.salt", "use at least 16 random characters (e.g. openssl rand -hex 32)", "too short"))
	}
	if c.Kafka.DeadLetterTopic == "" {
		c.Kafka.DeadLetterTopic = c.Name + ".dead_letter"
	}
	if t := c.Kafka.TransactionTopic; t != "" {
		switch err := c.topicName("kafka.transaction_topic", t); {
		case err != nil:
			errs = append(errs, err)
		case topics[t] || t == c.Kafka.CheckpointTopic || t == c.Kafka.DeadLetterTopic:
			errs = append(errs, c.errorf("kafka.transaction_topic", "%s is already the topic of an entity, of the checkpoints or of the dead letters", t))
		}
	}
	if deadLetters {
		switch err := c.topicName("kafka.dead_letter_topic", c.Kafka.DeadLetterTopic); {
		case err != nil:
			errs = append(errs, err)
		case topics[c.Kafka.DeadLetterTopic] || c.Kafka.DeadLetterTopic == c.Kafka.CheckpointTopic:
			errs = append(errs, c.errorf("kafka.dead_letter_topic", "%s is already the topic of an entity or of the checkpoints", c.Kafka.DeadLetterTopic))
		}
	}
	return errs
}

// topicName refuses what is not a Kafka topic name.
func (c *Config) topicName(path, topic string) error {
	if kafkaTopicName.MatchString(topic) {
		return nil
	}
	return c.errorf(path, "%q: a Kafka topic name is 1 to 249 letters, digits, '.', '_' or '-'", topic)
}

// validateEdges checks the children and dimensions of aggregate entity i.
func (c *Config) validateEdges(i int) []error {
	var errs []error
	e := &c.Entities[i]
	path := fmt.Sprintf("entities[%d]", i)
	if e.Outbox != nil {
		errs = append(errs, c.problem(path+".outbox", "map the outbox and the aggregate as two entities", "an outbox's rows are events, an aggregate's the state of its tables: an entity is one or the other"))
	}
	if e.OnError == string(mapping.OnErrorDeadLetter) {
		errs = append(errs, c.problem(path+".on_error", "remove on_error: dead_letter", "an aggregate's record is computed from several rows: one it cannot represent stops the daemon, since a dead letter would leave the aggregate's topic behind its tables"))
	}
	seen := map[string]bool{}
	for _, entry := range e.edges() {
		at := fmt.Sprintf("%s.%s.%s", path, entry.kind, entry.field)
		if seen[entry.field] {
			errs = append(errs, c.problem(at, "give each edge a field of its own", "field %s is filled by a child and a dimension", entry.field))
		}
		seen[entry.field] = true
		edge := entry.edge
		if edge == nil {
			errs = append(errs, c.errorf(at, "want {table: schema.table, join: {column: root_column}, fields: {...}}"))
			continue
		}
		if _, err := cdc.ParseTableName(edge.Table); err != nil {
			errs = append(errs, c.errorf(at+".table", "%v", err))
		} else if edge.Table == e.Table {
			errs = append(errs, c.problem(at+".table", "embed another table", "%s is the aggregate's root", edge.Table))
		}
		if len(edge.Join) == 0 {
			errs = append(errs, c.problem(at+".join", "pair the edge's columns with the root's, e.g. join: {order_id: id}", "required: it says which rows belong to which root"))
		}
		if len(edge.Fields) == 0 {
			errs = append(errs, c.errorf(at+".fields", "required: a mapping of the edge record's Avro fields to columns of %s", edge.Table))
		}
		if entry.kind == "children" && edge.Propagate != nil {
			errs = append(errs, c.problem(at+".propagate", "remove it", "children always propagate: a root whose children changed is recomputed"))
		}
		if entry.kind == "dimensions" && len(edge.OrderBy) > 0 {
			errs = append(errs, c.problem(at+".order_by", "remove it", "a dimension is one row"))
		}
	}
	return errs
}

// aggregateEdges returns the mapping's edges of aggregate entity i.
func (c *Config) aggregateEdges(i int) []mapping.Edge {
	var out []mapping.Edge
	for _, entry := range c.Entities[i].edges() {
		edge := entry.edge
		if edge == nil {
			continue
		}
		table, _ := cdc.ParseTableName(edge.Table) // checked
		me := mapping.Edge{Field: entry.field, Kind: mapping.EdgeChildren, Table: table, OrderBy: edge.OrderBy,
			Fields: c.mappingFields(edge.Fields), Origin: c.origin(fmt.Sprintf("entities[%d].%s.%s", i, entry.kind, entry.field))}
		if entry.kind == "dimensions" {
			me.Kind, me.Frozen = mapping.EdgeDimension, edge.Propagate != nil && !*edge.Propagate
		}
		for _, member := range slices.Sorted(maps.Keys(edge.Join)) {
			me.Join = append(me.Join, mapping.Join{Member: member, Root: edge.Join[member]})
		}
		out = append(out, me)
	}
	return out
}

// validateOutbox checks the outbox block of entity i, and fills in the
// default column names.
func (c *Config) validateOutbox(i int, topics map[string]bool) []error {
	var errs []error
	e := &c.Entities[i]
	path := fmt.Sprintf("entities[%d]", i)
	for _, k := range []struct {
		key string
		set bool
	}{{"topic", e.Topic != ""}, {"schema", e.Schema != ""}, {"key", len(e.Key) > 0}, {"fields", len(e.Fields) > 0},
		{"where", e.Where != ""}, {"tombstone_when", e.TombstoneWhen != ""}} {
		if k.set {
			errs = append(errs, c.problem(path+"."+k.key, "remove it: the outbox's rows name their route, whose topic and schema are in outbox.routes, and the key column keys them",
				"an outbox entity takes no %s", k.key))
		}
	}
	o := e.Outbox
	if o.Messages {
		if c.Source.Kind != "postgres" {
			errs = append(errs, c.problem(path+".outbox.messages", "write the events into an outbox table", "only PostgreSQL has logical messages (pg_logical_emit_message)"))
		}
		if o.Key == "" {
			errs = append(errs, c.problem(path+".outbox.key", "name the payload's top-level field that keys the records, e.g. key: order_id", "required with messages: a logical message carries nothing but its payload"))
		}
		for _, k := range []struct {
			key string
			set bool
		}{{"route", o.Route != ""}, {"payload", o.Payload != ""}, {"id", o.ID != ""}, {"type", o.Type != ""}, {"timestamp", o.Timestamp != ""}, {"headers", o.Headers != ""}} {
			if k.set {
				errs = append(errs, c.problem(path+".outbox."+k.key, "remove it: a message's prefix is its route and its content the payload", "an outbox of logical messages has no columns"))
			}
		}
	} else {
		o.Route = cmp.Or(o.Route, "aggregatetype")
		o.Key = cmp.Or(o.Key, "aggregateid")
		o.Payload = cmp.Or(o.Payload, "payload")
	}
	if len(o.Routes) == 0 {
		errs = append(errs, c.problem(path+".outbox.routes", "map each value of the route column to its topic and schema, e.g. routes: {Order: {topic: shop.order_events.v1, schema: schemas/order_event.v1.avsc}}",
			"required: an outbox without routes publishes nothing"))
	}
	for _, route := range o.routes() {
		r := o.Routes[route]
		at := path + ".outbox.routes." + route
		switch err := c.topicName(at+".topic", r.Topic); {
		case err != nil:
			errs = append(errs, err)
		case topics[r.Topic]:
			errs = append(errs, c.problem(at+".topic", "give each route a topic of its own", "%s is already the topic of another entity or route", r.Topic))
		case r.Topic == c.Kafka.CheckpointTopic:
			errs = append(errs, c.errorf(at+".topic", "%s is the checkpoint topic", r.Topic))
		}
		topics[r.Topic] = true
		if r.Schema == "" {
			errs = append(errs, c.errorf(at+".schema", "required: the .avsc file of the route's events"))
		}
	}
	return errs
}

func hashes(rules FieldRules) bool {
	for _, r := range rules {
		if r.Mask == string(mapping.MaskHash) || hashes(r.Record) {
			return true
		}
	}
	return false
}

// mappingFields converts rules to the mapping's, with their file:line.
func (c *Config) mappingFields(rules FieldRules) []mapping.Field {
	out := make([]mapping.Field, 0, len(rules))
	for _, r := range rules {
		f := mapping.Field{Name: r.Field, Column: r.Column, Expr: r.Expr, Enum: r.Enum, Mask: mapping.Mask(r.Mask),
			Origin: fmt.Sprintf("%s:%d", c.path, r.Line)}
		if r.Record != nil {
			f.Fields = c.mappingFields(r.Record)
		}
		out = append(out, f)
	}
	return out
}

// recordSchema reads the record schema of the file named at path (a key
// path of the configuration, for messages).
func (c *Config) recordSchema(path, file string) (*avro.RecordSchema, error) {
	text, err := readBounded(c.schemaPath(file), maxSchemaFile)
	if err != nil {
		return nil, c.errorf(path, "%v", err)
	}
	if trimmed := bytes.TrimSpace(text); len(trimmed) == 0 || trimmed[0] != '{' {
		// Not JSON at all: the path names some other file, whose content
		// is not quoted.
		return nil, c.errorf(path, "%s is not an Avro schema: a schema file holds a JSON object ({\"type\": \"record\", ...})", file)
	}
	parsed, err := avro.ParseBytes(text)
	if err != nil {
		return nil, c.errorf(path, "%s is not a valid Avro schema (%s)", file, excerpt(err.Error()))
	}
	record, ok := parsed.(*avro.RecordSchema)
	if !ok {
		return nil, c.errorf(path, "%s is a %s schema: an entity's value must be a record", file, parsed.Type())
	}
	return record, nil
}

// outboxEntities returns an entity per route of outbox entity i, named
// "<entity>.<route>".
func (c *Config) outboxEntities(i int, table cdc.TableName) ([]*mapping.Entity, error) {
	e := c.Entities[i]
	o := e.Outbox
	outbox := &mapping.Outbox{Name: e.Name, Route: o.Route, Key: o.Key, Payload: o.Payload, ID: o.ID, Type: o.Type, Timestamp: o.Timestamp, Headers: o.Headers,
		Routes: o.routes()}
	if o.Messages {
		outbox.Route, outbox.Key, outbox.Payload, outbox.KeyField = "prefix", "", "content", o.Key
	}
	var out []*mapping.Entity
	var errs []error
	for _, route := range outbox.Routes {
		r := o.Routes[route]
		at := fmt.Sprintf("entities[%d].outbox.routes.%s", i, route)
		record, err := c.recordSchema(at+".schema", r.Schema)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, &mapping.Entity{Name: e.Name + "." + route, Table: table, Topic: r.Topic, Schema: record, SchemaFile: r.Schema,
			OnError: mapping.ErrorPolicy(e.OnError), Origin: c.origin(at), Outbox: outbox, Route: route})
	}
	return out, errors.Join(errs...)
}

// mappingEntities reads each entity's schema and returns the mapping's view of it.
func (c *Config) mappingEntities() ([]*mapping.Entity, error) {
	var out []*mapping.Entity
	var errs []error
	for i, e := range c.Entities {
		origin := fmt.Sprintf("%s:%d", c.path, e.line)
		table, tableErr := cdc.ParseTableName(e.Table)
		if e.Outbox != nil && e.Outbox.Messages {
			table, tableErr = cdc.LogicalMessages.Name, nil
		}
		if e.Outbox != nil {
			routes, err := c.outboxEntities(i, table)
			if err != nil {
				errs = append(errs, err)
			} else if tableErr == nil {
				out = append(out, routes...)
			}
			continue
		}
		record, err := c.recordSchema(fmt.Sprintf("entities[%d].schema", i), e.Schema)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if tableErr != nil {
			continue // reported by validate
		}
		me := &mapping.Entity{
			Name: e.Name, Table: table, Topic: e.Topic, Schema: record, SchemaFile: e.Schema, Key: e.Key,
			Fields:        c.mappingFields(e.Fields),
			Where:         mapping.Condition{Expr: e.Where, Origin: c.origin(fmt.Sprintf("entities[%d].where", i))},
			TombstoneWhen: mapping.Condition{Expr: e.TombstoneWhen, Origin: c.origin(fmt.Sprintf("entities[%d].tombstone_when", i))},
			MaskSalt:      []byte(c.Masking.Salt),
			OnError:       mapping.ErrorPolicy(e.OnError),
			Origin:        origin,
			Edges:         c.aggregateEdges(i),
		}
		if _, err := me.KeySchema(); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, me)
	}
	return out, errors.Join(errs...)
}
