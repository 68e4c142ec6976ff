package mysql

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // the parser's literal values

	"github.com/cdc-dev/cdc"
)

// rowsEffect is what a statement does to a table's rows without row events:
// the binlog logs such statements as SQL, and only the statement tells that
// the table's rows are gone or replaced.
type rowsEffect struct {
	table cdc.TableName
	what  string // "TRUNCATE removes every row", ...
}

// ddlReader finds the statements that remove or replace a table's rows
// without row events: TRUNCATE, DROP TABLE and DROP DATABASE, RENAME TABLE
// (away from a name, or onto it), ALTER TABLE ... RENAME, TRUNCATE, DROP or
// EXCHANGE PARTITION, DISCARD or IMPORT TABLESPACE, and MariaDB's CREATE OR
// REPLACE TABLE. It reads them with TiDB's MySQL parser (go-mysql's own), and
// the MariaDB statements that parser does not know with a tokenizer of its
// own. It is not safe for concurrent use.
type ddlReader struct {
	parser *parser.Parser
}

func newDDLReader() *ddlReader { return &ddlReader{parser: parser.New()} }

// effects lists what a statement does to tables' rows; db is the statement's
// default database. A statement neither reader understands gives an error.
func (r *ddlReader) effects(query, db string) ([]rowsEffect, error) {
	stmts, _, err := r.parser.Parse(query, "", "")
	if err != nil {
		return tokenEffects(query, db)
	}
	var out []rowsEffect
	name := func(t *ast.TableName) cdc.TableName {
		n := cdc.TableName{Schema: t.Schema.O, Name: t.Name.O}
		if n.Schema == "" {
			n.Schema = db
		}
		return n
	}
	add := func(t *ast.TableName, what string) { out = append(out, rowsEffect{table: name(t), what: what}) }
	for _, stmt := range stmts {
		switch s := stmt.(type) {
		case *ast.TruncateTableStmt:
			add(s.Table, "TRUNCATE removes every row")
		case *ast.DropTableStmt:
			if !s.IsView {
				for _, t := range s.Tables {
					add(t, "DROP TABLE removes the table and its rows")
				}
			}
		case *ast.DropDatabaseStmt:
			out = append(out, rowsEffect{table: cdc.TableName{Schema: s.Name.O}, what: "DROP DATABASE removes its tables and their rows"})
		case *ast.RenameTableStmt:
			for _, tt := range s.TableToTables {
				add(tt.OldTable, "RENAME TABLE takes it away under the name "+name(tt.NewTable).String())
				add(tt.NewTable, "RENAME TABLE gives its name to the table "+name(tt.OldTable).String())
			}
		case *ast.AlterTableStmt:
			for _, spec := range s.Specs {
				switch spec.Tp {
				case ast.AlterTableRenameTable:
					add(s.Table, "ALTER TABLE ... RENAME takes it away under the name "+name(spec.NewTable).String())
					add(spec.NewTable, "ALTER TABLE ... RENAME gives its name to the table "+name(s.Table).String())
				case ast.AlterTableTruncatePartition:
					add(s.Table, "ALTER TABLE ... TRUNCATE PARTITION removes the partition's rows")
				case ast.AlterTableDropPartition:
					add(s.Table, "ALTER TABLE ... DROP PARTITION removes the partition's rows")
				case ast.AlterTableExchangePartition:
					add(s.Table, "ALTER TABLE ... EXCHANGE PARTITION swaps a partition's rows with those of "+name(spec.NewTable).String())
					add(spec.NewTable, "ALTER TABLE ... EXCHANGE PARTITION swaps its rows with a partition of "+name(s.Table).String())
				case ast.AlterTableDiscardTablespace, ast.AlterTableImportTablespace,
					ast.AlterTableDiscardPartitionTablespace, ast.AlterTableImportPartitionTablespace:
					add(s.Table, "ALTER TABLE ... DISCARD or IMPORT TABLESPACE replaces its rows")
				}
			}
		}
	}
	return out, nil
}

