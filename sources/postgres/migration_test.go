package postgres

import (
	"strings"
	"testing"

	"github.com/cdc-dev/cdc"
)

func customerCatalog() map[cdc.TableName]*cdc.Table {
	name := cdc.TableName{Schema: "public", Name: "customer"}
	return map[cdc.TableName]*cdc.Table{name: {
		Name: name,
		Columns: []cdc.Column{
			{Name: "customer_id", DatabaseType: "integer", Kind: cdc.KindInt, Bits: 32},
			{Name: "email", DatabaseType: "text", Kind: cdc.KindString},
			{Name: "balance", DatabaseType: "numeric(10,2)", Kind: cdc.KindDecimal, Precision: 10, Scale: 2},
			{Name: "note", DatabaseType: "text", Kind: cdc.KindString, Nullable: true},
		},
		PrimaryKey: []int{0},
		UniqueKeys: [][]int{{1}},
	}}
}

var customer = cdc.TableName{Schema: "public", Name: "customer"}

// The parser, not a pattern: comments, quoting, schema-qualified names and
// several statements per file, each with its line.
func TestPredictMigrationFollowsEachStatement(t *testing.T) {
	tables := customerCatalog()
	steps, err := PredictMigration(tables, `-- widen and add
ALTER TABLE "public"."customer" ALTER COLUMN balance TYPE numeric(14, 3);
/* a nullable column */ ALTER TABLE customer ADD COLUMN nickname varchar(40),
    ADD COLUMN born date NOT NULL DEFAULT '2000-01-01';
CREATE INDEX customer_email ON customer (email);
ALTER TABLE public.customer RENAME COLUMN note TO remark;
ALTER TABLE customer ALTER COLUMN remark SET NOT NULL, DROP COLUMN email;
ALTER TABLE customer ADD COLUMN total numeric GENERATED ALWAYS AS (balance * 2) STORED;
CREATE TABLE audit (id bigint PRIMARY KEY, at timestamptz(3));`)
	if err != nil {
		t.Fatal(err)
	}
	lines := []int{2, 3, 5, 6, 7, 8, 9}
	if len(steps) != len(lines) {
		t.Fatalf("%d steps, want %d", len(steps), len(lines))
	}
	for i, s := range steps {
		if s.Line != lines[i] || len(s.Breaks) != 0 {
			t.Errorf("step %d: line %d (want %d), breaks %v: %q", i, s.Line, lines[i], s.Breaks, s.Text)
		}
	}
	if !strings.HasPrefix(steps[1].Text, "ALTER TABLE customer ADD COLUMN nickname") || len(steps[2].Changed) != 0 {
		t.Errorf("step texts or changes: %q, %v", steps[1].Text, steps[2].Changed)
	}
	c := tables[customer]
	var got []string
	for _, col := range c.Columns {
		got = append(got, col.Name+" "+col.Kind.String())
		switch col.Name {
		case "balance":
			if col.Precision != 14 || col.Scale != 3 {
				t.Errorf("balance %+v", col)
			}
		case "nickname", "born":
			if col.Nullable != (col.Name == "nickname") {
				t.Errorf("%s nullable %v", col.Name, col.Nullable)
			}
		case "remark":
			if col.Nullable {
				t.Error("remark still nullable")
			}
		}
	}
	if want := "customer_id int, balance decimal, remark string, nickname string, born date"; strings.Join(got, ", ") != want {
		t.Errorf("columns %s, want %s", strings.Join(got, ", "), want)
	}
	if len(c.UniqueKeys) != 0 || len(c.PrimaryKey) != 1 || c.PrimaryKey[0] != 0 || c.Omitted["total"] == "" {
		t.Errorf("keys %v %v, omitted %v: the unique key on email goes with it, total is generated", c.PrimaryKey, c.UniqueKeys, c.Omitted)
	}
	audit := tables[cdc.TableName{Schema: "public", Name: "audit"}]
	if audit == nil || audit.Columns[1].Kind != cdc.KindTimestamp || audit.Columns[1].FractionDigits != 3 || !audit.Columns[1].WithTimeZone || audit.Columns[0].Nullable {
		t.Errorf("created table %+v", audit)
	}
}

func TestPredictMigrationBreaks(t *testing.T) {
	for _, c := range []struct{ sql, why string }{
		{"TRUNCATE customer", "TRUNCATE removes every row"},
		{"DROP TABLE IF EXISTS public.customer CASCADE", "DROP TABLE removes the table"},
		{"ALTER TABLE customer RENAME TO client", "RENAME moves the table away"},
		{"ALTER TABLE customer REPLICA IDENTITY NOTHING", "REPLICA IDENTITY NOTHING: updates and deletes would be logged without the key"},
		{"ALTER TABLE customer INHERIT person", "cdc cannot predict what ALTER TABLE ... AddInherit does"},
	} {
		steps, err := PredictMigration(customerCatalog(), c.sql)
		if err != nil {
			t.Fatal(err)
		}
		if why := steps[0].Breaks[customer]; !strings.Contains(why, c.why) {
			t.Errorf("%s: breaks %q, want %q", c.sql, why, c.why)
		}
	}
	if steps, err := PredictMigration(customerCatalog(), "TRUNCATE other; ALTER TABLE other DROP COLUMN x"); err != nil || len(steps[0].Breaks)+len(steps[1].Breaks)+len(steps[1].Changed) != 0 {
		t.Errorf("statements on an unknown table: %+v, %v", steps, err)
	}
	if _, err := PredictMigration(customerCatalog(), "ALTER TABLE customer ADD COLUMN x int,"); err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Errorf("a syntax error: %v", err)
	}
}

// CREATE OR REPLACE of views and functions touches no table.
func TestPredictMigrationCreateOrReplaceView(t *testing.T) {
	tables := customerCatalog()
	steps, err := PredictMigration(tables, `CREATE OR REPLACE VIEW active_customer AS SELECT * FROM customer WHERE note IS NULL;
CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;`)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || len(steps[0].Breaks)+len(steps[0].Changed)+len(steps[1].Breaks)+len(steps[1].Changed) != 0 {
		t.Errorf("steps %+v", steps)
	}
}
