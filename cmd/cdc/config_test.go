package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestExampleConfigLoads(t *testing.T) {
	t.Setenv("SHOP_DSN", "postgres://cdc:secret@db:5432/shop")
	cfg, err := LoadConfig("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "shop" || cfg.Source.DSN != "postgres://cdc:secret@db:5432/shop" || cfg.Source.Postgres.Slot != "cdc_shop" {
		t.Errorf("name %q dsn %q slot %q", cfg.Name, cfg.Source.DSN, cfg.Source.Postgres.Slot)
	}
	if len(cfg.Kafka.Brokers) != 1 || cfg.Kafka.Brokers[0] != "127.0.0.1:9092" {
		t.Errorf("brokers %v: want the default of ${KAFKA_BROKERS:-...}", cfg.Kafka.Brokers)
	}
	entities, err := cfg.mappingEntities()
	if err != nil {
		t.Fatal(err)
	}
	if len(entities) != 5 || entities[0].Topic != "shop.customer.v1" || len(entities[0].Fields) != 7 {
		t.Errorf("entities %+v", entities)
	}
	// The outbox's routes, one entity each, in the order of their values.
	for i, want := range []string{"events.Customer shop.customer_events.v1", "events.Order shop.order_events.v1"} {
		if e := entities[3+i]; e.Name+" "+e.Topic != want || e.Outbox == nil || e.Outbox.Route != "aggregatetype" {
			t.Errorf("outbox route %d: %+v, want %s", i, e, want)
		}
	}
	if cfg.Kafka.TransactionTopic != "shop.transactions" {
		t.Errorf("transaction topic %q", cfg.Kafka.TransactionTopic)
	}
	if !strings.HasPrefix(entities[0].Fields[0].Origin, "../../config.example.yaml:") {
		t.Errorf("field origin %q", entities[0].Fields[0].Origin)
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	schema := `{"type":"record","name":"C","fields":[{"name":"id","type":"long"}]}`
	if err := os.WriteFile(filepath.Join(dir, "c.avsc"), []byte(schema), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "cdc.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const validConfig = `name: shop
source:
  kind: postgres
  dsn: postgres://localhost/shop
kafka:
  brokers: [localhost:9092]
entities:
  - name: customer
    table: public.customer
    topic: shop.customer.v1
    schema: c.avsc
    key: [id]
    fields:
      id: customer_id
`

func TestConfigMistakesAreReportedWithFileAndLine(t *testing.T) {
	cases := []struct {
		name, edit, with string
		want             []string
	}{
		{"unknown key", "kafka:\n", "kafka:\n  brokerz: [x:1]\n", []string{`cdc.yaml:6: unknown key "brokerz" in kafka (known: brokers, checkpoint_topic, compression, dead_letter_topic, exactly_once, headers, sasl, schema_registry, tls, topic, transaction_topic, version)`}},
		{"unknown entity key", "    key: [id]\n", "    key: [id]\n    topik: x\n", []string{`cdc.yaml:13: unknown key "topik" in entities[0]`}},
		{"wrong type", "  brokers: [localhost:9092]\n", "  brokers: [localhost:9092]\n  topic: {partitions: many}\n", []string{"/cdc.yaml:7: cannot unmarshal !!str `many` into int32"}},
		{"missing variable", "dsn: postgres://localhost/shop", "dsn: ${CDC_TEST_UNSET_DSN}", []string{`cdc.yaml:4: ${CDC_TEST_UNSET_DSN} is not set in the environment`}},
		{"bad kind", "kind: postgres", "kind: oracle", []string{`cdc.yaml:3: source.kind: "oracle": want postgres or mysql`}},
		{"bad table", "table: public.customer", "table: customer", []string{`cdc.yaml:9: entities[0].table: table "customer": want schema.table`}},
		{"bad topic", "topic: shop.customer.v1", "topic: shop customer", []string{`cdc.yaml:10: entities[0].topic: "shop customer": a Kafka topic name`}},
		{"no key", "    key: [id]\n", "", []string{`entities[0].key: required`}},
		{"missing schema", "schema: c.avsc", "schema: nope.avsc", []string{`cdc.yaml:11: entities[0].schema: stat`, "nope.avsc: no such file"}},
		{"rule with two sources", "      id: customer_id\n", "      id: {column: customer_id, expr: \"1\"}\n", []string{`cdc.yaml:14: field "id": give exactly one of column, expr and record`}},
		{"unknown rule key", "      id: customer_id\n", "      id: {colum: customer_id}\n", []string{`cdc.yaml:14: field "id": unknown rule key "colum" (known: column, expr, enum, mask, record)`}},
		{"bad mask", "      id: customer_id\n", "      id: {column: customer_id, mask: sha1}\n", []string{`cdc.yaml:14: field "id": mask "sha1": want hash`}},
		{"hash without salt", "      id: customer_id\n", "      id: {column: customer_id, mask: hash}\n", []string{`cdc.yaml:13: entities[0].fields: hash masks need a secret salt; set masking.salt`}},
		{"short salt", "kafka:\n", "masking: {salt: abc}\nkafka:\n", []string{`cdc.yaml:5: masking.salt: too short`}},
		{"enum without column", "      id: customer_id\n", "      id: {expr: \"1\", enum: {1: A}}\n", []string{`cdc.yaml:14: field "id": enum and mask apply to a column`}},
		{"bad enum symbol", "      id: customer_id\n", "      id: {column: c, enum: {1: not a symbol}}\n", []string{`cdc.yaml:14: field "id": enum: code 1: want an Avro enum symbol`}},
		{"nested rule mistake", "      id: customer_id\n", "      id: {record: {street: {colum: s}}}\n", []string{`cdc.yaml:14: field "street": unknown rule key "colum"`}},
		{"enum and mask", "      id: customer_id\n", "      id: {column: c, enum: {1: A}, mask: redact}\n", []string{`cdc.yaml:14: field "id": a field is either an enum or masked, not both`}},
		{"bad error policy", "    key: [id]\n", "    key: [id]\n    on_error: ignore\n", []string{`cdc.yaml:13: entities[0].on_error: "ignore": want stop`}},
		{"mysql zero dates", "kind: postgres", "kind: mysql\n  mysql: {zero_dates: epoch}", []string{`cdc.yaml:4: source.mysql.zero_dates: "epoch": want error (stop at a zero date) or null (send it as NULL)`}},
		{"mysql unknown key", "kind: postgres", "kind: mysql\n  mysql: {serverid: 5}", []string{`unknown key "serverid" in source.mysql (known: accept_unlogged_cascades, gtid, server_id, tls, watermark_table, zero_dates)`}},
		{"two problems at once", "kind: postgres", "kind: oracle\n  dsn2: x", []string{`unknown key "dsn2" in source`}},
		{"bad http address", "kafka:\n", "http: {listen: 9464}\nkafka:\n", []string{`cdc.yaml:5: http.listen: "9464": want host:port (e.g. 127.0.0.1:9464, or :9464 for every interface), or off`}},
		{"negative streaming memory", "  dsn: postgres://localhost/shop\n", "  dsn: postgres://localhost/shop\n  postgres: {streaming_memory_mib: -1}\n", []string{`cdc.yaml:5: source.postgres.streaming_memory_mib: -1: want the MiB of streamed transactions held in memory before they go to disk (default 64)`}},
		{"spill directory missing", "  dsn: postgres://localhost/shop\n", "  dsn: postgres://localhost/shop\n  postgres: {spill_directory: /nonexistent/cdc}\n", []string{`cdc.yaml:5: source.postgres.spill_directory: "/nonexistent/cdc" is not a directory: streamed transactions past source.postgres.streaming_memory_mib are held there until their commit; create it`}},
		{"bad heartbeat interval", "  dsn: postgres://localhost/shop\n", "  dsn: postgres://localhost/shop\n  postgres: {heartbeat_message_interval: 30}\n", []string{`cdc.yaml:5: source.postgres.heartbeat_message_interval: "30": want a duration of at least 1s, such as 30s or 5m`}},
		{"mysql bad watermark table", "kind: postgres", "kind: mysql\n  mysql: {watermark_table: cdc_watermarks}", []string{`cdc.yaml:4: source.mysql.watermark_table: "cdc_watermarks": want database.table`}},
		{"bad standby session", "kafka:\n", "standby: {enabled: true, session_timeout: 6}\nkafka:\n", []string{`cdc.yaml:5: standby.session_timeout: "6": want a duration of at least 1s, such as 6s`}},
		{"bad chunk size", "kafka:\n", "snapshot: {chunk_size: -5}\nkafka:\n", []string{`cdc.yaml:5: snapshot.chunk_size: -5: want a number of rows from 1 to 1000000 (default 100000)`}},
		{"bad backfill chunk size", "kafka:\n", "snapshot: {backfill_chunk_size: 200000}\nkafka:\n", []string{`cdc.yaml:5: snapshot.backfill_chunk_size: 200000: want a number of rows from 1 to 100000 (default 10000); a backfill holds a chunk in memory`}},
		{"bad snapshot parallelism", "kafka:\n", "snapshot: {parallelism: 100}\nkafka:\n", []string{`cdc.yaml:5: snapshot.parallelism: 100: want a number of connections from 1 to 32 (default 1)`}},
		{"bad compression", "  brokers: [localhost:9092]\n", "  brokers: [localhost:9092]\n  compression: brotli\n", []string{`cdc.yaml:7: kafka.compression: "brotli": want one of gzip, lz4, none, snappy, zstd`}},
		{"transaction topic of an entity", "  brokers: [localhost:9092]\n", "  brokers: [localhost:9092]\n  transaction_topic: shop.customer.v1\n", []string{`cdc.yaml:7: kafka.transaction_topic: shop.customer.v1 is already the topic of an entity`}},
		{"outbox with a topic", "    key: [id]\n    fields:\n      id: customer_id\n", "    outbox: {routes: {Order: {topic: shop.order_events, schema: c.avsc}}}\n", []string{`cdc.yaml:10: entities[0].topic: an outbox entity takes no topic`}},
		{"outbox without routes", "    topic: shop.customer.v1\n    schema: c.avsc\n    key: [id]\n    fields:\n      id: customer_id\n", "    outbox: {payload: body}\n", []string{`cdc.yaml:10: entities[0].outbox.routes: required: an outbox without routes publishes nothing`}},
		{"outbox route on an entity's topic", "    topic: shop.customer.v1\n    schema: c.avsc\n    key: [id]\n    fields:\n      id: customer_id\n",
			"    outbox:\n      routes:\n        Order: {topic: shop.checkpoints, schema: c.avsc}\n        Customer: {topic: shop.checkpoints, schema: nope.avsc}\n",
			[]string{`cdc.yaml:12: entities[0].outbox.routes.Order.topic: shop.checkpoints is already the topic of another entity or route`}},
		{"outbox unknown key", "    topic: shop.customer.v1\n    schema: c.avsc\n    key: [id]\n    fields:\n      id: customer_id\n", "    outbox: {routes: {Order: {topik: x}}}\n", []string{`cdc.yaml:10: unknown key "topik" in entities[0].outbox.routes.Order (known: schema, topic)`}},
		{"bad transaction topic", "  brokers: [localhost:9092]\n", "  brokers: [localhost:9092]\n  transaction_topic: 'shop transactions'\n", []string{`cdc.yaml:7: kafka.transaction_topic: "shop transactions": a Kafka topic name`}},
		{"bad route topic", "    topic: shop.customer.v1\n    schema: c.avsc\n    key: [id]\n    fields:\n      id: customer_id\n", "    outbox: {routes: {Order: {topic: 'order events', schema: c.avsc}}}\n", []string{`cdc.yaml:10: entities[0].outbox.routes.Order.topic: "order events": a Kafka topic name`}},
		{"bad header set", "  brokers: [localhost:9092]\n", "  brokers: [localhost:9092]\n  headers: minimal\n", []string{`cdc.yaml:7: kafka.headers: "minimal": want full (every CloudEvents attribute on every record) or compact`}},
		{"edge without join", "      id: customer_id\n", "      id: customer_id\n    children:\n      lines: {table: public.line, fields: {sku: sku}}\n", []string{`cdc.yaml:16: entities[0].children.lines.join: required: it says which rows belong to which root`}},
		{"edge on the root table", "      id: customer_id\n", "      id: customer_id\n    dimensions:\n      me: {table: public.customer, join: {customer_id: customer_id}, fields: {id: customer_id}}\n", []string{`entities[0].dimensions.me.table: public.customer is the aggregate's root`}},
		{"child with propagate", "      id: customer_id\n", "      id: customer_id\n    children:\n      lines: {table: public.line, join: {customer_id: customer_id}, propagate: false, fields: {sku: sku}}\n", []string{`entities[0].children.lines.propagate: children always propagate`}},
		{"aggregate with dead letters", "      id: customer_id\n", "      id: customer_id\n    on_error: dead_letter\n    children:\n      lines: {table: public.line, join: {customer_id: customer_id}, fields: {sku: sku}}\n", []string{`entities[0].on_error: an aggregate's record is computed from several rows`}},
		{"dimension with order_by", "      id: customer_id\n", "      id: customer_id\n    dimensions:\n      store: {table: public.store, join: {store_id: store_id}, order_by: [store_id], fields: {id: store_id}}\n", []string{`entities[0].dimensions.store.order_by: a dimension is one row`}},
		{"field filled by a child and a dimension", "      id: customer_id\n", "      id: customer_id\n    children:\n      x: {table: public.line, join: {customer_id: customer_id}, fields: {sku: sku}}\n    dimensions:\n      x: {table: public.store, join: {store_id: store_id}, fields: {id: store_id}}\n", []string{`field x is filled by a child and a dimension`}},
		{"edge unknown key", "      id: customer_id\n", "      id: customer_id\n    children:\n      lines: {table: public.line, joins: {customer_id: customer_id}}\n", []string{`unknown key "joins" in entities[0].children.lines (known: fields, join, order_by, propagate, table)`}},
		{"bad slot name", "  dsn: postgres://localhost/shop\n", "  dsn: postgres://localhost/shop\n  postgres: {slot: My-Slot}\n", []string{`source.postgres.slot: "My-Slot"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(validConfig, c.edit, c.with, 1)
			if text == validConfig {
				t.Fatal("the edit changed nothing")
			}
			err := load(writeConfig(t, text))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// load reads a configuration and its schemas, as every command does.
func load(path string) error {
	cfg, err := LoadConfig(path)
	if err != nil {
		return err
	}
	_, err = cfg.mappingEntities()
	return err
}

func TestValidConfigGetsDefaults(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, validConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Postgres.Slot != "cdc_shop" || cfg.Source.Postgres.Publication != "cdc_shop" || cfg.Snapshot.Mode != "initial" || cfg.Snapshot.ChunkSize != 100_000 ||
		cfg.Snapshot.BackfillChunkSize != 10_000 || cfg.Snapshot.Parallelism != 1 ||
		cfg.Kafka.CheckpointTopic != "_cdc_checkpoints" || cfg.Kafka.Compression != "snappy" || cfg.Log.Level != "info" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestEnvironmentValuesAreTypedAndNeverPrinted(t *testing.T) {
	t.Setenv("CDC_TEST_PARTITIONS", "6")
	t.Setenv("CDC_TEST_SECRET", "hunter2-not-a-number")
	cfg, err := LoadConfig(writeConfig(t, strings.Replace(validConfig, "  brokers: [localhost:9092]\n",
		"  brokers: [localhost:9092]\n  topic: {partitions: \"${CDC_TEST_PARTITIONS}\"}\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.Topic.Partitions != 6 {
		t.Errorf("partitions %d", cfg.Kafka.Topic.Partitions)
	}
	_, err = LoadConfig(writeConfig(t, strings.Replace(validConfig, "  brokers: [localhost:9092]\n",
		"  brokers: [localhost:9092]\n  topic:\n    replication_factor: ${CDC_TEST_SECRET}\n", 1)))
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "cdc.yaml:8: cannot unmarshal") {
		t.Fatalf("want a type error at line 8 without the value, got %v", err)
	}
	t.Setenv("CDC_TEST_BROKERS", "a:1, b:2")
	cfg, err = LoadConfig(writeConfig(t, strings.Replace(validConfig, "[localhost:9092]", `["${CDC_TEST_BROKERS}", "c:3"]`, 1)))
	if err != nil || strings.Join(cfg.Kafka.Brokers, " ") != "a:1 b:2 c:3" {
		t.Fatalf("brokers %v, %v", cfg.Kafka.Brokers, err)
	}
}

func TestRunWithoutConfigIsAUsageError(t *testing.T) {
	var out, errOut strings.Builder
	if err := Run(t.Context(), []string{"run"}, &out, &errOut); err != errUsage {
		t.Fatalf("got %v", err)
	}
	if err := Run(t.Context(), []string{"frobnicate"}, &out, &errOut); err != errUsage || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Fatalf("got %v, %q", err, errOut.String())
	}
}

func TestTailOfAnUnknownEntityNamesTheEntities(t *testing.T) {
	var out, errOut strings.Builder
	err := Run(t.Context(), []string{"tail", "--config", writeConfig(t, validConfig), "--entity", "custmer"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), `--entity "custmer": no such entity in`) || !strings.Contains(err.Error(), "(has: [customer])") {
		t.Fatalf("got %v", err)
	}
}

func TestBadBrokerIsReportedAtItsOwnEntry(t *testing.T) {
	err := load(writeConfig(t, strings.Replace(validConfig, "  brokers: [localhost:9092]\n", "  brokers:\n    - a:1,b:2\n    - nohost\n", 1)))
	if err == nil || !strings.Contains(err.Error(), `cdc.yaml:8: kafka.brokers[1]: "nohost": want host:port`) {
		t.Fatalf("got %v", err)
	}
}

func TestDeadLetterTopicIsCheckedWhenAnEntityUsesIt(t *testing.T) {
	deadLetters := strings.Replace(validConfig, "    key: [id]\n", "    key: [id]\n    on_error: dead_letter\n", 1)
	cfg, err := LoadConfig(writeConfig(t, deadLetters))
	if err != nil || cfg.Kafka.DeadLetterTopic != "shop.dead_letter" {
		t.Fatalf("default dead-letter topic %q, %v", cfg.Kafka.DeadLetterTopic, err)
	}
	for topic, want := range map[string]string{
		"bad topic":        `cdc.yaml:7: kafka.dead_letter_topic: "bad topic": a Kafka topic name`,
		"shop.customer.v1": `cdc.yaml:7: kafka.dead_letter_topic: shop.customer.v1 is already the topic of an entity or of the checkpoints`,
	} {
		text := strings.Replace(deadLetters, "  brokers: [localhost:9092]\n", "  brokers: [localhost:9092]\n  dead_letter_topic: "+strconv.Quote(topic)+"\n", 1)
		if err := load(writeConfig(t, text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("dead_letter_topic %q: got %v, want %s", topic, err, want)
		}
	}
}

// A secret may come from a file, ${file:PATH} (relative to the config):
// its content, without the final line break, and never in a message.
func TestSecretsFromFilesAreReadAndNeverPrinted(t *testing.T) {
	path := writeConfig(t, strings.Replace(validConfig, "  brokers: [localhost:9092]", `  brokers: [localhost:9092]
  tls: {enabled: true}
  sasl: {mechanism: scram-sha-512, username: cdc, password: "${file:secrets/kafka}"}
  schema_registry: {url: "https://registry:8081", username: cdc, password: "${file:/nonexistent/registry}"}`, 1))
	dir := filepath.Dir(path)
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "kafka"), []byte("s3cr3t-from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), "${file:/nonexistent/registry}: stat /nonexistent/registry: no such file or directory") {
		t.Fatalf("a missing secret file: %v", err)
	}
	if cfg.Kafka.SASL.Password != "s3cr3t-from-a-file" {
		t.Errorf("password %q: want the file's content without its line break", cfg.Kafka.SASL.Password)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the error shows a secret: %v", err)
	}
	// A wrongly typed value from a file is reported without it.
	path = writeConfig(t, strings.Replace(validConfig, "  brokers: [localhost:9092]", "  brokers: [localhost:9092]\n  exactly_once: ${file:flag}", 1))
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "flag"), []byte("s3cr3t"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("want an error without the value: %v", err)
	}
}

// kafka.sasl and kafka.tls are checked when the file is read.
func TestSecuritySettingsAreChecked(t *testing.T) {
	for _, c := range []struct{ settings, want string }{
		{"  sasl: {mechanism: scram-sha-1, username: a, password: b}", `kafka.sasl.mechanism: "scram-sha-1": want one of plain, scram-sha-256, scram-sha-512, oauthbearer, aws-msk-iam`},
		{"  sasl: {mechanism: scram-sha-256, username: a}", "mechanism scram-sha-256 needs username and password"},
		{"  sasl: {mechanism: plain, username: a, password: b}", "mechanism plain sends the password as it is; turn kafka.tls on"},
		{"  sasl: {mechanism: oauthbearer}", "needs token_file (read again when it changes) or token_command"},
		{"  tls: {ca_file: /nonexistent/ca.pem}", "kafka.tls: ca_file: open /nonexistent/ca.pem: no such file or directory"},
		{"  tls: {cert_file: /etc/hostname}", "cert_file and key_file go together"},
		{"  tls: {mode: trust-me}", `mode "trust-me": want verify-full, verify-ca or required`},
		{"  schema_registry: ftp://registry", "kafka.schema_registry: want an http:// or https:// URL"},
	} {
		path := writeConfig(t, strings.Replace(validConfig, "  brokers: [localhost:9092]", "  brokers: [localhost:9092]\n"+c.settings, 1))
		if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.settings, err, c.want)
		}
	}
}

// A schema path may name any file: one that is not a schema is refused with
// a short excerpt of why, never its content; a device is refused at once.
func TestSchemaFileIsReadBoundedAndNeverPrinted(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"secret.txt", "secret.txt is not an Avro schema: a schema file holds a JSON object"},
		{"/dev/urandom", "/dev/urandom is not a regular file"},
	} {
		path := writeConfig(t, strings.Replace(validConfig, "schema: c.avsc", "schema: "+c.file, 1))
		if err := os.WriteFile(filepath.Join(filepath.Dir(path), "secret.txt"), []byte(`root:x:0:0:THE-SECRET-LINE:/root:/bin/bash`+"\n"+strings.Repeat("more secret text ", 100)), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(path)
		if err == nil {
			_, err = cfg.mappingEntities()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.file, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "THE-SECRET-LINE") || strings.Contains(err.Error(), "more secret text more")) {
			t.Errorf("%s: the error shows the file's content: %v", c.file, err)
		}
	}
}

func TestLogicalMessagesOutsidePostgreSQLAreRefused(t *testing.T) {
	text := strings.Replace(validConfig, "kind: postgres", "kind: mysql", 1)
	text = strings.Replace(text, "    topic: shop.customer.v1\n    schema: c.avsc\n    key: [id]\n    fields:\n      id: customer_id\n",
		"    outbox: {messages: true, key: id, routes: {shop.order: {topic: t, schema: c.avsc}}}\n", 1)
	text = strings.Replace(text, "    table: public.customer\n", "", 1)
	err := load(writeConfig(t, text))
	if err == nil || !strings.Contains(err.Error(), "entities[0].outbox.messages: only PostgreSQL has logical messages (pg_logical_emit_message); write the events into an outbox table") {
		t.Fatalf("got %v", err)
	}
}

func TestATableEntityOnAnOutboxTableIsRefused(t *testing.T) {
	text := validConfig + `  - name: events
    table: public.customer
    outbox: {routes: {Order: {topic: shop.order_events, schema: c.avsc}}}
`
	err := load(writeConfig(t, text))
	if err == nil || !strings.Contains(err.Error(), "cdc.yaml:9: entities[0].table: public.customer is an outbox table: its rows are events, never snapshotted") {
		t.Fatalf("got %v", err)
	}
	text += `  - name: more_events
    table: public.customer
    outbox: {routes: {Invoice: {topic: shop.invoice_events, schema: c.avsc}}}
`
	if err := load(writeConfig(t, text)); err == nil || !strings.Contains(err.Error(), "entities[2].table: public.customer is the outbox of two entities") {
		t.Fatalf("two outboxes on a table: %v", err)
	}
}
