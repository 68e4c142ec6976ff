package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdc-dev/cdc"
)

// check-migration --format json gives tools each statement's verdict per
// entity, and fails when one breaks; no database is involved.
func TestCheckMigrationInJSON(t *testing.T) {
	path := writeConfig(t, validConfig)
	dir := filepath.Dir(path)
	table := &cdc.Table{Name: cdc.TableName{Schema: "public", Name: "customer"},
		Columns: []cdc.Column{{Name: "customer_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64}, {Name: "note", DatabaseType: "text", Kind: cdc.KindString, Nullable: true}}, PrimaryKey: []int{0}}
	catalog, err := encodeCatalog("postgres", []*cdc.Table{table}, map[cdc.TableName]cdc.TableSettings{table.Name: {ReplicaIdentity: "FULL"}})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	catalogPath := write("catalog.json", string(catalog))
	sqlPath := write("001.sql", "ALTER TABLE customer DROP COLUMN note;\nALTER TABLE customer ALTER COLUMN customer_id TYPE text;\n")
	first, second := checkOneBreakingOfTwo(t, path, catalogPath, sqlPath)
	if first.Line != 1 || first.Entities[0].Verdict != verdictCompatible || second.Line != 2 || second.Entities[0].Verdict != verdictBreaking ||
		!strings.Contains(second.Entities[0].Reason, `field "id"`) || second.Entities[0].Fix == "" {
		t.Errorf("verdicts %+v, %+v", first, second)
	}
}

// checkOneBreakingOfTwo runs check-migration --format json on a migration
// of two statements, expects the second to break, and returns both.
func checkOneBreakingOfTwo(t *testing.T, config, catalog, sql string) (first, second migrationStatement) {
	t.Helper()
	var out, errOut strings.Builder
	err := Run(t.Context(), []string{"check-migration", "--config", config, "--catalog", catalog, "--format", "json", sql}, &out, &errOut)
	var got struct {
		Breaking   int
		Statements []migrationStatement
	}
	if jsonErr := json.Unmarshal([]byte(out.String()), &got); jsonErr != nil {
		t.Fatalf("not JSON: %v\n%s%s", jsonErr, out.String(), errOut.String())
	}
	if err == nil || got.Breaking != 1 || len(got.Statements) != 2 {
		t.Fatalf("returned %v, %+v", err, got)
	}
	return got.Statements[0], got.Statements[1]
}

// Inputs check-migration cannot judge are refused, saying which and why.
func TestCheckMigrationRefusesWhatItCannotJudge(t *testing.T) {
	path := writeConfig(t, validConfig)
	dir := filepath.Dir(path)
	table := &cdc.Table{Name: cdc.TableName{Schema: "public", Name: "customer"},
		Columns: []cdc.Column{{Name: "customer_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64}}, PrimaryKey: []int{0}}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pgCatalog, _ := encodeCatalog("postgres", []*cdc.Table{table}, nil)
	myCatalog, _ := encodeCatalog("mysql", []*cdc.Table{table}, nil)
	pg, my := write("pg.json", pgCatalog), write("my.json", myCatalog)
	good, bad := write("001.sql", []byte("ALTER TABLE customer ADD COLUMN x int;\n")), write("002.sql", []byte("ALTER TABLE customer ADD COLUMN;\n"))
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no migration file", []string{"--config", path, "--catalog", pg}, ""},
		{"an unknown format", []string{"--config", path, "--catalog", pg, "--format", "xml", good}, ""},
		{"a catalog of another database", []string{"--config", path, "--catalog", my, good}, "describes a mysql database, and source.kind is postgres"},
		{"a statement that does not parse", []string{"--config", path, "--catalog", pg, good, bad}, "002.sql: not PostgreSQL: syntax error"},
		{"a missing file", []string{"--config", path, "--catalog", pg, filepath.Join(dir, "none.sql")}, "none.sql: no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut strings.Builder
			err := Run(t.Context(), append([]string{"check-migration"}, c.args...), &out, &errOut)
			switch {
			case c.want == "" && err != errUsage:
				t.Errorf("got %v, want a usage error", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
}

// A migration of any of an aggregate's tables is judged against the whole
// aggregate: dropping a column an edge reads breaks it, adding one does not.
func TestCheckMigrationJudgesAnAggregatesEdges(t *testing.T) {
	config := strings.Replace(validConfig, "      id: customer_id\n", `      id: customer_id
    children:
      orders: {table: public.orders, join: {customer_id: customer_id}, fields: {total: total}}
`, 1)
	config = strings.Replace(config, "schema: c.avsc", "schema: agg.avsc", 1)
	path := writeConfig(t, config)
	dir := filepath.Dir(path)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("agg.avsc", `{"type": "record", "name": "C", "fields": [{"name": "id", "type": "long"},
		{"name": "orders", "type": {"type": "array", "items": {"type": "record", "name": "O", "fields": [{"name": "total", "type": "long"}]}}}]}`)
	customer := &cdc.Table{Name: cdc.TableName{Schema: "public", Name: "customer"},
		Columns: []cdc.Column{{Name: "customer_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64}}, PrimaryKey: []int{0}}
	orders := &cdc.Table{Name: cdc.TableName{Schema: "public", Name: "orders"}, Columns: []cdc.Column{
		{Name: "order_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64},
		{Name: "customer_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64},
		{Name: "total", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64}}, PrimaryKey: []int{0}}
	catalog, err := encodeCatalog("postgres", []*cdc.Table{customer, orders}, map[cdc.TableName]cdc.TableSettings{
		customer.Name: {ReplicaIdentity: "FULL"}, orders.Name: {ReplicaIdentity: "FULL"}})
	if err != nil {
		t.Fatal(err)
	}
	catalogPath := write("catalog.json", string(catalog))
	sqlPath := write("002.sql", "ALTER TABLE orders ADD COLUMN note text;\nALTER TABLE orders DROP COLUMN total;\n")
	first, second := checkOneBreakingOfTwo(t, path, catalogPath, sqlPath)
	if first.Entities[0].Verdict != verdictCompatible || second.Entities[0].Verdict != verdictBreaking ||
		!strings.Contains(second.Entities[0].Reason, `field "orders.total"`) {
		t.Errorf("verdicts %+v, %+v", first, second)
	}
}
