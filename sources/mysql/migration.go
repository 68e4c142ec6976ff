package mysql

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	pmysql "github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/types"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/sources"
)

// defaultCharset is the character set a predicted character column gets when
// the statement names none: the catalog does not hold the table's default.
const defaultCharset = "utf8mb4"

// PredictMigration reads a migration with TiDB's MySQL parser (the one
// go-mysql brings) and applies each statement to tables, the tables as a
// catalog describes them, keyed by name; it updates tables and says what each
// statement did. Unqualified names are in database db. zero is the
// connector's zero_dates, which makes date columns nullable as the catalog
// has them. A statement it cannot predict on a known table is a break, never
// a guess.
func PredictMigration(tables map[cdc.TableName]*cdc.Table, sql, db string, zero ZeroDates) ([]cdc.MigrationStep, error) {
	stmts, _, err := parser.New().ParseSQL(sql)
	if err != nil {
		return nil, fmt.Errorf("not MySQL: %v", err)
	}
	var steps []cdc.MigrationStep
	from := 0 // where the previous statement ended: statements may repeat
	for _, stmt := range stmts {
		start := from + max(strings.Index(sql[from:], stmt.Text()), 0)
		from = start + len(stmt.Text())
		text, line := sources.Statement(sql, start, from)
		p := &predictor{tables: tables, db: db, zero: zero, step: cdc.MigrationStep{Line: line, Text: text, Breaks: map[cdc.TableName]string{}}}
		p.statement(stmt)
		steps = append(steps, p.step)
	}
	return steps, nil
}

type predictor struct {
	tables map[cdc.TableName]*cdc.Table
	db     string
	zero   ZeroDates
	step   cdc.MigrationStep
}

func (p *predictor) name(t *ast.TableName) cdc.TableName {
	n := cdc.TableName{Schema: t.Schema.O, Name: t.Name.O}
	if n.Schema == "" {
		n.Schema = p.db
	}
	return n
}

// table returns a copy of a known table that the statement changes; nil if
// it is not known.
func (p *predictor) table(name cdc.TableName) *cdc.Table {
	t, ok := p.tables[name]
	if !ok {
		return nil
	}
	if i := slices.IndexFunc(p.step.Changed, func(c *cdc.Table) bool { return c.Name == name }); i >= 0 {
		return p.step.Changed[i]
	}
	c := *t
	c.Columns = slices.Clone(t.Columns)
	c.PrimaryKey = slices.Clone(t.PrimaryKey)
	c.UniqueKeys = slices.Clone(t.UniqueKeys)
	c.Omitted = maps.Clone(t.Omitted)
	p.step.Changed = append(p.step.Changed, &c)
	p.tables[name] = &c
	return &c
}

func (p *predictor) breaks(name cdc.TableName, why string) {
	if _, ok := p.tables[name]; ok {
		p.step.Breaks[name] = why
	}
}

func (p *predictor) statement(stmt ast.StmtNode) {
	switch s := stmt.(type) {
	case *ast.AlterTableStmt:
		name := p.name(s.Table)
		for _, spec := range s.Specs {
			p.alter(name, spec)
		}
	case *ast.DropTableStmt:
		if s.IsView {
			return
		}
		for _, t := range s.Tables {
			p.breaks(p.name(t), "DROP TABLE removes the table and its rows without row events: its topic keeps them")
			delete(p.tables, p.name(t))
		}
	case *ast.TruncateTableStmt:
		p.breaks(p.name(s.Table), "TRUNCATE removes every row without row events: cdc stops at it")
	case *ast.RenameTableStmt:
		for _, tt := range s.TableToTables {
			p.rename(p.name(tt.OldTable), p.name(tt.NewTable))
		}
	case *ast.CreateTableStmt:
		p.create(s)
	}
}

func (p *predictor) rename(from, to cdc.TableName) {
	p.breaks(from, "RENAME moves the table away from the name the mapping follows: cdc stops at it")
	p.breaks(to, "RENAME puts another table under the name the mapping follows: cdc stops at it")
	if t, ok := p.tables[from]; ok {
		moved := *t
		moved.Name = to
		delete(p.tables, from)
		p.tables[to] = &moved
	}
}

