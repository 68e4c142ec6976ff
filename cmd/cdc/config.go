package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cdc-dev/cdc/mapping"
)

// Config is the whole configuration file. Its keys are the contract with users:
// see config.example.yaml and the README for every key and its default.
type Config struct {
	Name     string         `yaml:"name"`
	Source   SourceConfig   `yaml:"source"`
	Snapshot SnapshotConfig `yaml:"snapshot"`
	Kafka    KafkaConfig    `yaml:"kafka"`
	Entities []EntityConfig `yaml:"entities"`
	Log      LogConfig      `yaml:"log"`
	Masking  MaskingConfig  `yaml:"masking"`
	HTTP     HTTPConfig     `yaml:"http"`
	Standby  StandbyConfig  `yaml:"standby"`

	path  string         // the file, for messages and relative schema paths
	lines map[string]int // line of each key path ("kafka.brokers", "entities[0].topic")
}

// StandbyConfig lets several instances of the connector (the same name, on
// several hosts) run at once: one leads, the others wait to take over.
type StandbyConfig struct {
	Enabled bool `yaml:"enabled"`
	// SessionTimeout, a Go duration, is how long the brokers wait for a
	// silent leader before another instance takes over (default 6s).
	SessionTimeout string `yaml:"session_timeout"`

	sessionTimeout time.Duration
}

// transactional says whether the producer writes in Kafka transactions:
// in exactly-once mode, and with standbys, whose leader's transactional id
// is what fences a paused former leader at the brokers.
func (c *Config) transactional() bool { return c.Kafka.ExactlyOnce || c.Standby.Enabled }

type SourceConfig struct {
	Kind     string         `yaml:"kind"`
	DSN      string         `yaml:"dsn"`
	Postgres PostgresConfig `yaml:"postgres"`
	MySQL    MySQLConfig    `yaml:"mysql"`
}

type PostgresConfig struct {
	Slot        string `yaml:"slot"`
	Publication string `yaml:"publication"`
	// HeartbeatMessageInterval, a Go duration ("1m"), makes cdc write a
	// logical message into the database's WAL at that interval; empty: never.
	HeartbeatMessageInterval string `yaml:"heartbeat_message_interval"`
	// Binary (default true) has the server send values in binary, where
	// cdc can decode every mapped column so; false keeps text.
	Binary *bool `yaml:"binary"`
	// Streaming (default true) has the server send a transaction larger
	// than its logical_decoding_work_mem while it is decoded, rather than
	// spill it to its disk and send it at its commit; cdc holds it until its
	// commit, StreamingMemoryMiB (default 64) of them in memory and the rest
	// in unlinked files in SpillDirectory (default: the system's temporary
	// directory).
	Streaming          *bool  `yaml:"streaming"`
	StreamingMemoryMiB int64  `yaml:"streaming_memory_mib"`
	SpillDirectory     string `yaml:"spill_directory"`

	heartbeatMessageEvery time.Duration
}

type MySQLConfig struct {
	// ServerID is cdc's replica id; 0 derives one from the connector name.
	ServerID uint32 `yaml:"server_id"`
	// GTID chooses GTID positions where the server has them (default true).
	GTID *bool `yaml:"gtid"`
	// ZeroDates is "error" (default) or "null".
	ZeroDates string `yaml:"zero_dates"`
	// WatermarkTable is where backfills write their watermarks (database.table;
	// cdc creates it). Without it, entities added later are not backfilled.
	WatermarkTable string `yaml:"watermark_table"`
	// AcceptUnloggedCascades lists mapped tables (database.table) whose
	// changes by cascading foreign keys, which the server does not write to
	// the binlog, the operator accepts to miss; any other such table is refused.
	AcceptUnloggedCascades []string `yaml:"accept_unlogged_cascades"`
	// TLS secures every connection to the server: snapshot, binlog and checks.
	TLS *TLSConfig `yaml:"tls"`
}

type SnapshotConfig struct {
	Mode string `yaml:"mode"`
	// ChunkSize is the number of rows one snapshot query reads; a restart
	// after an interruption reads at most the chunks not yet acknowledged again.
	ChunkSize int `yaml:"chunk_size"`
	// BackfillChunkSize is the number of rows one query of an online
	// backfill reads, all held in memory until the stream passes them.
	BackfillChunkSize int `yaml:"backfill_chunk_size"`
	// Parallelism is the number of connections that read the snapshot's
	// chunks, on one view of the database.
	Parallelism int `yaml:"parallelism"`
}

