// Package migration applies what a source's parser understood of a
// migration's statements to a catalog's tables, the same way for every
// dialect: copy-on-write tables, columns inserted and dropped with their
// keys, breaks noted once per table.
package migration

import (
	"maps"
	"slices"

	"github.com/cdc-dev/cdc"
)

// Step applies one statement to tables (keyed by name, updated in place) and
// notes what it did.
type Step struct {
	tables map[cdc.TableName]*cdc.Table
	cdc.MigrationStep
}

// NewStep starts the step of the statement text at line.
func NewStep(tables map[cdc.TableName]*cdc.Table, line int, text string) *Step {
	return &Step{tables: tables, MigrationStep: cdc.MigrationStep{Line: line, Text: text, Breaks: map[cdc.TableName]string{}}}
}

// Known says whether the catalog has the table.
func (s *Step) Known(name cdc.TableName) bool {
	_, ok := s.tables[name]
	return ok
}

// Change returns the table the statement changes, a copy noted as changed;
// nil if the catalog does not have it.
func (s *Step) Change(name cdc.TableName) *cdc.Table {
	t, ok := s.tables[name]
	if !ok {
		return nil
	}
	if i := slices.IndexFunc(s.Changed, func(c *cdc.Table) bool { return c.Name == name }); i >= 0 {
		return s.Changed[i]
	}
	c := *t
	c.Columns = slices.Clone(t.Columns)
	c.PrimaryKey = slices.Clone(t.PrimaryKey)
	c.UniqueKeys = slices.Clone(t.UniqueKeys)
	c.Omitted = maps.Clone(t.Omitted)
	if t.Identity != nil {
		c.Identity = slices.Clone(t.Identity)
	}
	s.Changed = append(s.Changed, &c)
	s.tables[name] = &c
	return &c
}

// Break notes why the statement does what no topic of a known table can
// follow.
func (s *Step) Break(name cdc.TableName, why string) {
	if s.Known(name) {
		s.Breaks[name] = why
	}
}

// Create adds a table the statement creates.
func (s *Step) Create(t *cdc.Table) {
	s.tables[t.Name] = t
	s.Changed = append(s.Changed, t)
}

// Drop removes a table the statement drops, noting why it breaks.
func (s *Step) Drop(name cdc.TableName, why string) {
	s.Break(name, why)
	delete(s.tables, name)
}

// Rename moves a table to another name, noting why it breaks.
func (s *Step) Rename(from, to cdc.TableName, why string) {
	s.Break(from, why)
	if t, ok := s.tables[from]; ok {
		moved := *t
		moved.Name = to
		delete(s.tables, from)
		s.tables[to] = &moved
	}
}

// InsertColumn puts c at position at of t, its keys following.
func InsertColumn(t *cdc.Table, at int, c cdc.Column) {
	t.Columns = slices.Insert(t.Columns, at, c)
	shift := func(key []int) {
		for i, k := range key {
			if k >= at {
				key[i] = k + 1
			}
		}
	}
	shift(t.PrimaryKey)
	shift(t.Identity)
	for _, k := range t.UniqueKeys {
		shift(k)
	}
}

// DropColumn removes column i of t and the keys that contain it.
func DropColumn(t *cdc.Table, i int) {
	t.Columns = slices.Delete(t.Columns, i, i+1)
	shift := func(key []int) ([]int, bool) {
		out := make([]int, 0, len(key))
		for _, k := range key {
			switch {
			case k == i:
				return nil, false // the key goes with its column
			case k > i:
				k--
			}
			out = append(out, k)
		}
		return out, true
	}
	t.PrimaryKey, _ = shift(t.PrimaryKey)
	if t.Identity != nil {
		// An identity that loses a column loses its index: no old key is logged.
		if identity, ok := shift(t.Identity); ok {
			t.Identity = identity
		} else {
			t.Identity = []int{}
		}
	}
	var unique [][]int
	for _, k := range t.UniqueKeys {
		if kept, ok := shift(k); ok {
			unique = append(unique, kept)
		}
	}
	t.UniqueKeys = unique
}

// Omit notes a column the table has whose values its log does not carry.
func Omit(t *cdc.Table, column, why string) {
	if t.Omitted == nil {
		t.Omitted = map[string]string{}
	}
	t.Omitted[column] = why
}

// AddKey adds a primary key (whose columns become NOT NULL) or a unique key
// on the named columns of t. A unique key with a nullable column identifies
// rows only where none is null: it is not one cdc keys on. It reports false
// when a column is not t's.
func AddKey(t *cdc.Table, primary bool, columns []string) bool {
	var key []int
	for _, name := range columns {
		i := t.Column(name)
		if i < 0 {
			return false
		}
		key = append(key, i)
	}
	switch {
	case primary:
		t.PrimaryKey = key
		for _, i := range key {
			t.Columns[i].Nullable = false
		}
	case !slices.ContainsFunc(key, func(i int) bool { return t.Columns[i].Nullable }):
		t.UniqueKeys = append(t.UniqueKeys, key)
	}
	return true
}