func (p *predictor) create(s *ast.CreateTableStmt) {
	name := p.name(s.Table)
	if _, exists := p.tables[name]; exists && s.IfNotExists {
		return
	}
	if s.ReferTable != nil || s.Select != nil {
		p.breaks(name, "cdc cannot predict the columns of CREATE TABLE ... LIKE or AS SELECT")
		return
	}
	if _, exists := p.tables[name]; exists {
		p.breaks(name, "CREATE OR REPLACE TABLE replaces the table and its rows without row events")
	}
	t := &cdc.Table{Name: name}
	for _, def := range s.Cols {
		p.addColumn(t, def, nil)
	}
	for _, con := range s.Constraints {
		addKey(t, con)
	}
	p.tables[name] = t
	p.step.Changed = append(p.step.Changed, t)
}

// addColumn adds a column as its definition declares it, at pos (nil: last).
func (p *predictor) addColumn(t *cdc.Table, def *ast.ColumnDef, pos *ast.ColumnPosition) {
	c, keys := p.column(def)
	at := len(t.Columns)
	if pos != nil {
		switch pos.Tp {
		case ast.ColumnPositionFirst:
			at = 0
		case ast.ColumnPositionAfter:
			at = t.Column(pos.RelativeColumn.Name.O) + 1
		}
	}
	t.Columns = slices.Insert(t.Columns, at, c)
	shift := func(key []int) {
		for i, k := range key {
			if k >= at {
				key[i] = k + 1
			}
		}
	}
	shift(t.PrimaryKey)
	for _, k := range t.UniqueKeys {
		shift(k)
	}
	for _, tp := range keys {
		addKey(t, &ast.Constraint{Tp: tp, Keys: []*ast.IndexPartSpecification{{Column: def.Name}}})
	}
}

// column describes a column from its definition, as the catalog would
// (information_schema through columnType; a generated column is a column like
// any other there, and in the binlog), and says which keys its options
// declare.
func (p *predictor) column(def *ast.ColumnDef) (cdc.Column, []ast.ConstraintType) {
	ft := def.Tp
	charset := ft.GetCharset()
	if charset == "" {
		charset = defaultCharset
	}
	t := columnType{name: def.Name.Name.O, base: catalogBase(types.TypeToStr(ft.GetType(), ft.GetCharset())),
		unsigned: pmysql.HasUnsignedFlag(ft.GetFlag()), nullable: true, charset: charset, databaseType: strings.ToLower(ft.CompactStr())}
	switch t.base {
	case "decimal":
		t.precision, t.scale = ft.GetFlen(), ft.GetDecimal()
		if t.precision <= 0 {
			t.precision = 10
		}
		if t.scale < 0 {
			t.scale = 0
		}
	case "bit":
		t.bits = max(ft.GetFlen(), 1)
	case "datetime", "timestamp", "time":
		t.fsp = max(ft.GetDecimal(), 0)
	case "binary":
		t.length = max(ft.GetFlen(), 1)
	case "varbinary", "blob", "geometry":
		t.charset = "binary"
	}
	var keys []ast.ConstraintType
	for _, opt := range def.Options {
		switch opt.Tp {
		case ast.ColumnOptionNotNull:
			t.nullable = false
		case ast.ColumnOptionNull:
			t.nullable = true
		case ast.ColumnOptionPrimaryKey:
			t.nullable = false
			keys = append(keys, ast.ConstraintPrimaryKey)
		case ast.ColumnOptionUniqKey:
			keys = append(keys, ast.ConstraintUniq)
		}
	}
	c, _ := t.column(p.zero) // a type cdc cannot read stops the daemon at describe: Compile says so too
	return c, keys
}

// addKey adds a PRIMARY KEY or UNIQUE constraint to t's keys.
func addKey(t *cdc.Table, con *ast.Constraint) bool {
	var key []int
	for _, part := range con.Keys {
		if part.Column == nil || part.Length > 0 {
			return false // an expression or a prefix identifies no row by itself
		}
		i := t.Column(part.Column.Name.O)
		if i < 0 {
			return false
		}
		key = append(key, i)
	}
	switch con.Tp {
	case ast.ConstraintPrimaryKey:
		t.PrimaryKey = key
		for _, i := range key {
			t.Columns[i].Nullable = false
		}
	case ast.ConstraintUniq, ast.ConstraintUniqKey, ast.ConstraintUniqIndex:
		if !slices.ContainsFunc(key, func(i int) bool { return t.Columns[i].Nullable }) {
			t.UniqueKeys = append(t.UniqueKeys, key)
		}
	}
	return true
}

