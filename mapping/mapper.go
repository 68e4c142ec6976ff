package mapping

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cdc-dev/cdc"
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
	// OnSkip, if set, is told of every change an entity produced no record for.
	OnSkip func(e *Entity, reason SkipReason)
}

// NewMapper returns a mapper for the entities; Compile or Map compiles their plans.
func NewMapper(entities []*Entity) *Mapper {
	m := &Mapper{byTable: map[cdc.TableName][]*Entity{}, plans: map[*cdc.Table][]*Plan{}}
	for _, e := range entities {
		m.byTable[e.Table] = append(m.byTable[e.Table], e)
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
		p, err := Compile(e, t)
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
func (m *Mapper) Map(ch *cdc.Change, out []Record, arena *cdc.Arena) ([]Record, error) {
	plans := m.lastPlans
	if ch.Table != m.lastTable {
		var err error
		if plans, err = m.Compile(ch.Table); err != nil {
			return out, fmt.Errorf("table %s changed at position %q and no longer fits its mapping; stopped before producing anything of it: %w",
				ch.Table.Name, ch.Position, err)
		}
		m.lastTable, m.lastPlans = ch.Table, plans
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
		if len(out) == n && m.OnSkip != nil {
			m.OnSkip(p.entity, p.skipped)
		}
	}
	return out, nil
}
