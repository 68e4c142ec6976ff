package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/pipeline"
)

// enumSampleLimit bounds the distinct values read per enum column.
const enumSampleLimit = 1000

// validateCommand checks everything cdc run would check before producing, without
// creating or registering anything, and lists every problem: configuration,
// mappings against the tables, database prerequisites, enum maps against the
// values in the tables, topics, and schema compatibility in the registry. It
// goes as far as each mistake allows, and exits 0 only when all hold, so it can
// gate a deployment.
func validateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var catalogPath, against, level string
	path, err := configFlag("validate", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&catalogPath, "catalog", "", "check the mappings against this `file`, written by cdc catalog, instead of the database")
		fs.StringVar(&against, "against", "", "also check each schema file against the same file at this git `revision` (e.g. origin/main)")
		fs.StringVar(&level, "compatibility", "BACKWARD", "the `level` of --against: "+strings.Join(compatibilityLevels, ", "))
	})
	if err != nil {
		return err
	}
	if !slices.Contains(compatibilityLevels, level) {
		fmt.Fprintf(stderr, "cdc validate: --compatibility %q: want one of %s\n", level, strings.Join(compatibilityLevels, ", "))
		return errUsage
	}
	cfg, err := LoadConfig(path)
	if cfg == nil {
		(&report{stderr: stderr}).check("configuration", err)
		return errors.New("invalid configuration")
	}
	r := &report{stdout: stdout, stderr: stderr}
	r.check("configuration", err)
	// The checks' own logs are left out; a check that waits long says so.
	c, err := newConnector(cfg, newLogger(cfg, io.Discard), newLogger(cfg, stderr))
	defer c.Close()
	r.check("schemas", err)
	// What needs no table is checked whether or not the database answers.
	var rules []error
	for _, e := range c.entities {
		rules = append(rules, mapping.Check(e))
	}
	r.check("mappings", errors.Join(rules...)) // compiling against the tables finds them again: listed once
	if against != "" {
		validateAgainst(r, c, against, level)
	}
	if r.ok() {
		fmt.Fprintf(stdout, "ok: configuration %s (%d entities)\n", cfg.path, len(c.entities))
	}
	switch {
	case len(c.entities) == 0:
		r.skip("the database and the brokers", "no entity could be read")
	case catalogPath != "":
		validateCatalog(r, c, catalogPath)
	case cfg.Source.DSN == "" || cfg.Source.Kind == "":
		r.skip("the database's prerequisites and the mappings against the tables", "source.kind and source.dsn are needed")
	default:
		validateDatabase(ctx, r, c)
	}
	switch {
	case len(c.entities) == 0:
	case catalogPath != "":
		r.skip("the topics and the schema registry", "--catalog: no servers")
	case len(cfg.Kafka.Brokers) > 0:
		validateKafka(ctx, r, c)
	default:
		r.skip("the topics and the schema registry", "kafka.brokers is needed")
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(r.failed) > 0 {
		return fmt.Errorf("validation failed: %d problems (%s)", r.count, strings.Join(r.failed, ", "))
	}
	return nil
}

// report prints each part's problems as they are found.
type report struct {
	stdout, stderr io.Writer
	failed         []string
	count          int
	// listed holds the problems printed: a check that finds one again (the
	// mappings against the tables, after the checks without them) does not
	// list it twice.
	listed map[string]bool
}

func (r *report) check(what string, err error) bool {
	if err == nil {
		return true
	}
	if !slices.Contains(r.failed, what) {
		r.failed = append(r.failed, what)
	}
	if r.listed == nil {
		r.listed = map[string]bool{}
	}
	lines := slices.DeleteFunc(strings.Split(err.Error(), "\n"), func(line string) bool { return r.listed[line] })
	if len(lines) == 0 {
		return false
	}
	fmt.Fprintf(r.stderr, "problems with the %s:\n", what)
	problems := cdc.Problems(err)
	for _, line := range lines {
		r.listed[line] = true
		r.count++
		fix := ""
		for _, p := range problems {
			// The problem's text ends the line (a caller may prefix it); its
			// fix goes on a line of its own.
			if p.Fix != "" && strings.HasSuffix(line, p.Error()) {
				line, fix = strings.TrimSuffix(line, p.Error())+p.Message(), p.Fix
				break
			}
		}
		fmt.Fprintf(r.stderr, "  - %s\n", line)
		if fix != "" {
			fmt.Fprintf(r.stderr, "    fix: %s\n", fix)
		}
	}
	return false
}

func (r *report) ok() bool { return len(r.failed) == 0 }

