package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/sources/mysql"
	"github.com/cdc-dev/cdc/sources/postgres"
)

// Verdicts of check-migration, for each statement and entity.
const (
	// verdictInvisible: the statement touches nothing the entity maps.
	verdictInvisible = "invisible"
	// verdictCompatible: the entity's table changes, and its mapping still
	// holds against the table as it will be.
	verdictCompatible = "compatible"
	// verdictBreaking: the mapping no longer holds, or the statement does
	// something to the table no topic can follow: cdc would stop at it.
	verdictBreaking = "breaking"
)

// migrationVerdict is what one statement means for one entity.
type migrationVerdict struct {
	Entity  string `json:"entity"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

type migrationStatement struct {
	File      string             `json:"file"`
	Line      int                `json:"line"`
	Statement string             `json:"statement"`
	Entities  []migrationVerdict `json:"entities"`
}

const (
	fixMapping = "change the mapping in the same pull request (a rule for the new shape, a field type that holds the new type), or publish a new entity version (a new schema and topic) and backfill it"
	fixRows    = "if the rows must go, stop cdc before the migration and fill the entity's topics again after it (snapshot.mode: when_needed, or a new topic version); otherwise change the migration"
)

// checkMigrationCommand predicts what migration files (PostgreSQL, or MySQL
// and MariaDB) do to the mapped tables
// of a catalog written by cdc catalog, and says for each statement and entity
// whether it is invisible, compatible or breaking; it fails when one breaks.
func checkMigrationCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cdc check-migration", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "the configuration `file`")
	catalogPath := fs.String("catalog", "", "the tables before the migration: a `file` written by cdc catalog")
	format := fs.String("format", "text", "text, or json for tools")
	writeCatalog := fs.String("write-catalog", "", "also write the catalog as it will be after the migration to this `file`")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *configPath == "" || *catalogPath == "" || fs.NArg() == 0 || (*format != "text" && *format != "json") {
		fmt.Fprintln(stderr, "cdc check-migration: --config FILE and --catalog FILE are required, then the migration files (.sql) in the order they run; --format text or json")
		fs.Usage()
		return errUsage
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	entities, err := cfg.mappingEntities()
	if err != nil {
		return err
	}
	source, tables, settings, err := readCatalog(*catalogPath)
	if err != nil {
		return err
	}
	if source != cfg.Source.Kind {
		return fmt.Errorf("%s describes a %s database, and source.kind is %s: write it with cdc catalog from the connector's database", *catalogPath, source, cfg.Source.Kind)
	}
	predict, err := predictor(cfg, entities)
	if err != nil {
		return err
	}
	byName := map[cdc.TableName]*cdc.Table{}
	for _, t := range tables {
		t.Identity = catalogIdentity(t, settings[t.Name])
		byName[t.Name] = t
	}
	var statements []migrationStatement
	breaking := 0
	for _, file := range fs.Args() {
		sql, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		before := maps.Clone(byName) // an aggregate's other tables, as the file finds them
		steps, err := predict(byName, string(sql))
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		for _, step := range steps {
			st := migrationStatement{File: file, Line: step.Line, Statement: step.Text, Entities: []migrationVerdict{}}
			for _, e := range entities {
				v := judge(e, step, before)
				if v.Verdict == verdictInvisible {
					continue
				}
				if v.Verdict == verdictBreaking {
					breaking++
				}
				st.Entities = append(st.Entities, v)
			}
			statements = append(statements, st)
		}
	}
	if *writeCatalog != "" {
		after := make([]*cdc.Table, 0, len(byName))
		for _, t := range byName {
			after = append(after, t)
		}
		data, err := encodeCatalog(source, after, settings)
		if err == nil {
			err = os.WriteFile(*writeCatalog, data, 0o644)
		}
		if err != nil {
			return fmt.Errorf("write the catalog after the migration: %w", err)
		}
	}
	if *format == "json" {
		out, _ := json.MarshalIndent(map[string]any{"statements": statements, "breaking": breaking}, "", "  ")
		fmt.Fprintf(stdout, "%s\n", out)
	} else {
		printVerdicts(stdout, statements)
	}
	if breaking > 0 {
		return fmt.Errorf("%d breaking verdicts: the migration would stop cdc or change what its topics mean", breaking)
	}
	return nil
}

// predictor returns the source's reader of migrations. MySQL's unqualified
// table names are in the database of the mapped tables.
func predictor(cfg *Config, entities []*mapping.Entity) (func(map[cdc.TableName]*cdc.Table, string) ([]cdc.MigrationStep, error), error) {
	if cfg.Source.Kind == "postgres" {
		return postgres.PredictMigration, nil
	}
	db := ""
	for _, e := range entities {
		if db != "" && e.Table.Schema != db {
			return nil, fmt.Errorf("the mapped tables are in databases %s and %s: check-migration cannot tell which one a migration's unqualified names are in; qualify them and map one database per connector", db, e.Table.Schema)
		}
		db = e.Table.Schema
	}
	zero := mysql.ZeroDates(cfg.Source.MySQL.ZeroDates)
	return func(tables map[cdc.TableName]*cdc.Table, sql string) ([]cdc.MigrationStep, error) {
		return mysql.PredictMigration(tables, sql, db, zero)
	}, nil
}

// judge says what one statement means for one entity; tables are the
// others, for an aggregate's.
func judge(e *mapping.Entity, step cdc.MigrationStep, tables map[cdc.TableName]*cdc.Table) migrationVerdict {
	if e.IsAggregate() {
		return judgeAggregate(e, step, tables)
	}
	v := migrationVerdict{Entity: e.Name, Verdict: verdictInvisible}
	if why, ok := step.Breaks[e.Table]; ok {
		v.Verdict, v.Reason, v.Fix = verdictBreaking, why, fixRows
		return v
	}
	i := slices.IndexFunc(step.Changed, func(t *cdc.Table) bool { return t.Name == e.Table })
	if i < 0 {
		return v
	}
	t := step.Changed[i]
	_, err := mapping.Compile(e, t, mapping.Framing{})
	if err == nil {
		err = mapping.NewMapper([]*mapping.Entity{e}, mapping.Options{}).CheckKeys(t)
	}
	if err != nil {
		v.Verdict, v.Reason, v.Fix = verdictBreaking, joinedLines(err), fixMapping
		return v
	}
	v.Verdict, v.Reason = verdictCompatible, "the table changes and the mapping still holds against it"
	return v
}

// judgeAggregate says what one statement means for an aggregate: a change
// to any of its tables must leave the whole aggregate compiling.
func judgeAggregate(e *mapping.Entity, step cdc.MigrationStep, tables map[cdc.TableName]*cdc.Table) migrationVerdict {
	v := migrationVerdict{Entity: e.Name, Verdict: verdictInvisible}
	changed := false
	for _, name := range e.Tables() {
		if why, ok := step.Breaks[name]; ok {
			v.Verdict, v.Reason, v.Fix = verdictBreaking, why, fixRows
			return v
		}
		changed = changed || slices.ContainsFunc(step.Changed, func(t *cdc.Table) bool { return t.Name == name })
	}
	if !changed {
		return v
	}
	described := func(name cdc.TableName) *cdc.Table {
		if i := slices.IndexFunc(step.Changed, func(t *cdc.Table) bool { return t.Name == name }); i >= 0 {
			return step.Changed[i]
		}
		return tables[name]
	}
	if _, err := mapping.CompileAggregate(e, described, mapping.Framing{}); err != nil {
		v.Verdict, v.Reason, v.Fix = verdictBreaking, joinedLines(err), fixMapping
		return v
	}
	v.Verdict, v.Reason = verdictCompatible, "the tables change and the aggregate still holds against them"
	return v
}

// joinedLines is an error's problems, one per line, each once.
func joinedLines(err error) string {
	var lines []string
	for _, leaf := range leaves(err) {
		if !slices.Contains(lines, leaf.Error()) {
			lines = append(lines, leaf.Error())
		}
	}
	return strings.Join(lines, "\n")
}

func printVerdicts(w io.Writer, statements []migrationStatement) {
	for _, st := range statements {
		fmt.Fprintf(w, "%s:%d: %s\n", st.File, st.Line, firstLine(st.Statement))
		if len(st.Entities) == 0 {
			fmt.Fprintln(w, "  invisible: touches nothing mapped")
		}
		for _, v := range st.Entities {
			fmt.Fprintf(w, "  %s: %s: %s\n", v.Entity, v.Verdict, v.Reason)
			if v.Fix != "" {
				fmt.Fprintf(w, "    fix: %s\n", v.Fix)
			}
		}
	}
}

func firstLine(s string) string {
	if line, _, more := strings.Cut(s, "\n"); more {
		return line + " ..."
	}
	return s
}