type KafkaConfig struct {
	Brokers []string `yaml:"brokers"`
	// TLS and SASL secure the connections to the brokers.
	TLS             *TLSConfig      `yaml:"tls"`
	SASL            *SASLConfig     `yaml:"sasl"`
	SchemaRegistry  *RegistryConfig `yaml:"schema_registry"`
	Topic           TopicConfig     `yaml:"topic"`
	ExactlyOnce     bool            `yaml:"exactly_once"`
	CheckpointTopic string          `yaml:"checkpoint_topic"`
	DeadLetterTopic string          `yaml:"dead_letter_topic"`
	// TransactionTopic, if set, receives a record at the end of each
	// transaction: its id and how many records it wrote to each topic.
	TransactionTopic string `yaml:"transaction_topic"`
	// Version is no longer used (the client asks the brokers which protocol
	// versions they speak); it is accepted with a warning.
	Version     string `yaml:"version"`
	Compression string `yaml:"compression"`
	// Headers is full (every CloudEvents attribute on every record) or
	// compact (without those every record of a topic shares).
	Headers string `yaml:"headers"`
}

// TLSConfig secures one kind of connection. Any key turns TLS on, unless
// enabled is false. The server's certificate is verified (chain and name) by
// default; mode verify-ca checks the chain only, and mode required (or
// insecure_skip_verify) nothing, with a warning at every start.
type TLSConfig struct {
	Enabled            *bool  `yaml:"enabled"`
	Mode               string `yaml:"mode"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	MinVersion         string `yaml:"min_version"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// On reports whether the block turns TLS on.
func (t *TLSConfig) On() bool { return t != nil && (t.Enabled == nil || *t.Enabled) }

// SASLConfig authenticates to the brokers.
type SASLConfig struct {
	// Mechanism is plain, scram-sha-256, scram-sha-512, oauthbearer or aws-msk-iam.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	// TokenFile (OAUTHBEARER) holds the token; it is read again when it
	// changes, at each authentication. TokenCommand prints one instead.
	TokenFile    string `yaml:"token_file"`
	TokenCommand string `yaml:"token_command"`
	// Extensions are OAUTHBEARER's SASL extensions (Confluent Cloud's
	// logicalCluster and identityPoolId).
	Extensions map[string]string `yaml:"extensions"`
}

// RegistryConfig is the schema registry: written as its URL, or as a mapping
// with TLS settings and credentials (basic auth, or a bearer token).
type RegistryConfig struct {
	URL      string     `yaml:"url"`
	TLS      *TLSConfig `yaml:"tls"`
	Username string     `yaml:"username"`
	Password string     `yaml:"password"`
	Token    string     `yaml:"token"`
}

// UnmarshalYAML reads either form.
func (r *RegistryConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		r.URL = n.Value
		return nil
	}
	type plain RegistryConfig
	return n.Decode((*plain)(r))
}

type TopicConfig struct {
	Partitions        int32 `yaml:"partitions"`
	ReplicationFactor int16 `yaml:"replication_factor"`
}

// MaskingConfig holds the secret of hash masks. Changing it changes every hashed
// value: consumers see new values for the same rows.
type MaskingConfig struct {
	Salt string `yaml:"salt"`
}

// HTTPConfig is where /metrics, /healthz and /readyz are served.
type HTTPConfig struct {
	// Listen is host:port, or "off"; default 127.0.0.1:9464 (metrics.DefaultListen).
	Listen string `yaml:"listen"`
}

type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

type EntityConfig struct {
	Name          string     `yaml:"name"`
	Table         string     `yaml:"table"`
	Topic         string     `yaml:"topic"`
	Schema        string     `yaml:"schema"`
	Key           []string   `yaml:"key"`
	Fields        FieldRules `yaml:"fields"`
	Where         string     `yaml:"where"`
	TombstoneWhen string     `yaml:"tombstone_when"`
	OnError       string     `yaml:"on_error"`
	// Outbox makes the entity an outbox table's: its rows are events, routed
	// to topics by a column (see mapping.Outbox).
	Outbox *OutboxConfig `yaml:"outbox"`
	// Children and Dimensions make the entity an aggregate of several
	// tables: Table is its root, and each edge fills a value field, by name
	// (see mapping.Edge).
	Children   map[string]*EdgeConfig `yaml:"children"`
	Dimensions map[string]*EdgeConfig `yaml:"dimensions"`

	line int
}