// skip says what could not be checked, and why: a passing validate must not
// be mistaken for a complete one.
func (r *report) skip(what, why string) {
	fmt.Fprintf(r.stdout, "not checked: %s (%s)\n", what, why)
}

// validateCatalog checks the mappings against a catalog file instead of the
// database.
func validateCatalog(r *report, c *connector, path string) {
	defer r.skip("the database's log settings, privileges and publication, and the enum codes in the tables", "--catalog: no database")
	source, tables, settings, err := readCatalog(path)
	if !r.check("catalog", err) {
		return
	}
	if source != c.cfg.Source.Kind {
		r.check("catalog", fmt.Errorf("%s describes a %s database, and source.kind is %s: write it with cdc catalog from the connector's database", path, source, c.cfg.Source.Kind))
		return
	}
	var missing []error
	for _, name := range c.tables {
		if !slices.ContainsFunc(tables, func(t *cdc.Table) bool { return t.Name == name }) {
			missing = append(missing, fmt.Errorf("table %s is not in %s: write the catalog again with cdc catalog (a new mapped table), or fix the entity's table", name, path))
		}
	}
	if !r.check("catalog", errors.Join(missing...)) {
		return
	}
	for _, t := range tables {
		t.Identity = catalogIdentity(t, settings[t.Name])
	}
	if r.check("mappings", c.checkMappingsAgainst(tables)) && !slices.Contains(r.failed, "mappings") {
		fmt.Fprintf(r.stdout, "ok: mappings of %d tables (against %s)\n", len(c.tables), path)
	}
	if r.check("table settings", settingsProblems(c, tables, settings)) {
		fmt.Fprintf(r.stdout, "ok: table settings (from %s)\n", path)
	}
	reportLogging(r, c, settings)
}

// catalogIdentity is the columns a catalog's table has in old rows (see
// cdc.Table.Identity), where its settings tell: a USING INDEX identity and
// NOBLOB's are not in the catalog, and a running source checks them.
func catalogIdentity(t *cdc.Table, s cdc.TableSettings) []int {
	if s.ReplicaIdentity == "DEFAULT" || (s.RowImage == "MINIMAL" && len(t.PrimaryKey) > 0) {
		return t.PrimaryKey
	}
	return nil
}

