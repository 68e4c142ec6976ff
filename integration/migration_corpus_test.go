package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// migrationCase is one statement whose verdict check-migration predicts and
// the daemon gives: on a breaking one it stops, on any other it streams on.
type migrationCase struct {
	name, ddl string
	breaking  bool
}

var migrationCorpus = map[string][]migrationCase{
	"postgres": {
		{"nullable column added", `ALTER TABLE customer ADD COLUMN nickname varchar(40)`, false},
		{"column added NOT NULL with a default", `ALTER TABLE customer ADD COLUMN tier int NOT NULL DEFAULT 1`, false},
		{"index created", `CREATE INDEX customer_names ON customer (last_name, first_name)`, false},
		{"unmapped column dropped", `ALTER TABLE customer DROP COLUMN internal_flags`, false},
		{"mapped column dropped", `ALTER TABLE customer DROP COLUMN first_name`, true},
		{"mapped column renamed", `ALTER TABLE customer RENAME COLUMN last_name TO surname`, true},
		{"decimal widened past its field", `ALTER TABLE customer ALTER COLUMN balance TYPE numeric(14,3)`, true},
		{"NOT NULL dropped under a non-null field", `ALTER TABLE customer ALTER COLUMN email DROP NOT NULL`, true},
		{"table truncated", `TRUNCATE customer CASCADE`, true},
	},
	"mysql": {
		{"nullable column added", `ALTER TABLE customer ADD COLUMN nickname varchar(40)`, false},
		{"text widened", `ALTER TABLE customer MODIFY first_name varchar(200) NOT NULL`, false},
		{"index created", `CREATE INDEX customer_names ON customer (last_name, first_name)`, false},
		{"unmapped column dropped", `ALTER TABLE customer DROP COLUMN internal_flags`, false},
		{"mapped column dropped", `ALTER TABLE customer DROP COLUMN first_name`, true},
		{"mapped column renamed", `ALTER TABLE customer CHANGE last_name surname varchar(100)`, true},
		{"decimal widened past its field", `ALTER TABLE customer MODIFY balance decimal(14,3) NOT NULL DEFAULT 0`, true},
		{"NOT NULL dropped under a non-null field", `ALTER TABLE customer MODIFY email varchar(255) NULL`, true},
		{"table truncated", `TRUNCATE TABLE customer`, true},
	},
}

// For every case of the corpus, check-migration's verdict (from a catalog and
// the statement alone) is the daemon's (running when the statement runs).
func TestCheckMigrationAgreesWithTheDaemon(t *testing.T) {
	for _, src := range sourceScenarios {
		for _, c := range migrationCorpus[src.name] {
			t.Run(src.name+"/"+c.name, func(t *testing.T) {
				s := src.start(t)
				dir := t.TempDir()
				catalog, errOut, err := s.command(s.dsn, "catalog", "--config", s.config)
				if err != nil {
					t.Fatalf("cdc catalog: %v\n%s", err, errOut)
				}
				catalogPath, migrationPath := filepath.Join(dir, "catalog.json"), filepath.Join(dir, "migration.sql")
				if err := os.WriteFile(catalogPath, []byte(catalog), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(migrationPath, []byte(c.ddl+";\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				verdict, errOut, err := s.command(s.dsn, "check-migration", "--config", s.config, "--catalog", catalogPath, migrationPath)
				verdict += errOut
				if predicted := strings.Contains(verdict, "customer: breaking:"); predicted != c.breaking || (err != nil) != c.breaking {
					t.Fatalf("check-migration (%v) says:\n%s\nwant breaking %v", err, verdict, c.breaking)
				}

				d := s.start()
				s.waitCustomersMatch()
				s.exec(c.ddl)
				s.exec(`UPDATE customer SET email = 'after-the-migration@example.com' WHERE customer_id = 1`)
				if c.breaking {
					s.mustExit()
					return
				}
				s.waitCustomersMatch() // the update after the statement is in the topic: the daemon went past it
				if d.Exited() {
					t.Fatalf("the daemon stopped at a statement check-migration calls %s:\n%s", strings.TrimSpace(verdict), d.Logs())
				}
			})
		}
	}
}
