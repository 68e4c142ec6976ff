package mapping

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// An aggregate entity is assembled from several tables: one row of its root
// table (Entity.Table) and, through its edges, the rows of other tables that
// belong to it. Its records are computed from a consistent view of the
// database, never from one change: the pipeline collects the roots that the
// changes of a batch touch (see Aggregate.Touched) and reads them back with
// their edges' rows (docs/aggregates.md).

// EdgeKind says how an edge's rows belong to a root.
type EdgeKind uint8

const (
	// EdgeChildren embeds the rows that refer to the root (1:N) as an
	// array of records.
	EdgeChildren EdgeKind = iota + 1
	// EdgeDimension embeds the row the root refers to (N:1) as a record.
	EdgeDimension
)

// Edge is one table an aggregate embeds.
type Edge struct {
	// Field is the aggregate's value field the edge fills: an array of
	// records for children, a record (or null and a record) for a dimension.
	Field string
	Kind  EdgeKind
	Table cdc.TableName
	// Join pairs the edge table's columns with the root table's: a child
	// belongs to the root whose columns equal its own, a dimension row to
	// the roots whose columns equal its own.
	Join []Join
	// OrderBy orders a root's children (after the join columns); the
	// child table's primary key when empty.
	OrderBy []string
	// Fields are the rules of the edge's record.
	Fields []Field
	// Frozen (propagate: false) makes a dimension's changes recompute no
	// root: its values are those read when the root was last computed.
	Frozen bool
	Origin string
}

// Join pairs a column of an edge's table with one of the root table.
type Join struct {
	Member, Root string
}

// IsAggregate reports whether the entity is assembled from several tables.
func (e *Entity) IsAggregate() bool { return len(e.Edges) > 0 }

// Tables lists the tables the entity reads: its table, then its edges'.
func (e *Entity) Tables() []cdc.TableName {
	tables := []cdc.TableName{e.Table}
	for _, edge := range e.Edges {
		if !slices.Contains(tables, edge.Table) {
			tables = append(tables, edge.Table)
		}
	}
	return tables
}

// Aggregate is an aggregate entity compiled against one shape of each of
// its tables.
type Aggregate struct {
	entity *Entity
	root   *Plan // the root's own fields, key and conditions
	// key is the root table's primary key; every key field reads only its
	// columns, so that a root that is gone can be tombstoned from them.
	key   []int
	edges []*edgePlan
	// slots says, per field of the value schema, which edge fills it
	// (-1: the root's next field).
	slots   []int
	scratch []byte
}

type edgePlan struct {
	*Edge
	table  *cdc.Table
	fields []fieldPlan
	// member and root are the join's columns in the edge's table and in
	// the root's, in the order of Join.
	member, root []int
	// branch is the record's branch of a nullable dimension field, and
	// null the null's (-1 when the field is not nullable).
	branch, null int
}

// Lookup names the roots a change touched: those whose Columns (of the
// root table) equal Values. ByKey lookups name a root by its primary key:
// if it is not found, it is gone, and its key gets a tombstone.
type Lookup struct {
	Columns []string
	Values  []cdc.Value
	ByKey   bool
}

// Described returns the table of a name among tables, for CompileAggregate.
func Described(tables []*cdc.Table) func(cdc.TableName) *cdc.Table {
	return func(name cdc.TableName) *cdc.Table {
		if i := slices.IndexFunc(tables, func(t *cdc.Table) bool { return t.Name == name }); i >= 0 {
			return tables[i]
		}
		return nil
	}
}

