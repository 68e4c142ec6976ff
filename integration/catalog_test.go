package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cdc catalog writes the mapped tables as the database has them, the same
// bytes each time; cdc validate --catalog checks the mappings against that
// file where no database answers, as a CI job would.
func TestCatalogLetsValidateCheckTheMappingsWithoutADatabase(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		cdc := s.command
		catalog := func() string {
			out, errOut, err := cdc(s.dsn, "catalog", "--config", s.config)
			if err != nil {
				t.Fatalf("cdc catalog: %v\n%s", err, errOut)
			}
			return out
		}
		before := catalog()
		s.exec(`ALTER TABLE customer ADD COLUMN nickname varchar(40)`)
		after := catalog()
		if again := catalog(); again != after {
			t.Errorf("two catalogs of the same tables differ:\n%s\n%s", after, again)
		}
		type column struct {
			Name, Type, Kind string
			Nullable         bool
		}
		var file struct {
			Source string
			Tables []struct {
				Name       string
				Columns    []column
				PrimaryKey []string `json:"primary_key"`
			}
		}
		if err := json.Unmarshal([]byte(after), &file); err != nil {
			t.Fatalf("the catalog is not JSON: %v\n%s", err, after)
		}
		var names []string
		for _, table := range file.Tables {
			names = append(names, table.Name)
			if table.Name != s.tableName("customer") {
				continue
			}
			if !slices.Equal(table.PrimaryKey, []string{"customer_id"}) {
				t.Errorf("primary key %v", table.PrimaryKey)
			}
			last := table.Columns[len(table.Columns)-1]
			if last.Name != "nickname" || !last.Nullable || last.Kind != "string" || !strings.Contains(last.Type, "40") {
				t.Errorf("the column added is %+v", last)
			}
		}
		// The example configurations map customer, orders and the outbox on
		// PostgreSQL, customer and the outbox on MySQL.
		want, source := []string{s.tableName("customer"), s.tableName("orders"), s.tableName("outbox")}, "postgres"
		if s.mysql {
			want, source = []string{s.tableName("customer"), s.tableName("outbox")}, "mysql"
		}
		if !slices.Equal(names, want) || file.Source != source {
			t.Errorf("catalog of %s, tables %v; want %s, %v", file.Source, names, source, want)
		}
		if strings.Contains(before, "nickname") {
			t.Error("the catalog before the column was added has it")
		}

		path := filepath.Join(t.TempDir(), "catalog.json")
		if err := os.WriteFile(path, []byte(after), 0o644); err != nil {
			t.Fatal(err)
		}
		noDatabase := fmt.Sprintf("postgres://cdc@127.0.0.1:%d/none", unusedPort(t))
		if s.mysql {
			noDatabase = fmt.Sprintf("cdc@tcp(127.0.0.1:%d)/none", unusedPort(t))
		}
		out, errOut, err := cdc(noDatabase, "validate", "--catalog", path, "--config", s.config)
		if err != nil || !strings.Contains(out, fmt.Sprintf("ok: mappings of %d tables (against %s)", len(want), path)) ||
			!strings.Contains(out, "not checked: the database's log settings, privileges and publication, and the enum codes in the tables (--catalog: no database)") {
			t.Fatalf("validate --catalog: %v\n%s%s", err, out, errOut)
		}
		if !strings.Contains(after, `"replica_identity": "FULL"`) && !s.mysql {
			t.Errorf("the catalog lacks the tables' replica identity:\n%s", after)
		}

		// A setting the source cannot serve is found in the catalog too.
		refusal := "table " + s.tableName("customer") + " has REPLICA IDENTITY NOTHING in the catalog: its updates and deletes are logged without the key of the row they change\n    fix: ALTER TABLE " + s.tableName("customer") + " REPLICA IDENTITY DEFAULT (the primary key) or FULL"
		if s.mysql {
			s.exec(`CREATE TABLE parent (id int PRIMARY KEY)`,
				`ALTER TABLE customer ADD COLUMN parent_id int NULL, ADD CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE SET NULL`)
			refusal = "table " + s.tableName("customer") + " has foreign key fk_parent to parent ON DELETE SET NULL ON UPDATE RESTRICT in the catalog: InnoDB applies such actions without writing them to the binlog, so its topics would miss them\n    fix: make the key RESTRICT"
		} else {
			s.exec(`ALTER TABLE customer REPLICA IDENTITY NOTHING`)
		}
		if err := os.WriteFile(path, []byte(catalog()), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, err = cdc(noDatabase, "validate", "--catalog", path, "--config", s.config)
		if err == nil || !strings.Contains(errOut, refusal) {
			t.Fatalf("a setting the source cannot serve, in the catalog: %v\n%s%s", err, out, errOut)
		}

		s.editConfig("      last_name: last_name\n", "      last_name: surname\n")
		out, errOut, err = cdc(noDatabase, "validate", "--catalog", path, "--config", s.config)
		if err == nil || !strings.Contains(errOut, `field "last_name": column "surname" not in `+s.tableName("customer")) {
			t.Fatalf("a mapping of a column the catalog lacks: %v\n%s%s", err, out, errOut)
		}
	})
}
