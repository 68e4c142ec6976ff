package postgres

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/sources"
	"github.com/cdc-dev/cdc/sources/internal/migration"
)

// PredictMigration reads a migration with PostgreSQL's own parser
// (libpg_query) and applies each statement to tables, the tables as a
// catalog describes them, keyed by name; it updates tables and says what each
// statement did. Unqualified names are in schema public (the default
// search_path). A statement it cannot predict on a known table is a break,
// never a guess: a domain or other user type added to a table is taken for
// text, as the source reads values of types it does not know.
func PredictMigration(tables map[cdc.TableName]*cdc.Table, sql string) ([]cdc.MigrationStep, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, fmt.Errorf("not PostgreSQL: %v", err)
	}
	var steps []cdc.MigrationStep
	for _, raw := range tree.Stmts {
		start := int(raw.StmtLocation)
		end := len(sql)
		if raw.StmtLen > 0 {
			end = start + int(raw.StmtLen)
		}
		text, line := sources.Statement(sql, start, end)
		p := predictor{migration.NewStep(tables, line, text)}
		p.statement(raw.Stmt)
		steps = append(steps, p.MigrationStep)
	}
	return steps, nil
}

// predictor applies one statement.
type predictor struct{ *migration.Step }

func tableName(r *pg_query.RangeVar) cdc.TableName {
	schema := r.GetSchemaname()
	if schema == "" {
		schema = "public"
	}
	return cdc.TableName{Schema: schema, Name: r.GetRelname()}
}

func (p *predictor) statement(n *pg_query.Node) {
	switch s := n.GetNode().(type) {
	case *pg_query.Node_AlterTableStmt:
		name := tableName(s.AlterTableStmt.GetRelation())
		for _, cmd := range s.AlterTableStmt.GetCmds() {
			p.alter(name, cmd.GetAlterTableCmd())
		}
	case *pg_query.Node_RenameStmt:
		r := s.RenameStmt
		name := tableName(r.GetRelation())
		switch r.GetRenameType() {
		case pg_query.ObjectType_OBJECT_COLUMN:
			if t := p.Change(name); t != nil {
				if i := t.Column(r.GetSubname()); i >= 0 {
					t.Columns[i].Name = r.GetNewname()
				}
			}
		case pg_query.ObjectType_OBJECT_TABLE:
			p.Rename(name, cdc.TableName{Schema: name.Schema, Name: r.GetNewname()}, "RENAME moves the table away from the name the mapping follows: its next change stops cdc")
		default:
			p.Break(name, "cdc cannot predict what this RENAME does to the table")
		}
	case *pg_query.Node_DropStmt:
		if s.DropStmt.GetRemoveType() != pg_query.ObjectType_OBJECT_TABLE {
			return
		}
		for _, obj := range s.DropStmt.GetObjects() {
			var parts []string
			for _, item := range obj.GetList().GetItems() {
				parts = append(parts, item.GetString_().GetSval())
			}
			name := cdc.TableName{Schema: "public", Name: parts[len(parts)-1]}
			if len(parts) > 1 {
				name.Schema = parts[len(parts)-2]
			}
			p.Drop(name, "DROP TABLE removes the table and its rows without row events: its topic keeps them")
		}
	case *pg_query.Node_TruncateStmt:
		for _, r := range s.TruncateStmt.GetRelations() {
			p.Break(tableName(r.GetRangeVar()), "TRUNCATE removes every row; the topic keeps them until cdc stops at it and the topic is filled again")
		}
	case *pg_query.Node_CreateStmt:
		p.create(s.CreateStmt)
	}
	// Other statements (indexes, views, functions, grants, comments, DML) do
	// not change a table's shape or remove its rows without row events.
}

func (p *predictor) create(s *pg_query.CreateStmt) {
	t := &cdc.Table{Name: tableName(s.GetRelation())}
	for _, elt := range s.GetTableElts() {
		if def := elt.GetColumnDef(); def != nil {
			addColumn(t, def)
		}
	}
	for _, elt := range s.GetTableElts() {
		if con := elt.GetConstraint(); con != nil {
			addKey(t, con)
		}
	}
	p.Create(t)
}