// CompileAggregate checks an aggregate entity against its tables (table
// returns the described table of a name, nil if unknown) and returns its
// plan, or every problem found.
func CompileAggregate(e *Entity, table func(cdc.TableName) *cdc.Table, framing Framing) (*Aggregate, error) {
	rootTable := table(e.Table)
	if rootTable == nil {
		return nil, e.errorf("", "", "root table %s is not described", e.Table)
	}
	a := &Aggregate{entity: e, key: rootTable.PrimaryKey, slots: edgeSlots(e)}
	var errs []error
	rootEntity, err := rootOf(e)
	if err == nil {
		a.root, err = Compile(rootEntity, rootTable, framing)
	}
	if err != nil {
		errs = append(errs, err)
	} else {
		a.root.entity = e // its records are the aggregate's
		if len(a.key) == 0 {
			errs = append(errs, e.errorf("", "", "root table %s has no primary key: an aggregate names its roots by it (add one: ALTER TABLE %s ADD PRIMARY KEY (...))", e.Table, e.Table))
		}
		for _, f := range a.root.key {
			if f.rule.Expr != "" {
				errs = append(errs, e.errorf(f.rule.Origin, f.name, "is a key field of an aggregate and an expression: key an aggregate on columns of its root's primary key"))
			}
			for _, col := range f.columns {
				if !slices.Contains(a.key, col) {
					errs = append(errs, e.errorf(f.rule.Origin, f.name, "is a key field of an aggregate but reads column %s, which is not in the primary key of root table %s (%s): a root that is gone is tombstoned from its primary key alone. Key the aggregate on its primary key columns",
						rootTable.Columns[col].Name, e.Table, strings.Join(columnNames(rootTable, a.key), ", ")))
				}
			}
		}
	}
	for i := range e.Edges {
		edge, err := compileEdge(e, &e.Edges[i], rootTable, table)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.edges = append(a.edges, edge)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return a, nil
}

// edgeSlots says, per field of the aggregate's value schema, which edge
// fills it (-1: the root).
func edgeSlots(e *Entity) []int {
	slots := make([]int, len(e.Schema.Fields()))
	for i, f := range e.Schema.Fields() {
		slots[i] = slices.IndexFunc(e.Edges, func(edge Edge) bool { return edge.Field == f.Name() })
	}
	return slots
}

// rootOf is the entity of the aggregate's root row alone: its schema
// without the edges' fields, under the same name.
func rootOf(e *Entity) (*Entity, error) {
	var fields []*avro.Field
	for _, f := range e.Schema.Fields() {
		if slices.ContainsFunc(e.Edges, func(edge Edge) bool { return edge.Field == f.Name() }) {
			continue
		}
		field, err := avro.NewField(f.Name(), f.Type())
		if err != nil {
			return nil, e.errorf("", f.Name(), "%v", err)
		}
		fields = append(fields, field)
	}
	schema, err := avro.NewRecordSchema(e.Schema.Name(), e.Schema.Namespace(), fields)
	if err != nil {
		return nil, e.errorf("", "", "derive the root's schema: %v", err)
	}
	root := *e
	root.Schema, root.Edges = schema, nil
	return &root, nil
}

// edgeRecord is the record schema of an edge's rows, and for a nullable
// dimension the union's branches of the record and of null (-1 otherwise).
func edgeRecord(e *Entity, edge *Edge) (record *avro.RecordSchema, branch, null int, err error) {
	fail := func(format string, args ...any) error { return e.errorf(edge.Origin, edge.Field, format, args...) }
	sf := schemaField(e.Schema, edge.Field)
	if sf == nil {
		return nil, 0, 0, fail("not a field of %s (%s): add it to the schema (schema fields: %s)", e.Schema.FullName(), e.SchemaFile, strings.Join(fieldNames(e.Schema), ", "))
	}
	branch, null = -1, -1
	var ok bool
	switch edge.Kind {
	case EdgeChildren:
		if array, isArray := sf.Type().(*avro.ArraySchema); isArray {
			record, ok = array.Items().(*avro.RecordSchema)
		}
		if !ok {
			return nil, 0, 0, fail("children are an array of records, the schema says %s: make its type {type: array, items: {type: record, ...}}", sf.Type())
		}
	default:
		ft := sf.Type()
		if u, isUnion := ft.(*avro.UnionSchema); isUnion && u.Nullable() && len(u.Types()) == 2 {
			null, branch = u.Indices()
			ft = u.Types()[branch]
		}
		if record, ok = ft.(*avro.RecordSchema); !ok {
			return nil, 0, 0, fail("a dimension is a record (or null and a record), the schema says %s", sf.Type())
		}
	}
	return record, branch, null, nil
}

// checkAggregate is Check of an aggregate: its root's rules, and each
// edge's against its record.
func checkAggregate(e *Entity) error {
	root, err := rootOf(e)
	if err != nil {
		return err
	}
	errs := []error{Check(root)}
	for i := range e.Edges {
		edge := &e.Edges[i]
		record, _, _, err := edgeRecord(e, edge)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c := &compiler{e: e}
		c.record(edge.Fields, record, e.SchemaFile, edge.Field+".", edge.Origin)
		errs = append(errs, c.errs...)
	}
	return errors.Join(errs...)
}

func compileEdge(e *Entity, edge *Edge, rootTable *cdc.Table, table func(cdc.TableName) *cdc.Table) (*edgePlan, error) {
	fail := func(format string, args ...any) error {
		return e.errorf(edge.Origin, edge.Field, format, args...)
	}
	t := table(edge.Table)
	if t == nil {
		return nil, fail("table %s is not described", edge.Table)
	}
	p := &edgePlan{Edge: edge, table: t}
	record, branch, null, err := edgeRecord(e, edge)
	if err != nil {
		return nil, err
	}
	p.branch, p.null = branch, null
	if len(edge.Join) == 0 {
		return nil, fail("join is empty: pair the columns of %s with the root's, e.g. join: {order_id: order_id}", edge.Table)
	}
	var errs []error
	for _, j := range edge.Join {
		m, r := t.Column(j.Member), rootTable.Column(j.Root)
		if m < 0 {
			errs = append(errs, fail("join: %s has no column %s (has: %s)", edge.Table, j.Member, strings.Join(t.ColumnNames(), ", ")))
		}
		if r < 0 {
			errs = append(errs, fail("join: root table %s has no column %s (has: %s)", rootTable.Name, j.Root, strings.Join(rootTable.ColumnNames(), ", ")))
		}
		p.member, p.root = append(p.member, m), append(p.root, r)
	}
	if len(errs) == 0 && t.Identity != nil {
		for _, m := range p.member {
			if !slices.Contains(t.Identity, m) {
				errs = append(errs, fail("join: column %s is not among the columns %s's log carries in the old row of an update or delete (only %s): a row that moves to another root, or is deleted, would leave its old root's record stale. Have the database log whole old rows (PostgreSQL: ALTER TABLE %s REPLICA IDENTITY FULL; MySQL: binlog_row_image = FULL)",
					t.Columns[m].Name, edge.Table, strings.Join(columnNames(t, t.Identity), ", "), edge.Table))
			}
		}
	}
	if edge.Kind == EdgeDimension && len(errs) == 0 && !t.IdentifiedBy(p.member) {
		errs = append(errs, fail("join: the columns %s do not identify the rows of %s (no primary key or unique index is made of them): a root would have several dimension rows. Join on its primary key, or make the edge children",
			strings.Join(columnNames(t, p.member), ", "), edge.Table))
	}
	for _, name := range edge.OrderBy {
		if t.Column(name) < 0 {
			errs = append(errs, fail("order_by: %s has no column %s", edge.Table, name))
		}
	}
	if edge.Kind == EdgeChildren && len(edge.OrderBy) == 0 && len(t.PrimaryKey) == 0 {
		errs = append(errs, fail("%s has no primary key to order the children by: name columns that order them, order_by: [...]", edge.Table))
	}
	c := &compiler{e: e, t: t}
	p.fields = c.record(edge.Fields, record, e.SchemaFile, edge.Field+".", edge.Origin)
	errs = append(errs, c.errs...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// Key names the root table's primary key columns.
func (a *Aggregate) Key() []string { return columnNames(a.root.table, a.key) }

// Touched appends the roots a change of one of the aggregate's tables
// touched: a root's own row (before and after), a child's root (the old
// and the new one if it moved), the roots of a dimension row (none if the
// edge is frozen). A snapshot's or backfill's reads of other tables than
// the root touch nothing: the root's reads compute every aggregate. A change
// that cannot name its roots (a join column gone from the table, or left
// out of the log's old row) is an error: its old root would stay stale.
func (a *Aggregate) Touched(ch *cdc.Change, out []Lookup) ([]Lookup, error) {
	name, n := ch.Table.Name, len(out)
	add := func(l Lookup) {
		if !slices.ContainsFunc(out[n:], func(o Lookup) bool {
			return o.ByKey == l.ByKey && slices.Equal(o.Columns, l.Columns) && slices.EqualFunc(o.Values, l.Values, cdc.Value.Equal)
		}) {
			out = append(out, l)
		}
	}
	if name == a.entity.Table {
		columns := a.Key()
		for _, values := range images(ch, columns) {
			if values == nil {
				return out, a.unnamed(ch, columns)
			}
			add(Lookup{Columns: columns, Values: values, ByKey: true})
		}
	}
	if ch.Op == cdc.OpRead {
		return out, nil
	}
	for _, edge := range a.edges {
		if edge.Table != name || edge.Frozen {
			continue
		}
		members, roots := make([]string, len(edge.Join)), make([]string, len(edge.Join))
		for i, j := range edge.Join {
			members[i], roots[i] = j.Member, j.Root
		}
		for _, values := range images(ch, members) {
			if values == nil {
				return out, a.unnamed(ch, members)
			}
			if !slices.ContainsFunc(values, cdc.Value.IsNull) { // NULL refers to no root
				add(Lookup{Columns: roots, Values: values})
			}
		}
	}
	return out, nil
}

// images returns the values of the named columns in the change's old and
// new rows (those it has); nil for a row that lacks one of them.
func images(ch *cdc.Change, columns []string) [][]cdc.Value {
	var out [][]cdc.Value
	for _, row := range [2][]cdc.Value{ch.Before, ch.After} {
		if row == nil {
			continue
		}
		values := make([]cdc.Value, len(columns))
		for i, name := range columns {
			c := ch.Table.Column(name)
			if c < 0 || c >= len(row) {
				return append(out, nil)
			}
			v := row[c]
			if v.Kind == cdc.KindUnchanged && ch.Before != nil {
				v = ch.Before[c] // an update left it alone
			}
			if v.Kind == cdc.KindUnknown || v.Kind == cdc.KindUnchanged {
				return append(out, nil)
			}
			values[i] = v
			values[i].Bytes = slices.Clone(v.Bytes) // the batch's memory is reused
		}
		out = append(out, values)
	}
	return out
}

// unnamed says why a change cannot name the roots it touched.
func (a *Aggregate) unnamed(ch *cdc.Change, columns []string) error {
	for _, name := range columns {
		if ch.Table.Column(name) < 0 {
			return fmt.Errorf("entity %q: table %s changed at position %q and has no column %s any more, which the aggregate joins on; stopped before its records drift from the tables: map the column's new name, or restore it",
				a.entity.Name, ch.Table.Name, ch.Position, name)
		}
	}
	return fmt.Errorf("entity %q: %s at position %q: the log did not carry column(s) %s of the row, so the aggregate it belongs to is unknown; stopped before that aggregate's record goes stale. Have the database log whole old rows (PostgreSQL: ALTER TABLE %s REPLICA IDENTITY FULL; MySQL: binlog_row_image = FULL)",
		a.entity.Name, ch.Table.Name, ch.Position, strings.Join(columns, ", "), ch.Table.Name)
}

// EdgeRead is how the rows of one edge are read for a set of roots.
type EdgeRead struct {
	Table cdc.TableName
	// Columns of the edge's table equal the values of RootColumns (ordinals
	// in the root's row) of the roots.
	Columns     []string
	RootColumns []int
	OrderBy     []string
}

// EdgeReads lists how each edge's rows are read, in the order of the
// edges: a root's children ordered by the join, then OrderBy (or the
// child's primary key).
func (a *Aggregate) EdgeReads() []EdgeRead {
	reads := make([]EdgeRead, len(a.edges))
	for i, edge := range a.edges {
		r := EdgeRead{Table: edge.Table, RootColumns: edge.root}
		for _, j := range edge.Join {
			r.Columns = append(r.Columns, j.Member)
		}
		if edge.Kind == EdgeChildren {
			r.OrderBy = append(slices.Clone(r.Columns), edge.OrderBy...)
			if len(edge.OrderBy) == 0 {
				r.OrderBy = append(r.OrderBy, columnNames(edge.table, edge.table.PrimaryKey)...)
			}
		}
		reads[i] = r
	}
	return reads
}

// RootValues returns a root row's values of an edge read's RootColumns, and
// whether they refer to rows at all (no NULL among them).
func (r *EdgeRead) RootValues(root []cdc.Value) ([]cdc.Value, bool) {
	values := make([]cdc.Value, len(r.RootColumns))
	for i, c := range r.RootColumns {
		if root[c].Kind == cdc.KindNull {
			return nil, false
		}
		values[i] = root[c]
	}
	return values, true
}

// Record appends the record of one root, computed from its row and the rows
// of each edge (in the order of EdgeReads; a dimension's slice holds at most
// one row): its value if the root is part of the entity, else a tombstone.
// Its Position, CommitTime and Transaction are left for the caller.
func (a *Aggregate) Record(root []cdc.Value, edges [][][]cdc.Value, out []Record, arena *memory.Arena) ([]Record, error) {
	p := a.root
	ch := &cdc.Change{Table: p.table, Op: cdc.OpRead, After: root}
	in, err := p.contains(ch, root)
	if err != nil {
		return out, err
	}
	if !in {
		return p.tombstone(ch, root, out, arena)
	}
	key, err := p.encode(ch, p.framing.Key, p.key, root, arena)
	if err != nil {
		return out, err
	}
	buf := append(a.scratch[:0], p.framing.Value...)
	next := 0
	for _, slot := range a.slots {
		if slot < 0 {
			f := &p.value[next]
			next++
			if buf, err = f.write(buf, root); err != nil {
				return out, p.valueError(ch, root, err)
			}
			continue
		}
		if buf, err = a.edges[slot].write(buf, edges[slot], a, root); err != nil {
			return out, err
		}
	}
	a.scratch = buf[:0]
	var value []byte
	if arena == nil {
		value = slices.Clone(buf)
	} else {
		value = arena.Copy(buf)
	}
	return append(out, Record{Entity: a.entity, plan: p, Op: cdc.OpUpdate, Key: key, Value: value}), nil
}

// Tombstone appends the tombstone of the root whose primary key columns
// (see Key) hold values: a root that is gone.
func (a *Aggregate) Tombstone(values []cdc.Value, out []Record, arena *memory.Arena) ([]Record, error) {
	p := a.root
	row := make([]cdc.Value, len(p.table.Columns))
	for i, c := range a.key {
		row[c] = values[i]
	}
	ch := &cdc.Change{Table: p.table, Op: cdc.OpDelete, Before: row}
	key, err := p.encode(ch, p.framing.Key, p.key, row, arena)
	if err != nil {
		return out, err
	}
	return append(out, Record{Entity: a.entity, plan: p, Op: cdc.OpDelete, Key: key}), nil
}

func (edge *edgePlan) write(buf []byte, rows [][]cdc.Value, a *Aggregate, root []cdc.Value) ([]byte, error) {
	var err error
	writeRow := func(row []cdc.Value) {
		for i := range edge.fields {
			if buf, err = edge.fields[i].write(buf, row); err != nil {
				err = edge.valueError(a, root, row, err)
				return
			}
		}
	}
	switch edge.Kind {
	case EdgeChildren:
		if len(rows) > 0 {
			buf = appendLong(buf, int64(len(rows)))
			for _, row := range rows {
				if writeRow(row); err != nil {
					return buf, err
				}
			}
		}
		return appendLong(buf, 0), nil
	default:
		if len(rows) == 0 {
			if edge.null < 0 {
				return buf, fmt.Errorf("entity %q, field %q: root %s has no row of %s to embed (its join columns are NULL or name no row) and the field is not nullable: make it [\"null\", record], or fix the row; nothing was written",
					a.entity.Name, edge.Field, a.keyText(root), edge.Table)
			}
			return appendLong(buf, int64(edge.null)), nil
		}
		if edge.branch >= 0 {
			buf = appendLong(buf, int64(edge.branch))
		}
		writeRow(rows[0])
		return buf, err
	}
}

func (edge *edgePlan) valueError(a *Aggregate, root, row []cdc.Value, err error) error {
	var f *fieldFault
	if !errors.As(err, &f) {
		return err
	}
	what := "an expression"
	if f.column >= 0 {
		what = "column " + edge.table.Columns[f.column].Name
	}
	return fmt.Errorf("entity %q, field %q: %s %s of root %s: %w; the schema cannot hold it, so nothing was written: fix the row or widen the field",
		a.entity.Name, f.field, edge.Table, what, a.keyText(root), f)
}

// keyText names a root by its primary key, for messages.
func (a *Aggregate) keyText(root []cdc.Value) string {
	parts := make([]string, len(a.key))
	for i, c := range a.key {
		parts[i] = a.root.table.Columns[c].Name + "=" + root[c].String()
	}
	return strings.Join(parts, ", ")
}
