// Package aggregate computes the records of aggregate entities (entities
// assembled from several tables, see mapping.Aggregate) from consistent views
// of the database: the roots that changes touched, or every root for a
// comparison. The same queries serve the stream, backfills and cdc verify.
package aggregate

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/metrics"
)

// DefaultChunk is how many roots are read back per query: the bound on the
// memory and on the Kafka records of one step of a fan-out.
const DefaultChunk = 500

// Entity computes one aggregate entity's records. It is not safe for
// concurrent use.
type Entity struct {
	entity  *mapping.Entity
	framing mapping.Framing
	plan    *mapping.Aggregate
	chunk   int
	// shapes are the tables the plan was compiled against.
	shapes  map[cdc.TableName]*cdc.Table
	lookups []mapping.Lookup
	seen    map[string]bool // the lookups' text, to name each root once
	metrics metrics.Aggregate
}

// New compiles an aggregate entity against its tables as described (see
// cdc.Source.Describe); chunk is the roots read per query (DefaultChunk if 0).
func New(e *mapping.Entity, framing mapping.Framing, tables []*cdc.Table, chunk int, m metrics.Aggregate) (*Entity, error) {
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	a := &Entity{entity: e, framing: framing, chunk: chunk, shapes: map[cdc.TableName]*cdc.Table{}, seen: map[string]bool{}, metrics: m}
	for _, t := range tables {
		a.shapes[t.Name] = t
	}
	if err := a.compile(); err != nil {
		return nil, err
	}
	m.Pending.Set(0)
	return a, nil
}

func (a *Entity) compile() error {
	plan, err := mapping.CompileAggregate(a.entity, func(n cdc.TableName) *cdc.Table { return a.shapes[n] }, a.framing)
	if err != nil {
		return err
	}
	a.plan = plan
	return nil
}

// shape compiles the plan again when a view reads a table in another shape
// than the plan's: the table changed, and must still fit the entity.
func (a *Entity) shape(t *cdc.Table) error {
	if a.shapes[t.Name] == t {
		return nil
	}
	a.shapes[t.Name] = t
	if err := a.compile(); err != nil {
		return fmt.Errorf("table %s changed and no longer fits aggregate entity %q; stopped before producing anything of it: %w", t.Name, a.entity.Name, err)
	}
	return nil
}

// Touch collects the roots a change touches (see mapping.Aggregate.Touched)
// and returns how many it added.
func (a *Entity) Touch(ch *cdc.Change) (int, error) {
	if ch.Entities != nil && !slices.Contains(ch.Entities, a.entity.Name) {
		return 0, nil
	}
	n := len(a.lookups)
	var err error
	if a.lookups, err = a.plan.Touched(ch, a.lookups); err != nil {
		return 0, err
	}
	kept := a.lookups[:n]
	for _, l := range a.lookups[n:] {
		if text := lookupText(l); !a.seen[text] {
			a.seen[text] = true
			kept = append(kept, l)
		}
	}
	a.lookups = kept
	a.metrics.Pending.Add(float64(len(kept) - n))
	return len(kept) - n, nil
}

// Recompute reads the roots collected so far back from v and hands their
// records to send, a chunk of roots at a time: a root found gives its
// record (or a tombstone if it is outside the entity), a root named by its
// key and not found its tombstone. Each root is sent once.
func (a *Entity) Recompute(ctx context.Context, v cdc.View, send func([]mapping.Record) error) error {
	if len(a.lookups) == 0 {
		return nil
	}
	key := a.plan.Key()
	done := map[string]bool{} // roots computed in this view
	// Roots named by their key (their own change, or a child's join on
	// it): read together; a root named by its own change and not found is
	// gone, and gets its tombstone.
	var byKey [][]cdc.Value
	gone := map[string]bool{}
	groups := map[string][]mapping.Lookup{}
	var order []string
	for _, l := range a.lookups {
		if l.ByKey || slices.Equal(l.Columns, key) {
			text := valuesText(l.Values)
			if _, seen := gone[text]; !seen {
				byKey = append(byKey, l.Values)
			}
			gone[text] = gone[text] || l.ByKey
			continue
		}
		name := strings.Join(l.Columns, "\x00")
		if _, ok := groups[name]; !ok {
			order = append(order, name)
		}
		groups[name] = append(groups[name], l)
	}
	for start := 0; start < len(byKey); start += a.chunk {
		chunk := byKey[start:min(start+a.chunk, len(byKey))]
		roots, err := a.readRoots(ctx, v, cdc.RowQuery{Table: a.entity.Table, Columns: key, Values: chunk, OrderBy: key})
		if err != nil {
			return err
		}
		found := map[string]bool{}
		for _, r := range roots {
			found[valuesText(r.key)] = true
		}
		records, err := a.records(ctx, v, roots, done)
		if err != nil {
			return err
		}
		for _, values := range chunk {
			text := valuesText(values)
			if found[text] || done[text] || !gone[text] {
				continue
			}
			done[text] = true
			a.metrics.Roots.Inc()
			if records, err = a.plan.Tombstone(values, records, nil); err != nil {
				return err
			}
		}
		if err := send(records); err != nil {
			return err
		}
	}
	// Roots named by other columns (a child's join, a dimension's): read in
	// key order, a chunk at a time, however many there are.
	for _, name := range order {
		lookups := groups[name]
		values := make([][]cdc.Value, len(lookups))
		for i, l := range lookups {
			values[i] = l.Values
		}
		for start := 0; start < len(values); start += a.chunk {
			q := cdc.RowQuery{Table: a.entity.Table, Columns: lookups[0].Columns, Values: values[start:min(start+a.chunk, len(values))], OrderBy: key}
			if err := a.pages(ctx, v, q, done, send); err != nil {
				return err
			}
			a.metrics.Pending.Sub(float64(len(q.Values)))
		}
	}
	a.metrics.Pending.Sub(float64(len(a.lookups) - sumGroups(groups)))
	a.lookups, a.seen = a.lookups[:0], map[string]bool{}
	return nil
}