// addColumn appends a column as its definition declares it, with the keys
// its own constraints make; a generated column is omitted, as the source
// omits it.
func addColumn(t *cdc.Table, def *pg_query.ColumnDef) {
	if generated(def) {
		migration.Omit(t, def.GetColname(), generatedOmitted)
		return
	}
	t.Columns = append(t.Columns, columnOf(def))
	for _, c := range def.GetConstraints() {
		switch c.GetConstraint().GetContype() {
		case pg_query.ConstrType_CONSTR_PRIMARY:
			migration.AddKey(t, true, []string{def.GetColname()})
		case pg_query.ConstrType_CONSTR_UNIQUE:
			migration.AddKey(t, false, []string{def.GetColname()})
		}
	}
}

// addKey adds a PRIMARY KEY or UNIQUE constraint to t's keys.
func addKey(t *cdc.Table, con *pg_query.Constraint) bool {
	var columns []string
	for _, k := range con.GetKeys() {
		columns = append(columns, k.GetString_().GetSval())
	}
	switch con.GetContype() {
	case pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_UNIQUE:
		return migration.AddKey(t, con.GetContype() == pg_query.ConstrType_CONSTR_PRIMARY, columns)
	}
	return false
}

func (p *predictor) alter(name cdc.TableName, cmd *pg_query.AlterTableCmd) {
	if !p.Known(name) {
		return
	}
	switch cmd.GetSubtype() {
	case pg_query.AlterTableType_AT_AddColumn:
		addColumn(p.Change(name), cmd.GetDef().GetColumnDef())
	case pg_query.AlterTableType_AT_DropColumn:
		t := p.Change(name)
		if i := t.Column(cmd.GetName()); i >= 0 {
			migration.DropColumn(t, i)
		}
	case pg_query.AlterTableType_AT_AlterColumnType:
		t := p.Change(name)
		if i := t.Column(cmd.GetName()); i >= 0 {
			c := columnOf(cmd.GetDef().GetColumnDef())
			c.Name, c.Nullable = t.Columns[i].Name, t.Columns[i].Nullable
			t.Columns[i] = c
		}
	case pg_query.AlterTableType_AT_SetNotNull, pg_query.AlterTableType_AT_DropNotNull:
		t := p.Change(name)
		if i := t.Column(cmd.GetName()); i >= 0 {
			t.Columns[i].Nullable = cmd.GetSubtype() == pg_query.AlterTableType_AT_DropNotNull
		}
	case pg_query.AlterTableType_AT_AddConstraint:
		con := cmd.GetDef().GetConstraint()
		switch con.GetContype() {
		case pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_UNIQUE:
			if !addKey(p.Change(name), con) {
				p.Break(name, "cdc cannot predict the key this constraint adds")
			}
		}
	case pg_query.AlterTableType_AT_ReplicaIdentity:
		switch cmd.GetDef().GetReplicaIdentityStmt().GetIdentityType() {
		case "n":
			p.Break(name, "REPLICA IDENTITY NOTHING: updates and deletes would be logged without the key of the row they change")
		case "d":
			if t := p.Change(name); t != nil {
				t.Identity = slices.Clone(t.PrimaryKey)
			}
		case "f":
			if t := p.Change(name); t != nil {
				t.Identity = nil
			}
		}
	case pg_query.AlterTableType_AT_AttachPartition:
		p.Break(name, "ATTACH PARTITION adds rows the log never showed: cdc backfills its table's entities when it finds it")
	case pg_query.AlterTableType_AT_DetachPartition, pg_query.AlterTableType_AT_DetachPartitionFinalize:
		p.Break(name, "DETACH PARTITION removes rows without row events: cdc stops at it, since its topics keep them")
	case pg_query.AlterTableType_AT_ColumnDefault, pg_query.AlterTableType_AT_CookedColumnDefault,
		pg_query.AlterTableType_AT_SetStatistics, pg_query.AlterTableType_AT_SetOptions, pg_query.AlterTableType_AT_ResetOptions,
		pg_query.AlterTableType_AT_SetStorage, pg_query.AlterTableType_AT_SetCompression, pg_query.AlterTableType_AT_AddIndex,
		pg_query.AlterTableType_AT_ValidateConstraint, pg_query.AlterTableType_AT_AlterConstraint, pg_query.AlterTableType_AT_ChangeOwner,
		pg_query.AlterTableType_AT_ClusterOn, pg_query.AlterTableType_AT_DropCluster, pg_query.AlterTableType_AT_SetTableSpace,
		pg_query.AlterTableType_AT_SetRelOptions, pg_query.AlterTableType_AT_ResetRelOptions, pg_query.AlterTableType_AT_ReplaceRelOptions,
		pg_query.AlterTableType_AT_EnableTrig, pg_query.AlterTableType_AT_DisableTrig, pg_query.AlterTableType_AT_EnableTrigAll,
		pg_query.AlterTableType_AT_DisableTrigAll, pg_query.AlterTableType_AT_EnableTrigUser, pg_query.AlterTableType_AT_DisableTrigUser,
		pg_query.AlterTableType_AT_EnableRowSecurity, pg_query.AlterTableType_AT_DisableRowSecurity, pg_query.AlterTableType_AT_ForceRowSecurity,
		pg_query.AlterTableType_AT_NoForceRowSecurity, pg_query.AlterTableType_AT_AddIdentity, pg_query.AlterTableType_AT_SetIdentity,
		pg_query.AlterTableType_AT_DropIdentity:
		// Neither the shape nor the rows change (a DEFAULT applies to rows
		// written later, which the log carries).
	default:
		p.Break(name, fmt.Sprintf("cdc cannot predict what ALTER TABLE ... %s does to the table: check it with cdc catalog after running it on a copy",
			strings.TrimPrefix(cmd.GetSubtype().String(), "AT_")))
	}
}

