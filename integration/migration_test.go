package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// check-migration predicts, from the migration files alone, the catalog the
// server has after running them, and its verdicts agree with the daemon's:
// what it calls compatible streams on, what it calls breaking stops cdc.
func TestCheckMigrationPredictsTheCatalogAndTheDaemonsVerdict(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		dir := t.TempDir()
		cdc := func(args ...string) (string, string, error) { return s.command(s.dsn, args...) }
		write := func(name, text string) string {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		}
		catalog := func(name string) string {
			out, errOut, err := cdc("catalog", "--config", s.config)
			if err != nil {
				t.Fatalf("cdc catalog: %v\n%s", err, errOut)
			}
			return write(name, out)
		}
		before := catalog("before.json")
		// A column the mapping does not read, an index, a wider type; then a
		// mapped column dropped. Each dialect in its own words.
		widen := `ALTER TABLE "public"."customer" ALTER COLUMN first_name TYPE varchar(200)`
		if s.mysql {
			widen = "ALTER TABLE `" + s.name + "`.`customer` MODIFY COLUMN first_name varchar(200) NOT NULL"
		}
		compatible := write("001_compatible.sql", "-- a column the mapping does not read, an index, a wider type\n"+
			"ALTER TABLE customer ADD COLUMN nickname varchar(40);\n"+
			"CREATE INDEX customer_nickname ON customer (nickname);\n"+widen+";\n")
		breaking := write("002_breaking.sql", "ALTER TABLE customer DROP COLUMN last_name;\n")

		out, errOut, err := cdc("check-migration", "--config", s.config, "--catalog", before, "--write-catalog", filepath.Join(dir, "predicted.json"), compatible, breaking)
		for _, want := range []string{
			"001_compatible.sql:2: ALTER TABLE customer ADD COLUMN nickname varchar(40)\n  customer: compatible: the table changes and the mapping still holds against it\n",
			"001_compatible.sql:3: CREATE INDEX customer_nickname ON customer (nickname)\n  invisible: touches nothing mapped\n",
			"001_compatible.sql:4: " + widen + "\n  customer: compatible",
			"002_breaking.sql:1: ALTER TABLE customer DROP COLUMN last_name\n  customer: breaking: ",
			`field "last_name": column "last_name" not in ` + s.tableName("customer"),
			"    fix: change the mapping in the same pull request",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if err == nil || !strings.Contains(errOut, "1 breaking verdicts") {
			t.Errorf("a breaking migration: %v, %s", err, errOut)
		}

		// The daemon's verdict on the same statements, run on the server.
		d := s.start()
		s.waitCustomersMatch()
		migrate := func(path string) {
			sql, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, stmt := range strings.Split(string(sql), ";\n") {
				if strings.TrimSpace(stmt) != "" {
					s.exec(stmt)
				}
			}
		}
		migrate(compatible)
		s.exec(`UPDATE customer SET email = 'after-the-compatible@example.com', nickname = 'nick' WHERE customer_id = 1`)
		s.waitCustomersMatch()
		if d.Exited() {
			t.Fatalf("the daemon stopped at a compatible migration:\n%s", d.Logs())
		}
		migrate(breaking)
		s.exec(`UPDATE customer SET email = 'after-the-breaking@example.com' WHERE customer_id = 1`)
		s.mustExit(`column "last_name" not in ` + s.tableName("customer"))

		// The catalog the server now has is the one predicted (the database's
		// spelling of types aside).
		actual := catalog("actual.json")
		if a, p := catalogShape(t, actual), catalogShape(t, filepath.Join(dir, "predicted.json")); !reflect.DeepEqual(a, p) {
			t.Errorf("predicted catalog differs from the server's:\npredicted %v\nactual    %v", p, a)
		}
	})
}

// catalogShape reads a catalog file without the database's spelling of each
// type.
func catalogShape(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	for _, table := range file["tables"].([]any) {
		for _, col := range table.(map[string]any)["columns"].([]any) {
			delete(col.(map[string]any), "type")
		}
	}
	return file
}