func (p *predictor) alter(name cdc.TableName, spec *ast.AlterTableSpec) {
	if _, known := p.tables[name]; !known {
		return
	}
	switch spec.Tp {
	case ast.AlterTableAddColumns:
		t := p.table(name)
		for _, def := range spec.NewColumns {
			p.addColumn(t, def, spec.Position)
		}
	case ast.AlterTableDropColumn:
		t := p.table(name)
		if i := t.Column(spec.OldColumnName.Name.O); i >= 0 {
			dropColumn(t, i)
		}
	case ast.AlterTableModifyColumn, ast.AlterTableChangeColumn:
		t := p.table(name)
		old := spec.NewColumns[0].Name.Name.O
		if spec.OldColumnName != nil {
			old = spec.OldColumnName.Name.O
		}
		i := t.Column(old)
		if i < 0 {
			return
		}
		t.Columns[i], _ = p.column(spec.NewColumns[0])
		if spec.Position != nil && spec.Position.Tp != ast.ColumnPositionNone {
			p.breaks(name, "cdc cannot predict a column moved to another position yet")
		}
	case ast.AlterTableRenameColumn:
		t := p.table(name)
		if i := t.Column(spec.OldColumnName.Name.O); i >= 0 {
			t.Columns[i].Name = spec.NewColumnName.Name.O
		}
	case ast.AlterTableRenameTable:
		p.rename(name, p.name(spec.NewTable))
	case ast.AlterTableAddConstraint:
		switch spec.Constraint.Tp {
		case ast.ConstraintPrimaryKey, ast.ConstraintUniq, ast.ConstraintUniqKey, ast.ConstraintUniqIndex:
			if !addKey(p.table(name), spec.Constraint) {
				p.breaks(name, "cdc cannot predict the key this constraint adds")
			}
		case ast.ConstraintForeignKey:
			if refer := spec.Constraint.Refer; refer != nil && ((refer.OnDelete != nil && cascades(refer.OnDelete.ReferOpt)) || (refer.OnUpdate != nil && cascades(refer.OnUpdate.ReferOpt))) {
				p.breaks(name, "a foreign key whose ON DELETE or ON UPDATE changes rows: InnoDB writes none of those changes to the binlog")
			}
		}
	case ast.AlterTableDropPrimaryKey:
		p.table(name).PrimaryKey = nil
	case ast.AlterTableDropPartition, ast.AlterTableTruncatePartition, ast.AlterTableExchangePartition,
		ast.AlterTableDiscardTablespace, ast.AlterTableImportTablespace, ast.AlterTableReorganizePartition, ast.AlterTableCoalescePartitions:
		p.breaks(name, "the statement removes or replaces rows without row events: cdc stops at it")
	case ast.AlterTableOption, ast.AlterTableLock, ast.AlterTableAlgorithm, ast.AlterTableForce, ast.AlterTableRenameIndex,
		ast.AlterTableAlterColumn, ast.AlterTableAddPartitions, ast.AlterTablePartition, ast.AlterTableRemovePartitioning:
		// The shape stays and no row goes (SET DEFAULT applies to later rows;
		// partitioning moves rows between partitions of one table).
	case ast.AlterTableDropIndex:
		p.breaks(name, "cdc cannot predict which key this DROP INDEX removes: check the table's keys with cdc catalog after it")
	default:
		p.breaks(name, "cdc cannot predict what this ALTER TABLE does to the table: check it with cdc catalog after running it on a copy")
	}
}

// cascades says whether a foreign key's action changes the rows of the table
// that holds it.
func cascades(action ast.ReferOptionType) bool {
	return action == ast.ReferOptionCascade || action == ast.ReferOptionSetNull || action == ast.ReferOptionSetDefault
}

// dropColumn removes column i and the keys that contain it.
func dropColumn(t *cdc.Table, i int) {
	t.Columns = slices.Delete(t.Columns, i, i+1)
	shift := func(key []int) ([]int, bool) {
		out := make([]int, 0, len(key))
		for _, k := range key {
			switch {
			case k == i:
				return nil, false
			case k > i:
				k--
			}
			out = append(out, k)
		}
		return out, true
	}
	t.PrimaryKey, _ = shift(t.PrimaryKey)
	var unique [][]int
	for _, k := range t.UniqueKeys {
		if kept, ok := shift(k); ok {
			unique = append(unique, kept)
		}
	}
	t.UniqueKeys = unique
}