// generated says whether a column definition is a generated column's.
func generated(def *pg_query.ColumnDef) bool {
	if def.GetGenerated() != "" {
		return true
	}
	for _, c := range def.GetConstraints() {
		if c.GetConstraint().GetContype() == pg_query.ConstrType_CONSTR_GENERATED {
			return true
		}
	}
	return false
}

// builtinTypeOIDs names the built-in types builtinTypes decodes, as the
// parser spells them (pg_catalog's names; int, varchar(n), ... are
// normalized to them).
var builtinTypeOIDs = map[string]uint32{"bool": 16, "bytea": 17, "int8": 20, "int2": 21, "int4": 23, "oid": 26, "json": 114,
	"float4": 700, "float8": 701, "date": 1082, "time": 1083, "timestamp": 1114, "timestamptz": 1184, "numeric": 1700, "jsonb": 3802}

// columnOf describes a column as a column definition declares it.
func columnOf(def *pg_query.ColumnDef) cdc.Column {
	tn := def.GetTypeName()
	var names []string
	for _, n := range tn.GetNames() {
		names = append(names, n.GetString_().GetSval())
	}
	typ := names[len(names)-1]
	var mods []int32
	for _, m := range tn.GetTypmods() {
		mods = append(mods, m.GetAConst().GetIval().GetIval())
	}
	typmod := int32(-1)
	switch {
	case typ == "numeric" && len(mods) == 2:
		typmod = mods[0]<<16 | mods[1] + 4
	case typ == "numeric" && len(mods) == 1:
		typmod = mods[0]<<16 + 4
	case (typ == "time" || typ == "timestamp" || typ == "timestamptz") && len(mods) == 1:
		typmod = mods[0]
	}
	spelled := typ
	if len(mods) > 0 {
		parts := make([]string, len(mods))
		for i, m := range mods {
			parts[i] = strconv.Itoa(int(m))
		}
		spelled += "(" + strings.Join(parts, ",") + ")"
	}
	if len(tn.GetArrayBounds()) > 0 {
		spelled += "[]"
		typ = "array"
	}
	notNull := def.GetIsNotNull()
	for _, c := range def.GetConstraints() {
		switch c.GetConstraint().GetContype() {
		case pg_query.ConstrType_CONSTR_NOTNULL, pg_query.ConstrType_CONSTR_PRIMARY:
			notNull = true
		}
	}
	return column(def.GetColname(), spelled, builtinTypeOIDs[typ], typmod, notNull)
}
