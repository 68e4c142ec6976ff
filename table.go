package cdc

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// TableName names a table: PostgreSQL schema and table, or MySQL database and table.
type TableName struct {
	Schema, Name string
}

func (n TableName) String() string { return n.Schema + "." + n.Name }

// ParseTableName parses "schema.table". Both parts are required: a mapping must
// never depend on a search path.
func ParseTableName(s string) (TableName, error) {
	schema, name, ok := strings.Cut(s, ".")
	if !ok || schema == "" || name == "" || strings.Contains(name, ".") {
		return TableName{}, fmt.Errorf("table %q: want schema.table (MySQL: database.table)", s)
	}
	return TableName{Schema: schema, Name: name}, nil
}

// LogicalMessages is the pseudo-table of the transactional logical messages
// that a source passes down for outbox entities reading them (PostgreSQL's
// pg_logical_emit_message(true, prefix, content)): each message is the
// insert of a row of its prefix and its content, as text.
var LogicalMessages = &Table{
	Name: TableName{Schema: "pg_logical_emit_message", Name: "outbox"},
	Columns: []Column{
		{Name: "prefix", DatabaseType: "text", Kind: KindString},
		{Name: "content", DatabaseType: "bytea", Kind: KindString},
	},
}

// Table describes a table's columns at one point in its history.
type Table struct {
	Name    TableName
	Columns []Column
	// PrimaryKey lists the ordinals (indexes into Columns) of the primary key.
	PrimaryKey []int
	// UniqueKeys lists the other column sets that identify rows: unique
	// indexes (or constraints) on NOT NULL columns, without a predicate or
	// expression, smallest first. A table described from its log may lack them.
	UniqueKeys [][]int
	// Omitted names the columns the table has but whose values its log does
	// not carry (PostgreSQL's generated columns), with why: they are not in
	// Columns, and a mapping that reads one is refused with the reason.
	Omitted map[string]string
	// Identity lists the columns the log carries in the old row of every
	// update and delete when it does not carry the whole row (PostgreSQL's
	// REPLICA IDENTITY DEFAULT or USING INDEX, MySQL's binlog_row_image
	// MINIMAL): the old row's other columns are KindUnknown. Nil when the log
	// carries whole old rows.
	Identity []int
}

// Column returns the ordinal of the named column, or -1.
func (t *Table) Column(name string) int {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return i
		}
	}
	return -1
}

// ColumnNames lists the column names, for error messages that suggest a fix.
func (t *Table) ColumnNames() []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

// Column describes one column: enough for the mapping to decide, before any row
// is read, whether an Avro field can hold every value the column can hold.
type Column struct {
	Name string
	// DatabaseType is the type as the database spells it, e.g. "numeric(10,2)".
	DatabaseType string
	Kind         Kind
	Nullable     bool
	// Bits is the width of integer and floating-point columns (16, 32, 64; MySQL
	// also 8 and 24).
	Bits int
	// Precision and Scale describe decimal columns; Precision 0 means unconstrained
	// (any scale), which only a text field can hold exactly.
	Precision, Scale int
	// FractionDigits is the fractional-second precision of times and timestamps (0-6).
	FractionDigits int
	// WithTimeZone marks timestamps that denote an instant (timestamptz), as opposed
	// to a wall-clock reading.
	WithTimeZone bool
}

// IdentifiedBy reports whether the columns given identify the table's rows:
// they include its primary key or one of its unique keys.
func (t *Table) IdentifiedBy(columns []int) bool {
	for _, key := range append([][]int{t.PrimaryKey}, t.UniqueKeys...) {
		if len(key) > 0 && !slices.ContainsFunc(key, func(c int) bool { return !slices.Contains(columns, c) }) {
			return true
		}
	}
	return false
}

// KeyOf renders a row's primary key as one string that compares equal exactly
// when the keys' values do, however the row was read (a snapshot's query or
// the log): a backfill matches its chunks' rows with streamed changes by it.
// A key value the log did not carry cannot be rendered: ok is false.
func (t *Table) KeyOf(row []Value) (key string, ok bool) {
	var b []byte
	for _, k := range t.PrimaryKey {
		if k >= len(row) || (row[k].Kind == KindUnchanged || row[k].Kind == KindUnknown) {
			return "", false
		}
		text := row[k].AppendText(nil)
		b = strconv.AppendInt(b, int64(len(text)), 10)
		b = append(append(b, ':'), text...)
	}
	return string(b), true
}
