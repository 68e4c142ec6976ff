package mysql

import (
	"strings"
	"testing"

	"github.com/cdc-dev/cdc"
)

var shopCustomer = cdc.TableName{Schema: "shop", Name: "customer"}

func customerCatalog() map[cdc.TableName]*cdc.Table {
	return map[cdc.TableName]*cdc.Table{shopCustomer: {
		Name: shopCustomer,
		Columns: []cdc.Column{
			{Name: "customer_id", DatabaseType: "int unsigned", Kind: cdc.KindUint, Bits: 32},
			{Name: "email", DatabaseType: "varchar(100)", Kind: cdc.KindString},
			{Name: "balance", DatabaseType: "decimal(10,2)", Kind: cdc.KindDecimal, Precision: 10, Scale: 2},
			{Name: "note", DatabaseType: "text", Kind: cdc.KindString, Nullable: true},
		},
		PrimaryKey: []int{0},
		UniqueKeys: [][]int{{1}},
	}}
}

// The parser, not a pattern: backquotes, # and /* */ comments, qualified and
// unqualified names, several statements per file, each with its line.
func TestPredictMigrationFollowsEachStatement(t *testing.T) {
	tables := customerCatalog()
	steps, err := PredictMigration(tables, "# widen, rename, move\n"+
		"ALTER TABLE `shop`.`customer` MODIFY balance decimal(14,3) NOT NULL;\n"+
		"/* keep the text */ ALTER TABLE customer CHANGE COLUMN note remark varchar(500) NOT NULL;\n"+
		"ALTER TABLE customer ADD COLUMN nickname varchar(40) AFTER email, ADD COLUMN born date;\n"+
		"CREATE INDEX customer_born ON customer (born);\n"+
		"ALTER TABLE customer DROP COLUMN email;\n"+
		"ALTER TABLE customer ADD COLUMN total decimal(12,2) AS (balance * 2) VIRTUAL;\n"+
		"CREATE TABLE audit (id bigint unsigned PRIMARY KEY, at timestamp(3) NULL, payload blob);\n", "shop", ZeroDatesError)
	if err != nil {
		t.Fatal(err)
	}
	lines := []int{2, 3, 4, 5, 6, 7, 8}
	if len(steps) != len(lines) {
		t.Fatalf("%d steps, want %d", len(steps), len(lines))
	}
	for i, s := range steps {
		if s.Line != lines[i] || len(s.Breaks) != 0 {
			t.Errorf("step %d: line %d (want %d), breaks %v: %q", i, s.Line, lines[i], s.Breaks, s.Text)
		}
	}
	if steps[1].Text != "ALTER TABLE customer CHANGE COLUMN note remark varchar(500) NOT NULL" {
		t.Errorf("step text %q", steps[1].Text)
	}
	c := tables[shopCustomer]
	var got []string
	for _, col := range c.Columns {
		got = append(got, col.Name+" "+col.Kind.String())
	}
	if want := "customer_id uint, nickname string, balance decimal, remark string, born date, total decimal"; strings.Join(got, ", ") != want {
		t.Errorf("columns %s, want %s", strings.Join(got, ", "), want)
	}
	if b := c.Columns[2]; b.Precision != 14 || b.Scale != 3 || b.Nullable {
		t.Errorf("balance %+v", b)
	}
	if len(c.UniqueKeys) != 0 || len(c.PrimaryKey) != 1 || c.PrimaryKey[0] != 0 || c.Columns[3].Nullable || !c.Columns[5].Nullable {
		t.Errorf("keys %v %v, remark %+v, total %+v", c.PrimaryKey, c.UniqueKeys, c.Columns[3], c.Columns[5])
	}
	audit := tables[cdc.TableName{Schema: "shop", Name: "audit"}]
	if audit == nil || audit.Columns[0].Kind != cdc.KindUint || audit.Columns[0].Nullable || audit.Columns[1].FractionDigits != 3 ||
		!audit.Columns[1].WithTimeZone || audit.Columns[2].Kind != cdc.KindBytes {
		t.Errorf("created table %+v", audit)
	}
}

func TestPredictMigrationBreaks(t *testing.T) {
	for _, c := range []struct{ sql, why string }{
		{"TRUNCATE TABLE customer", "TRUNCATE removes every row"},
		{"DROP TABLE IF EXISTS shop.customer", "DROP TABLE removes the table"},
		{"RENAME TABLE customer TO client", "RENAME moves the table away"},
		{"ALTER TABLE customer RENAME TO client", "RENAME moves the table away"},
		{"ALTER TABLE customer TRUNCATE PARTITION p0", "removes or replaces rows without row events"},
		{"ALTER TABLE customer ADD CONSTRAINT fk FOREIGN KEY (customer_id) REFERENCES person (id) ON DELETE CASCADE", "InnoDB writes none of those changes"},
	} {
		steps, err := PredictMigration(customerCatalog(), c.sql, "shop", ZeroDatesError)
		if err != nil {
			t.Fatal(err)
		}
		if why := steps[0].Breaks[shopCustomer]; !strings.Contains(why, c.why) {
			t.Errorf("%s: breaks %q, want %q", c.sql, why, c.why)
		}
	}
	if _, err := PredictMigration(customerCatalog(), "ALTER TABLE customer ADD COLUMN x int,", "shop", ZeroDatesError); err == nil {
		t.Error("a syntax error passed")
	}
}

// A statement the parser does not know (MariaDB's CREATE OR REPLACE TABLE)
// refuses the file, naming where: never a guess.
func TestPredictMigrationRefusesWhatItCannotParse(t *testing.T) {
	_, err := PredictMigration(customerCatalog(), "CREATE TABLE IF NOT EXISTS customer (id int);\nCREATE OR REPLACE TABLE customer (id int PRIMARY KEY)", "shop", ZeroDatesError)
	if err == nil || !strings.Contains(err.Error(), "line 2 column") {
		t.Errorf("got %v, want a refusal naming line 2", err)
	}
}