func sumGroups(groups map[string][]mapping.Lookup) int {
	n := 0
	for _, g := range groups {
		n += len(g)
	}
	return n
}

// All computes every root's record from v, in key order, a chunk at a time.
func (a *Entity) All(ctx context.Context, v cdc.View, send func([]mapping.Record) error) error {
	key := a.plan.Key()
	return a.pages(ctx, v, cdc.RowQuery{Table: a.entity.Table, OrderBy: key}, map[string]bool{}, send)
}

// pages reads the roots q selects in key order, a chunk per query, and
// sends their records.
func (a *Entity) pages(ctx context.Context, v cdc.View, q cdc.RowQuery, done map[string]bool, send func([]mapping.Record) error) error {
	q.Limit = a.chunk
	for {
		roots, err := a.readRoots(ctx, v, q)
		if err != nil {
			return err
		}
		records, err := a.records(ctx, v, roots, done)
		if err != nil {
			return err
		}
		if err := send(records); err != nil {
			return err
		}
		if len(roots) < a.chunk {
			return nil
		}
		q.After = roots[len(roots)-1].key
	}
}

// root is a root row read back, copied out of the view's memory, and its
// primary key.
type root struct {
	row, key []cdc.Value
}

func (a *Entity) readRoots(ctx context.Context, v cdc.View, q cdc.RowQuery) ([]root, error) {
	var roots []root
	a.metrics.Queries.Inc()
	err := v.Rows(ctx, q, func(t *cdc.Table, row []cdc.Value) error {
		if err := a.shape(t); err != nil {
			return err
		}
		r := root{row: copyRow(row)}
		for _, name := range q.OrderBy {
			r.key = append(r.key, r.row[t.Column(name)])
		}
		roots = append(roots, r)
		return nil
	})
	a.metrics.Rows.Add(float64(len(roots)))
	return roots, err
}

// records reads the edges' rows of roots and returns the roots' records,
// leaving out the roots done already in this view.
func (a *Entity) records(ctx context.Context, v cdc.View, roots []root, done map[string]bool) ([]mapping.Record, error) {
	var kept []root
	for _, r := range roots {
		if text := valuesText(r.key); !done[text] {
			done[text] = true
			kept = append(kept, r)
		}
	}
	if len(kept) == 0 {
		return nil, nil
	}
	reads := a.plan.EdgeReads()
	rows := make([]map[string][][]cdc.Value, len(reads)) // per edge, by the join's values
	for i := range reads {
		read := &reads[i]
		rows[i] = map[string][][]cdc.Value{}
		var values [][]cdc.Value
		seen := map[string]bool{}
		for _, r := range kept {
			if vs, ok := read.RootValues(r.row); ok && !seen[valuesText(vs)] {
				seen[valuesText(vs)] = true
				values = append(values, vs)
			}
		}
		if len(values) == 0 {
			continue
		}
		a.metrics.Queries.Inc()
		n := 0
		err := v.Rows(ctx, cdc.RowQuery{Table: read.Table, Columns: read.Columns, Values: values, OrderBy: read.OrderBy}, func(t *cdc.Table, row []cdc.Value) error {
			if err := a.shape(t); err != nil {
				return err
			}
			n++
			row = copyRow(row)
			join := make([]cdc.Value, len(read.Columns))
			for j, name := range read.Columns {
				join[j] = row[t.Column(name)]
			}
			text := valuesText(join)
			rows[i][text] = append(rows[i][text], row)
			return nil
		})
		a.metrics.Rows.Add(float64(n))
		if err != nil {
			return nil, err
		}
	}
	var records []mapping.Record
	edges := make([][][]cdc.Value, len(reads))
	for _, r := range kept {
		for i := range reads {
			edges[i] = nil
			if vs, ok := reads[i].RootValues(r.row); ok {
				edges[i] = rows[i][valuesText(vs)]
			}
		}
		var err error
		if records, err = a.plan.Record(r.row, edges, records, nil); err != nil {
			return nil, err
		}
		a.metrics.Roots.Inc()
	}
	return records, nil
}

func copyRow(row []cdc.Value) []cdc.Value {
	out := slices.Clone(row)
	for i := range out {
		out[i].Bytes = slices.Clone(out[i].Bytes)
	}
	return out
}

// valuesText renders values as one string that compares equal exactly when
// their text forms do, whichever query or change they came from.
func valuesText(values []cdc.Value) string {
	var b []byte
	for _, v := range values {
		if v.Kind == cdc.KindNull {
			b = append(b, 'N')
			continue
		}
		text := v.AppendText(nil)
		b = strconv.AppendInt(b, int64(len(text)), 10)
		b = append(append(b, ':'), text...)
	}
	return string(b)
}

func lookupText(l mapping.Lookup) string {
	text := strings.Join(l.Columns, "\x00") + "\x01" + valuesText(l.Values)
	if l.ByKey {
		text = "key\x01" + text
	}
	return text
}
