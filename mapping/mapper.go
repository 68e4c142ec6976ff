package mapping

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// Mapper routes each change to the plans of the entities of its table. It is not
// safe for concurrent use: the pipeline maps in one goroutine, in log order.
type Mapper struct {
	byTable map[cdc.TableName][]*Entity
	// plans caches compiled plans per table shape. Sources hand out a new *Table
	// when a table's shape changes, so a new pointer means "check again".
	plans map[*cdc.Table][]*Plan
	// last avoids the map lookup for runs of changes to one table.
	lastTable *cdc.Table
	lastPlans []*Plan
	opts      Options
	// text is where an outbox row's route is written, to find its plan.
	text []byte
}

// Options are what a mapper adds to its entities' definitions.
type Options struct {
	// Framing is each entity's framing, by entity name (none if missing).
	Framing map[string]Framing
	// OnSkip, if set, is told of every change an entity produced no record for.
	OnSkip func(e *Entity, reason SkipReason)
}

// NewMapper returns a mapper for the entities; Compile or Map compiles their plans.
func NewMapper(entities []*Entity, opts Options) *Mapper {
	m := &Mapper{byTable: map[cdc.TableName][]*Entity{}, plans: map[*cdc.Table][]*Plan{}, opts: opts}
	for _, e := range entities {
		if !e.IsAggregate() { // mapped from views, not changes (see Aggregate)
			m.byTable[e.Table] = append(m.byTable[e.Table], e)
		}
	}
	return m
}

// Tables lists the tables the entities read, each once.
func (m *Mapper) Tables() []cdc.TableName {
	names := make([]cdc.TableName, 0, len(m.byTable))
	for name := range m.byTable {
		names = append(names, name)
	}
	return names
}

// Compile compiles the plans of every entity of t and reports every problem.
func (m *Mapper) Compile(t *cdc.Table) ([]*Plan, error) {
	if plans, ok := m.plans[t]; ok {
		return plans, nil
	}
	var plans []*Plan
	var errs []error
	for _, e := range m.byTable[t.Name] {
		p, err := Compile(e, t, m.opts.Framing[e.Name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plans = append(plans, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m.plans[t] = plans
	return plans, nil
}

// Map appends the records of every entity of the change's table, their keys
// and values carved from arena (see Plan.Map). A change to a table whose new
// shape no longer fits a mapping is an error, reported before anything of it
// is produced (the schema contract outranks liveness).
func (m *Mapper) Map(ch *cdc.Change, out []Record, arena *memory.Arena) ([]Record, error) {
	plans := m.lastPlans
	if ch.Table != m.lastTable {
		var err error
		if plans, err = m.Compile(ch.Table); err != nil {
			return out, fmt.Errorf("table %s changed at position %q and no longer fits its mapping; stopped before producing anything of it: %w",
				ch.Table.Name, ch.Position, err)
		}
		m.lastTable, m.lastPlans = ch.Table, plans
	}
	if len(plans) > 0 && plans[0].outbox != nil {
		return m.mapOutbox(ch, plans, out, arena)
	}
	var err error
	for _, p := range plans {
		if ch.Entities != nil && !slices.Contains(ch.Entities, p.entity.Name) {
			continue
		}
		n := len(out)
		if out, err = p.Map(ch, out, arena); err != nil {
			return out, err
		}
		if len(out) == n && m.opts.OnSkip != nil {
			m.opts.OnSkip(p.entity, p.skipped)
		}
	}
	return out, nil
}

// CheckKeys checks that every entity of t keys on columns that identify t's
// rows: its key fields copy (or hash, or name by an enum map one to one)
// columns that include t's primary key or one of its unique keys. Otherwise
// rows sharing a key would overwrite each other in the topic, and the delete
// of one would tombstone a key that other rows still have. t must be
// described from the catalog, which knows its unique keys.
func (m *Mapper) CheckKeys(t *cdc.Table) error {
	var errs []error
	for _, e := range m.byTable[t.Name] {
		if e.Outbox != nil {
			continue // its records are events, keyed by the application
		}
		var columns []int
		for _, k := range e.Key {
			i := slices.IndexFunc(e.Fields, func(f Field) bool { return f.Name == k })
			if i < 0 {
				continue // refused by Compile
			}
			f := e.Fields[i]
			if c := t.Column(f.Column); c >= 0 && f.Expr == "" && f.Mask != MaskRedact && oneToOne(f.Enum) {
				columns = append(columns, c)
			}
		}
		if t.IdentifiedBy(columns) {
			continue
		}
		errs = append(errs, &Error{Origin: e.Origin, Entity: e.Name, Msg: fmt.Sprintf(
			"key %v does not identify the rows of %s: %s. Rows sharing a key would overwrite each other in the topic, and deleting one would tombstone a key other rows still have. %s",
			e.Key, t.Name, keyColumnsText(t, columns), keyFix(t))})
	}
	return errors.Join(errs...)
}

// oneToOne reports whether an enum map (nil: none) gives distinct codes
// distinct symbols.
func oneToOne(enum map[string]string) bool {
	seen := map[string]bool{}
	for _, symbol := range enum {
		if seen[symbol] {
			return false
		}
		seen[symbol] = true
	}
	return true
}

func keyColumnsText(t *cdc.Table, columns []int) string {
	if len(columns) == 0 {
		return "it copies no column as it is (an expression, or an enum map that gives several codes one symbol, may give two rows one key)"
	}
	return "no primary key or unique index on NOT NULL columns is made of its columns (" + strings.Join(columnNames(t, columns), ", ") + ")"
}

// keyFix says how to key the entity on what identifies t's rows.
func keyFix(t *cdc.Table) string {
	var keys []string
	for _, key := range append([][]int{t.PrimaryKey}, t.UniqueKeys...) {
		if len(key) > 0 {
			keys = append(keys, "("+strings.Join(columnNames(t, key), ", ")+")")
		}
	}
	if len(keys) == 0 {
		return fmt.Sprintf("%s has no primary key and no unique index on NOT NULL columns: add one (ALTER TABLE %s ADD PRIMARY KEY (...)) and key the entity on its columns", t.Name, t.Name)
	}
	return fmt.Sprintf("Key the entity on fields that copy the columns of %s", strings.Join(keys, " or "))
}

func columnNames(t *cdc.Table, columns []int) []string {
	names := make([]string, len(columns))
	for i, c := range columns {
		names[i] = t.Columns[c].Name
	}
	return names
}