// tokenEffects reads the statements TiDB's parser does not know (MariaDB's
// own syntax) by their leading words. What it cannot place in one of the
// forms that change rows, it returns as an error if it names a table at all.
func tokenEffects(query, db string) ([]rowsEffect, error) {
	words := tokenize(query)
	is := func(i int, keywords ...string) bool {
		if i+len(keywords) > len(words) {
			return false
		}
		for j, k := range keywords {
			if words[i+j].quoted || !strings.EqualFold(words[i+j].text, k) {
				return false
			}
		}
		return true
	}
	// name reads a table name at i: name, `name`, db.name.
	name := func(i int) (cdc.TableName, int, bool) {
		if i >= len(words) || (!words[i].quoted && !isWord(words[i].text)) {
			return cdc.TableName{}, i, false
		}
		n := cdc.TableName{Schema: db, Name: words[i].text}
		if i+2 < len(words) && words[i+1].text == "." && !words[i+1].quoted {
			n = cdc.TableName{Schema: words[i].text, Name: words[i+2].text}
			i += 2
		}
		return n, i + 1, true
	}
	if len(words) == 0 {
		return nil, nil
	}
	switch {
	case is(0, "CREATE", "OR", "REPLACE"):
		i := 3
		for is(i, "TEMPORARY") || is(i, "TABLE") {
			i++
		}
		if t, _, ok := name(i); ok && is(i-1, "TABLE") {
			return []rowsEffect{{table: t, what: "CREATE OR REPLACE TABLE drops the table and its rows and creates another"}}, nil
		}
	case is(0, "TRUNCATE"):
		i := 1
		if is(i, "TABLE") {
			i++
		}
		if t, _, ok := name(i); ok {
			return []rowsEffect{{table: t, what: "TRUNCATE removes every row"}}, nil
		}
	case is(0, "ALTER"):
		// ALTER [ONLINE] [IGNORE] TABLE name ...: the parseable forms went
		// through the parser; a form it refused changes rows by one of these.
		i := 1
		for is(i, "ONLINE") || is(i, "IGNORE") {
			i++
		}
		if !is(i, "TABLE") {
			return nil, nil
		}
		t, next, ok := name(i + 1)
		if !ok {
			return nil, fmt.Errorf("cdc could not read the statement %q", clip(query))
		}
		for j := next; j < len(words); j++ {
			switch {
			case is(j, "TRUNCATE", "PARTITION"), is(j, "DROP", "PARTITION"), is(j, "EXCHANGE", "PARTITION"):
				return []rowsEffect{{table: t, what: "ALTER TABLE ... " + strings.ToUpper(words[j].text) + " PARTITION changes the partition's rows"}}, nil
			case is(j, "DISCARD"), is(j, "IMPORT"):
				return []rowsEffect{{table: t, what: "ALTER TABLE ... DISCARD or IMPORT TABLESPACE replaces its rows"}}, nil
			case is(j, "RENAME") && !is(j+1, "COLUMN") && !is(j+1, "INDEX") && !is(j+1, "KEY") && !is(j+1, "CONSTRAINT"):
				return nil, fmt.Errorf("cdc could not read the statement %q, which renames %s", clip(query), t)
			}
		}
	case is(0, "DROP"), is(0, "RENAME"):
		// DROP TABLE and RENAME TABLE are read by the parser in every form
		// MariaDB has but its own options: refuse rather than guess.
		if is(1, "TABLE") || is(1, "TEMPORARY") || is(1, "DATABASE") || is(1, "SCHEMA") {
			return nil, fmt.Errorf("cdc could not read the statement %q, which drops or renames tables", clip(query))
		}
	}
	return nil, nil
}

// word is a token of a statement: a keyword or name, a quoted name, or a
// punctuation character. String literals and comments are left out, but the
// content of MySQL's executable comments (/*! ... */) is read.
type word struct {
	text   string
	quoted bool
}

func tokenize(q string) []word {
	var words []word
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.HasPrefix(q[i:], "/*!") || strings.HasPrefix(q[i:], "/*M!"):
			i += strings.Index(q[i:], "!") + 1
			for i < len(q) && q[i] >= '0' && q[i] <= '9' {
				i++ // the version the content needs
			}
		case strings.HasPrefix(q[i:], "*/"):
			i += 2 // the end of an executable comment
		case strings.HasPrefix(q[i:], "/*"):
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return words
			}
			i += end + 4
		case c == '#' || (strings.HasPrefix(q[i:], "--") && (i+2 == len(q) || q[i+2] <= ' ')):
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				return words
			}
			i += end + 1
		case c == '`':
			var b strings.Builder
			j := i + 1
			for ; j < len(q); j++ {
				if q[j] == '`' {
					if j+1 < len(q) && q[j+1] == '`' {
						b.WriteByte('`')
						j++
						continue
					}
					break
				}
				b.WriteByte(q[j])
			}
			words = append(words, word{text: b.String(), quoted: true})
			i = j + 1
		case c == '\'' || c == '"':
			j := i + 1
			for ; j < len(q) && q[j] != c; j++ {
				if q[j] == '\\' {
					j++
				}
			}
			i = j + 1
		case isWordByte(c):
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			words = append(words, word{text: q[i:j]})
			i = j
		default:
			words = append(words, word{text: q[i : i+1]})
			i++
		}
	}
	return words
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c))
}

func isWord(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool { return r < 0x80 && !isWordByte(byte(r)) }) < 0
}

func clip(q string) string {
	if len(q) > 200 {
		return q[:200] + "…"
	}
	return q
}