// EdgeConfig is a table an aggregate embeds: its rows that join the root's
// (children: those whose columns equal the root's; a dimension: the one
// row the root's columns name).
type EdgeConfig struct {
	Table string `yaml:"table"`
	// Join maps the edge table's columns to the root table's.
	Join    map[string]string `yaml:"join"`
	OrderBy []string          `yaml:"order_by"`
	// Propagate (dimensions; default true) recomputes the roots of a
	// dimension row that changes; false keeps the values read when the
	// root was last computed.
	Propagate *bool      `yaml:"propagate"`
	Fields    FieldRules `yaml:"fields"`
}

// aggregate reports whether the entity is assembled from several tables.
func (e *EntityConfig) aggregate() bool { return len(e.Children) > 0 || len(e.Dimensions) > 0 }

// edges lists the entity's edges, children first, each kind by field name.
func (e *EntityConfig) edges() []edgeEntry {
	var out []edgeEntry
	for _, kind := range []struct {
		key   string
		edges map[string]*EdgeConfig
	}{{"children", e.Children}, {"dimensions", e.Dimensions}} {
		for _, field := range slices.Sorted(maps.Keys(kind.edges)) {
			out = append(out, edgeEntry{kind: kind.key, field: field, edge: kind.edges[field]})
		}
	}
	return out
}

type edgeEntry struct {
	kind, field string
	edge        *EdgeConfig
}

// OutboxConfig names an outbox table's columns and routes. The columns
// default to the names of Debezium's outbox router (aggregatetype,
// aggregateid, payload); id, type, timestamp and headers are optional.
type OutboxConfig struct {
	Route     string `yaml:"route"`
	Key       string `yaml:"key"`
	Payload   string `yaml:"payload"`
	ID        string `yaml:"id"`
	Type      string `yaml:"type"`
	Timestamp string `yaml:"timestamp"`
	Headers   string `yaml:"headers"`
	// Messages reads PostgreSQL's transactional logical messages instead of
	// a table: pg_logical_emit_message(true, route, payload), keyed by the
	// payload's field Key.
	Messages bool `yaml:"messages"`
	// Routes maps each value of the route column to its topic and schema:
	// a row naming another value is a value error, never a topic of its own.
	Routes map[string]OutboxRoute `yaml:"routes"`
}

// OutboxRoute is where the events of one route go.
type OutboxRoute struct {
	Topic  string `yaml:"topic"`
	Schema string `yaml:"schema"`
}

// routes lists the outbox's route values in order.
func (o *OutboxConfig) routes() []string {
	return slices.Sorted(maps.Keys(o.Routes))
}

func (e *EntityConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain EntityConfig
	if err := n.Decode((*plain)(e)); err != nil {
		return err
	}
	e.line = n.Line
	return nil
}

// FieldRule maps one Avro field. Written `field: column`, or as a mapping of
// rule keys: {column: c}, {column: c, enum: {code: SYMBOL}}, {column: c, mask:
// hash|redact}, {expr: "CEL"} or {record: {subfield: rule, ...}}.
type FieldRule struct {
	Field  string
	Column string
	Expr   string
	Enum   map[string]string
	Mask   string
	Record FieldRules
	Line   int
}

// FieldRules keeps the order of the YAML mapping, for messages.
type FieldRules []FieldRule

var ruleKeys = []string{"column", "expr", "enum", "mask", "record"}

