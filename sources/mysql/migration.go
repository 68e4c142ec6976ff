package mysql

import (
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	pmysql "github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/types"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/sources"
	"github.com/cdc-dev/cdc/sources/internal/migration"
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
		p := predictor{Step: migration.NewStep(tables, line, text), db: db, zero: zero}
		p.statement(stmt)
		steps = append(steps, p.MigrationStep)
	}
	return steps, nil
}

// predictor applies one statement; unqualified names are in db.
type predictor struct {
	*migration.Step
	db   string
	zero ZeroDates
}

func (p *predictor) name(t *ast.TableName) cdc.TableName {
	n := cdc.TableName{Schema: t.Schema.O, Name: t.Name.O}
	if n.Schema == "" {
		n.Schema = p.db
	}
	return n
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
			p.Drop(p.name(t), "DROP TABLE removes the table and its rows without row events: its topic keeps them")
		}
	case *ast.TruncateTableStmt:
		p.Break(p.name(s.Table), "TRUNCATE removes every row without row events: cdc stops at it")
	case *ast.RenameTableStmt:
		for _, tt := range s.TableToTables {
			p.rename(p.name(tt.OldTable), p.name(tt.NewTable))
		}
	case *ast.CreateTableStmt:
		p.create(s)
	}
}

func (p *predictor) rename(from, to cdc.TableName) {
	p.Break(to, "RENAME puts another table under the name the mapping follows: cdc stops at it")
	p.Rename(from, to, "RENAME moves the table away from the name the mapping follows: cdc stops at it")
}

func (p *predictor) create(s *ast.CreateTableStmt) {
	name := p.name(s.Table)
	if p.Known(name) && s.IfNotExists {
		return
	}
	if s.ReferTable != nil || s.Select != nil {
		p.Break(name, "cdc cannot predict the columns of CREATE TABLE ... LIKE or AS SELECT")
		return
	}
	if p.Known(name) {
		p.Break(name, "CREATE TABLE of a table that exists: it fails on the server, or (OR REPLACE) replaces the table and its rows without row events")
	}
	t := &cdc.Table{Name: name}
	for _, def := range s.Cols {
		p.addColumn(t, def, nil)
	}
	for _, con := range s.Constraints {
		addKey(t, con)
	}
	p.Create(t)
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
	migration.InsertColumn(t, at, c)
	for _, tp := range keys {
		migration.AddKey(t, tp == ast.ConstraintPrimaryKey, []string{def.Name.Name.O})
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
	var columns []string
	for _, part := range con.Keys {
		if part.Column == nil || part.Length > 0 {
			return false // an expression or a prefix identifies no row by itself
		}
		columns = append(columns, part.Column.Name.O)
	}
	switch con.Tp {
	case ast.ConstraintPrimaryKey, ast.ConstraintUniq, ast.ConstraintUniqKey, ast.ConstraintUniqIndex:
		return migration.AddKey(t, con.Tp == ast.ConstraintPrimaryKey, columns)
	}
	return true
}

func (p *predictor) alter(name cdc.TableName, spec *ast.AlterTableSpec) {
	if !p.Known(name) {
		return
	}
	switch spec.Tp {
	case ast.AlterTableAddColumns:
		t := p.Change(name)
		for _, def := range spec.NewColumns {
			p.addColumn(t, def, spec.Position)
		}
	case ast.AlterTableDropColumn:
		t := p.Change(name)
		if i := t.Column(spec.OldColumnName.Name.O); i >= 0 {
			migration.DropColumn(t, i)
		}
	case ast.AlterTableModifyColumn, ast.AlterTableChangeColumn:
		t := p.Change(name)
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
			p.Break(name, "cdc cannot predict a column moved to another position yet")
		}
	case ast.AlterTableRenameColumn:
		t := p.Change(name)
		if i := t.Column(spec.OldColumnName.Name.O); i >= 0 {
			t.Columns[i].Name = spec.NewColumnName.Name.O
		}
	case ast.AlterTableRenameTable:
		p.rename(name, p.name(spec.NewTable))
	case ast.AlterTableAddConstraint:
		switch spec.Constraint.Tp {
		case ast.ConstraintPrimaryKey, ast.ConstraintUniq, ast.ConstraintUniqKey, ast.ConstraintUniqIndex:
			if !addKey(p.Change(name), spec.Constraint) {
				p.Break(name, "cdc cannot predict the key this constraint adds")
			}
		case ast.ConstraintForeignKey:
			if refer := spec.Constraint.Refer; refer != nil && ((refer.OnDelete != nil && cascades(refer.OnDelete.ReferOpt)) || (refer.OnUpdate != nil && cascades(refer.OnUpdate.ReferOpt))) {
				p.Break(name, "a foreign key whose ON DELETE or ON UPDATE changes rows: InnoDB writes none of those changes to the binlog")
			}
		}
	case ast.AlterTableDropPrimaryKey:
		p.Change(name).PrimaryKey = nil
	case ast.AlterTableDropPartition, ast.AlterTableTruncatePartition, ast.AlterTableExchangePartition,
		ast.AlterTableDiscardTablespace, ast.AlterTableImportTablespace, ast.AlterTableReorganizePartition, ast.AlterTableCoalescePartitions:
		p.Break(name, "the statement removes or replaces rows without row events: cdc stops at it")
	case ast.AlterTableOption, ast.AlterTableLock, ast.AlterTableAlgorithm, ast.AlterTableForce, ast.AlterTableRenameIndex,
		ast.AlterTableAlterColumn, ast.AlterTableAddPartitions, ast.AlterTablePartition, ast.AlterTableRemovePartitioning:
		// The shape stays and no row goes (SET DEFAULT applies to later rows;
		// partitioning moves rows between partitions of one table).
	case ast.AlterTableDropIndex:
		p.Break(name, "cdc cannot predict which key this DROP INDEX removes: check the table's keys with cdc catalog after it")
	default:
		p.Break(name, "cdc cannot predict what this ALTER TABLE does to the table: check it with cdc catalog after running it on a copy")
	}
}

// cascades says whether a foreign key's action changes the rows of the table
// that holds it.
func cascades(action ast.ReferOptionType) bool {
	return action == ast.ReferOptionCascade || action == ast.ReferOptionSetNull || action == ast.ReferOptionSetDefault
}