// settingsProblems finds, in the catalog's table settings, what the source
// would refuse at start: a replica identity that logs no old key, or any but
// FULL on a table without a primary key; a foreign key whose actions InnoDB
// does not log (unless accepted).
func settingsProblems(c *connector, tables []*cdc.Table, settings map[cdc.TableName]cdc.TableSettings) error {
	var errs []error
	for _, name := range c.tables {
		s := settings[name]
		i := slices.IndexFunc(tables, func(t *cdc.Table) bool { return t.Name == name })
		identity := func(table, of, identity string) {
			switch {
			case identity == "NOTHING":
				errs = append(errs, &cdc.Problem{What: fmt.Sprintf("%s has REPLICA IDENTITY NOTHING in the catalog: its updates and deletes are logged without the key of the row they change", of),
					Fix: fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY DEFAULT (the primary key) or FULL", table)})
			case identity != "" && identity != "FULL" && i >= 0 && len(tables[i].PrimaryKey) == 0:
				errs = append(errs, &cdc.Problem{What: fmt.Sprintf("%s has REPLICA IDENTITY %s and no primary key in the catalog: the log leaves out large values an update did not change, and cdc reads them back by primary key", of, identity),
					Fix: fmt.Sprintf("add a primary key, or ALTER TABLE %s REPLICA IDENTITY FULL", table)})
			}
		}
		identity(name.String(), "table "+name.String(), s.ReplicaIdentity)
		for _, partition := range slices.Sorted(maps.Keys(s.PartitionIdentities)) {
			identity(partition, "partition "+partition+" of "+name.String(), s.PartitionIdentities[partition])
		}
		if slices.Contains(c.cfg.Source.MySQL.AcceptUnloggedCascades, name.String()) {
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(s.CascadingForeignKeys)) {
			errs = append(errs, &cdc.Problem{
				What: fmt.Sprintf("table %s has foreign key %s %s in the catalog: InnoDB applies such actions without writing them to the binlog, so its topics would miss them", name, key, s.CascadingForeignKeys[key]),
				Fix:  fmt.Sprintf("make the key RESTRICT and have the application change the rows, or accept the gap knowingly: source.mysql.accept_unlogged_cascades: [%s]", name)})
		}
	}
	return errors.Join(errs...)
}

func validateDatabase(ctx context.Context, r *report, c *connector) {
	if !r.check("database", c.openDatabase(ctx)) {
		r.skip("the database's prerequisites, the mappings against the tables and the enum codes in them", "the database could not be reached")
		return
	}
	if r.check("database", c.checkDatabase(ctx)) {
		fmt.Fprintln(r.stdout, "ok: database prerequisites")
	}
	if reader, ok := c.src.(cdc.SettingsReader); ok {
		if settings, err := reader.TableSettings(ctx, c.tables); err == nil {
			reportLogging(r, c, settings)
		}
	}
	if r.check("mappings", c.checkMappings(ctx)) && !slices.Contains(r.failed, "mappings") {
		fmt.Fprintf(r.stdout, "ok: mappings of %d tables\n", len(c.tables))
	}
	if rows, ok := c.src.(cdc.RowSampler); ok {
		checkOutboxRows(ctx, r, c, rows)
	}
	sampler, ok := c.src.(cdc.ValueSampler)
	if !ok {
		return
	}
	var errs []error
	for _, e := range c.entities {
		for _, rule := range e.EnumRules() {
			values, complete, err := sampler.DistinctValues(ctx, e.Table, rule.Column, enumSampleLimit)
			if err != nil {
				continue // a missing table or column is reported with the mappings
			}
			var unmapped []string
			for _, v := range values {
				if _, ok := rule.Codes[v]; !ok {
					unmapped = append(unmapped, v)
				}
			}
			if len(unmapped) > 0 {
				errs = append(errs, fmt.Errorf("%s: entity %q, field %q: %s column %s holds codes the enum map lacks: %s; add them, or they stop the daemon (or become dead letters)",
					rule.Origin, e.Name, rule.Field, e.Table, rule.Column, strings.Join(unmapped, ", ")))
			} else if !complete {
				fmt.Fprintf(r.stdout, "note: enum codes of %s.%s not all checked (large table or many values)\n", e.Table, rule.Column)
			}
		}
	}
	if r.check("enum maps", errors.Join(errs...)) && len(errs) == 0 {
		fmt.Fprintln(r.stdout, "ok: enum maps cover the codes in the tables")
	}
}

// outboxSampleLimit bounds the rows of an outbox table checked.
const outboxSampleLimit = 1000

// checkOutboxRows maps the rows an outbox table holds now as the daemon would
// map their inserts: a payload its route's schema does not describe would
// stop the daemon (or become a dead letter) when the application writes it.
func checkOutboxRows(ctx context.Context, r *report, c *connector, sampler cdc.RowSampler) {
	byTable := map[cdc.TableName][]*mapping.Entity{}
	var tables []cdc.TableName
	for _, e := range c.entities {
		if e.Outbox == nil || e.Table == cdc.LogicalMessages.Name {
			continue
		}
		if byTable[e.Table] == nil {
			tables = append(tables, e.Table)
		}
		strict := *e
		strict.OnError = mapping.OnErrorStop // every problem is an error here
		byTable[e.Table] = append(byTable[e.Table], &strict)
	}
	for _, name := range tables {
		table, rows, err := sampler.SampleRows(ctx, name, outboxSampleLimit)
		if err != nil {
			continue // a missing table or column is reported with the mappings
		}
		mapper := mapping.NewMapper(byTable[name], mapping.Options{})
		var errs []error
		for _, row := range rows {
			if _, err := mapper.Map(&cdc.Change{Table: table, Op: cdc.OpInsert, After: row}, nil, nil); err != nil {
				errs = append(errs, err)
			}
		}
		what := "outbox rows of " + name.String()
		if len(errs) > 5 {
			errs = append(errs[:5], fmt.Errorf("and %d more rows", len(errs)-5))
		}
		if r.check(what, errors.Join(errs...)) {
			fmt.Fprintf(r.stdout, "ok: the %d rows of outbox %s (at most %d read) fit their routes' schemas\n", len(rows), name, outboxSampleLimit)
		}
	}
}

func validateKafka(ctx context.Context, r *report, c *connector) {
	cfg, entities, waits := c.cfg, c.entities, c.waits
	if cfg.Kafka.Version != "" {
		fmt.Fprintln(r.stdout, "note: kafka.version is no longer used (cdc asks the brokers which protocol versions they speak): remove it")
	}
	if !r.check("kafka", c.dialBrokers(ctx)) {
		r.skip("the topics and the schema registry", "the brokers could not be reached")
		return
	}
	k := c.kafka
	tables, events := entityTopics(cfg, entities)
	if cfg.Kafka.TransactionTopic != "" {
		events = append(events, cfg.Kafka.TransactionTopic)
	}
	topics := append(slices.Clone(tables), events...)
	missing, err := await(ctx, waits, "check the topics", func(context.Context) ([]string, error) {
		missing, err := k.CheckTopics(tables)
		if err != nil {
			return nil, err
		}
		missingEvents, err := k.MissingTopics(events)
		return append(missing, missingEvents...), err
	}, nil)
	if r.check("kafka topics", err) {
		fmt.Fprintf(r.stdout, "ok: kafka topics")
		if len(missing) > 0 {
			fmt.Fprintf(r.stdout, " (cdc run will create %s)", strings.Join(missing, ", "))
		}
		fmt.Fprintln(r.stdout)
		existing := slices.DeleteFunc(slices.Clone(topics), func(t string) bool { return slices.Contains(missing, t) })
		limits, err := await(ctx, waits, "read the topics' limits", func(context.Context) (map[string]int, error) { return k.MaxMessageBytes(existing) }, nil)
		if r.check("kafka topics", err) {
			for _, t := range existing {
				fmt.Fprintf(r.stdout, "note: topic %s accepts records of up to %d bytes (max.message.bytes): a larger one is a value error (the entity's on_error)\n", t, limits[t])
			}
		}
	}
	if cfg.Kafka.SchemaRegistry == nil {
		return
	}
	err = awaitErr(ctx, waits, "check the schemas in the registry", func(ctx context.Context) error {
		var errs []error
		for _, e := range entities {
			keySchema, _ := e.KeySchema() // checked by mappingEntities
			if err := k.CheckSchemas(ctx, e.Topic, keySchema, e.Schema); err != nil {
				errs = append(errs, fmt.Errorf("%s: entity %q: %w", e.Origin, e.Name, err))
			}
		}
		if topic := cfg.Kafka.TransactionTopic; topic != "" {
			if err := k.CheckSchemas(ctx, topic, pipeline.TransactionKeySchema, pipeline.TransactionSchema); err != nil {
				errs = append(errs, fmt.Errorf("%s: transaction topic %s: %w", cfg.origin("kafka.transaction_topic"), topic, err))
			}
		}
		return errors.Join(errs...)
	})
	if r.check("schema registry", err) {
		fmt.Fprintln(r.stdout, "ok: schemas registered or compatible with their subjects")
	}
}

// reportLogging says, for each mapped table, how the database logs its
// changes and what that costs or gives: whole old rows, or the key only and
// the values cdc reads back.
func reportLogging(r *report, c *connector, settings map[cdc.TableName]cdc.TableSettings) {
	for _, name := range c.tables {
		s := settings[name]
		filtered := slices.ContainsFunc(c.entities, func(e *mapping.Entity) bool {
			return e.Table == name && (e.Where.Expr != "" || e.TombstoneWhen.Expr != "")
		})
		outbox := !slices.ContainsFunc(c.entities, func(e *mapping.Entity) bool { return e.Table == name && e.Outbox == nil })
		var how string
		switch {
		case outbox && s.RowImage == "MINIMAL":
			how = "an outbox under binlog_row_image MINIMAL: an INSERT logs only the columns it sets, the others are read back by primary key; a row deleted before that is a value error (on_error), never a lost event: set every column the outbox reads, or FULL"
		case outbox:
			how = "an outbox: only inserts are read, whole; updates and deletes publish nothing"
		case s.ReplicaIdentity == "FULL":
			how = "REPLICA IDENTITY FULL: whole old rows in the WAL (the largest WAL per update and delete); nothing is read back"
		case s.ReplicaIdentity != "" && s.ReplicaIdentity != "NOTHING":
			how = "REPLICA IDENTITY " + s.ReplicaIdentity + ": old rows carry the identity's columns only; large values an update left unchanged (TOAST) are read back by primary key, one query per batch that has them; an update of hidden columns publishes the entity's value again"
		case s.RowImage == "FULL":
			how = "binlog_row_image FULL: whole rows before and after; nothing is read back"
		case s.RowImage == "MINIMAL":
			how = "binlog_row_image MINIMAL: old rows carry the primary key only and new rows the columns the statement set; the rest is read back by primary key (a locking read), one query per batch; an update of hidden columns publishes nothing"
		case s.RowImage == "NOBLOB":
			how = "binlog_row_image NOBLOB: rows without the blobs and texts a statement left alone; those are read back by primary key (a locking read), one query per batch that lacks them"
		default:
			continue
		}
		if whole := s.ReplicaIdentity == "FULL" || s.RowImage == "FULL"; filtered && !whole {
			how += "; a delete, or an update leaving the where, of a row whose old row lacks the filter's columns publishes a tombstone even if the key was never published"
		}
		fmt.Fprintf(r.stdout, "logging: %s: %s\n", name, how)
	}
}