// UnmarshalYAML reports every malformed rule as a *yaml.TypeError, so that
// decoding goes on and every mistake of the file is listed at once.
func (f *FieldRules) UnmarshalYAML(n *yaml.Node) error {
	var problems []string
	bad := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
	}
	if n.Kind != yaml.MappingNode {
		bad(n.Line, "fields: want a mapping of Avro field to rule, e.g. `email: email_address`")
		return &yaml.TypeError{Errors: problems}
	}
	*f = make(FieldRules, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		rule := FieldRule{Field: k.Value, Line: k.Line}
		switch v.Kind {
		case yaml.ScalarNode:
			rule.Column = v.Value
		case yaml.MappingNode:
			for j := 0; j+1 < len(v.Content); j += 2 {
				key, val := v.Content[j], v.Content[j+1]
				scalar := func() string {
					if val.Kind != yaml.ScalarNode {
						bad(val.Line, "field %q: %s: want a single value", rule.Field, key.Value)
					}
					return val.Value
				}
				switch key.Value {
				case "column":
					rule.Column = scalar()
				case "expr":
					rule.Expr = scalar()
				case "mask":
					rule.Mask = scalar()
				case "enum":
					rule.Enum = enumCodes(rule.Field, val, bad)
				case "record":
					if err := rule.Record.UnmarshalYAML(val); err != nil {
						problems = append(problems, err.(*yaml.TypeError).Errors...)
					}
				default:
					bad(key.Line, "field %q: unknown rule key %q (known: %s)", rule.Field, key.Value, strings.Join(ruleKeys, ", "))
				}
			}
			shape := mapping.Field{Column: rule.Column, Expr: rule.Expr, Enum: rule.Enum, Mask: mapping.Mask(rule.Mask)}
			if rule.Record != nil {
				shape.Fields = []mapping.Field{}
			}
			if err := shape.CheckShape(); err != nil {
				bad(v.Line, "field %q: %v", rule.Field, err)
			}
		default:
			bad(v.Line, "field %q: want a column name or a rule such as {column: name}", rule.Field)
		}
		if v.Kind == yaml.ScalarNode && rule.Column == "" {
			bad(v.Line, "field %q: no column given", rule.Field)
		}
		*f = append(*f, rule)
	}
	if len(problems) > 0 {
		return &yaml.TypeError{Errors: problems}
	}
	return nil
}

// enumCodes reads {code: SYMBOL, ...}; codes are kept in their text form.
func enumCodes(field string, n *yaml.Node, bad func(int, string, ...any)) map[string]string {
	codes := map[string]string{}
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		bad(n.Line, "field %q: enum: want a mapping of code to Avro enum symbol, e.g. {1: ACTIVE, 2: SUSPENDED}", field)
		return codes
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		code, symbol := n.Content[i], n.Content[i+1]
		if code.Kind != yaml.ScalarNode || symbol.Kind != yaml.ScalarNode || !avroName.MatchString(symbol.Value) {
			bad(code.Line, "field %q: enum: code %s: want an Avro enum symbol (letters, digits, '_'), got %q", field, code.Value, symbol.Value)
			continue
		}
		codes[code.Value] = symbol.Value
	}
	return codes
}

var avroName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// LoadConfig reads a configuration file strictly: unknown keys, wrong types and
// unset variables are errors with the file and line. When only the values are
// wrong (the file decoded), the Config is returned with the error, for cdc
// validate to go on checking what it can. ${VAR} and ${VAR:-default}
// in values are replaced from the environment, ${file:PATH} by a file's
// content (relative to the config's folder); substituted values never appear
// in errors, so secrets passed that way stay out of logs.
func LoadConfig(path string) (*Config, error) {
	data, err := readBounded(path, maxConfigFile)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: the file is empty; start from config.example.yaml", path)
	}
	expanded := map[int]bool{} // lines with a substituted value
	var errs []error
	expandEnv(doc.Content[0], filepath.Dir(path), expanded, func(line int, msg string) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", path, line, msg))
	})
	checkKeys(doc.Content[0], reflect.TypeOf(Config{}), "", func(line int, msg string) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", path, line, msg))
	})
	cfg := &Config{path: path, lines: map[string]int{}}
	recordLines(doc.Content[0], "", cfg.lines)
	if err := doc.Content[0].Decode(cfg); err != nil {
		return nil, errors.Join(append(errs, errors.New(redact(lineErrors(err, path), path, expanded)))...)
	}
	// Unknown keys and unset variables leave the rest of the file meaningful:
	// its values are checked too, so that every mistake is listed at once.
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	return cfg, nil
}

// lineErrors rewrites yaml.v3's "line N: msg" into "file:N: msg".
func lineErrors(err error, path string) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	msg = strings.TrimPrefix(msg, "yaml: ")
	if located := yamlLine.ReplaceAllString(msg, path+":$1: "); located != msg {
		return located
	}
	return path + ": " + msg
}

// redact hides the quoted values yaml.v3 puts in its messages (whole or
// truncated) on the lines where a value came from the environment.
func redact(msg, path string, expanded map[int]bool) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		rest, ok := strings.CutPrefix(l, path+":")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ":")
		if line, err := strconv.Atoi(n); err == nil && expanded[line] {
			lines[i] = quotedValue.ReplaceAllString(l, "(a value from the environment)")
		}
	}
	return strings.Join(lines, "\n")
}

var (
	yamlLine    = regexp.MustCompile(`(?m)^\s*line (\d+): `)
	quotedValue = regexp.MustCompile("`[^`]*`")
)

var envRef = regexp.MustCompile(`\$\$|\$\{file:([^}]+)\}|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// Bounds of the files cdc reads: a path that names something else (a device,
// a pipe, a huge file) fails at once instead of hanging or filling memory.
const (
	maxConfigFile = 4 << 20
	maxSchemaFile = 4 << 20
	maxSecretFile = 64 << 10
)

// readBounded reads a regular file of at most limit bytes. Its errors name
// the file, never its content.
func readBounded(path string, limit int64) ([]byte, error) {
	info, err := os.Stat(path) // a pipe or device is not opened
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() || info.Size() > limit {
		return nil, fmt.Errorf("%s is not a regular file of at most %d bytes", path, limit)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// readSecretFile reads a ${file:PATH} value: the file's content without its
// final line break.
func readSecretFile(path string) (string, error) {
	data, err := readBounded(path, maxSecretFile)
	return strings.TrimRight(string(data), "\r\n"), err
}

// excerpt quotes at most a short, printable part of a message about a file
// cdc could not parse: the file may be anything, secrets included.
func excerpt(s string) string {
	const most = 80
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= most {
			b.WriteString("…")
			break
		}
		if r < ' ' || r > '~' {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// expandEnv replaces ${VAR} and ${file:PATH} (relative to dir) in every
// scalar value (never in keys).
func expandEnv(n *yaml.Node, dir string, expanded map[int]bool, report func(int, string)) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			if ref == "$$" {
				return "$"
			}
			m := envRef.FindStringSubmatch(ref)
			if path := m[1]; path != "" {
				if !filepath.IsAbs(path) {
					path = filepath.Join(dir, path)
				}
				v, err := readSecretFile(path)
				if err != nil {
					report(n.Line, fmt.Sprintf("${file:%s}: %v", m[1], err))
					return ref
				}
				expanded[n.Line] = true
				return v
			}
			v, ok := os.LookupEnv(m[2])
			if !ok && m[3] == "" {
				report(n.Line, fmt.Sprintf("${%s} is not set in the environment: export it, or write ${%s:-default}", m[2], m[2]))
				return ref
			}
			if !ok {
				v = m[4]
			}
			expanded[n.Line] = true
			return v
		})
		// The tag was resolved from the text "${VAR}": a string. Resolve it again
		// from the value, quoted or not (YAML needs quotes inside {...}), so that
		// `partitions: "${PARTITIONS}"` can be a number. String fields take any
		// scalar's text, so nothing is lost for them.
		if n.Tag == "!!str" || n.Tag == "" {
			n.Tag, n.Style = "", 0
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			expandEnv(n.Content[i], dir, expanded, report)
		}
	default:
		for _, c := range n.Content {
			expandEnv(c, dir, expanded, report)
		}
	}
}

// checkKeys reports every mapping key that no field of t accepts, with the keys
// that would be accepted (yaml.v3 has no strict mode for decoding from a node).
func checkKeys(n *yaml.Node, t reflect.Type, where string, report func(int, string)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.AliasNode:
		return
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			if tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				fields[tag] = t.Field(i).Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				in := ""
				if where != "" {
					in = " in " + where
				}
				report(k.Line, fmt.Sprintf("unknown key %q%s (known: %s)", k.Value, in, strings.Join(sortedKeys(fields), ", ")))
				continue
			}
			checkKeys(n.Content[i+1], ft, strings.TrimPrefix(where+"."+k.Value, "."), report)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(n.Content[i+1], t.Elem(), strings.TrimPrefix(where+"."+n.Content[i].Value, "."), report)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode && t != reflect.TypeOf(FieldRules{}):
		for i, c := range n.Content {
			checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", where, i), report)
		}
	}
}

// recordLines notes the line of every key path, for messages about values.
func recordLines(n *yaml.Node, prefix string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			path := strings.TrimPrefix(prefix+"."+n.Content[i].Value, ".")
			lines[path] = n.Content[i].Line
			recordLines(n.Content[i+1], path, lines)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			path := fmt.Sprintf("%s[%d]", prefix, i)
			lines[path] = c.Line
			recordLines(c, path, lines)
		}
	}
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// schemaPath resolves an entity's schema file relative to the config file.
func (c *Config) schemaPath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.path), p)
}
