package mapping

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cdc-dev/cdc"
)

// Record is what one change means for one entity: an upsert (Value set) or a
// tombstone (Value nil). Key and Value are complete messages, framing included.
type Record struct {
	Entity *Entity
	Op     cdc.Op
	Key    []byte
	Value  []byte
}

// Plan is an entity compiled against one shape of its table.
type Plan struct {
	entity *Entity
	table  *cdc.Table
	key    []fieldPlan // in key schema order
	value  []fieldPlan // in value schema order
	// used lists the columns any field reads: an update that changes none of them
	// changes nothing the entity shows.
	used []int
}

type fieldPlan struct {
	name   string
	column int
	encode encodeFunc
}

// Compile checks the entity against the table and returns its plan, or every
// problem found, each an *Error.
func Compile(e *Entity, t *cdc.Table) (*Plan, error) {
	p := &Plan{entity: e, table: t}
	var errs []error
	rules := make(map[string]Field, len(e.Fields))
	for _, f := range e.Fields {
		if _, dup := rules[f.Name]; dup {
			errs = append(errs, e.errorf(f.Origin, f.Name, "mapped twice: keep one rule per field"))
		}
		rules[f.Name] = f
		if schemaField(e.Schema, f.Name) == nil {
			errs = append(errs, e.errorf(f.Origin, f.Name, "not a field of %s (%s): add it to the schema or remove the rule (schema fields: %s)",
				e.Schema.FullName(), e.SchemaFile, strings.Join(fieldNames(e.Schema), ", ")))
		}
	}
	for _, sf := range e.Schema.Fields() {
		rule, ok := rules[sf.Name()]
		if !ok {
			errs = append(errs, e.errorf("", sf.Name(), "schema field of %s (%s) has no rule: add `%s: <column>` under fields",
				e.Schema.FullName(), e.SchemaFile, sf.Name()))
			continue
		}
		ord := t.Column(rule.Column)
		if ord < 0 {
			errs = append(errs, e.errorf(rule.Origin, rule.Name, "column %q not in %s (has: %s)",
				rule.Column, t.Name, strings.Join(t.ColumnNames(), ", ")))
			continue
		}
		enc, err := encoderFor(t.Columns[ord], sf.Type())
		if err != nil {
			errs = append(errs, e.errorf(rule.Origin, rule.Name, "%v", err))
			continue
		}
		p.value = append(p.value, fieldPlan{name: sf.Name(), column: ord, encode: enc})
		p.used = appendUnique(p.used, ord)
	}
	if _, err := e.KeySchema(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, name := range e.Key {
		for _, f := range p.value {
			if f.name != name {
				continue
			}
			if t.Columns[f.column].Nullable {
				errs = append(errs, e.errorf(rules[name].Origin, name, "is a key field but column %s is nullable: a key must identify a row; declare it NOT NULL or key on other fields",
					t.Columns[f.column].Name))
			}
			p.key = append(p.key, f)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func appendUnique(s []int, v int) []int {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// Map appends to out the records a change means for the entity:
//   - read, insert: the new value;
//   - update: nothing if no mapped column changed; a tombstone for the old key and
//     the new value if the key changed; else the new value;
//   - delete: a tombstone.
//
// Its error names the entity, table, field and position: the change must not be
// skipped, so the caller stops.
func (p *Plan) Map(ch *cdc.Change, out []Record) ([]Record, error) {
	switch ch.Op {
	case cdc.OpRead, cdc.OpInsert:
		return p.upsert(ch, ch.After, out)
	case cdc.OpDelete:
		return p.tombstone(ch, ch.Before, out)
	case cdc.OpUpdate:
		if ch.Before == nil {
			return p.upsert(ch, ch.After, out)
		}
		if err := p.fillUnchanged(ch); err != nil {
			return out, err
		}
		if p.unchanged(ch) {
			return out, nil
		}
		if p.keyChanged(ch) {
			var err error
			if out, err = p.tombstone(ch, ch.Before, out); err != nil {
				return out, err
			}
		}
		return p.upsert(ch, ch.After, out)
	}
	return out, fmt.Errorf("entity %q: change at %s has unknown operation %d", p.entity.Name, ch.Position, ch.Op)
}

func (p *Plan) upsert(ch *cdc.Change, row []cdc.Value, out []Record) ([]Record, error) {
	key, err := p.encode(ch, p.entity.KeyHeader, p.key, row)
	if err != nil {
		return out, err
	}
	value, err := p.encode(ch, p.entity.ValueHeader, p.value, row)
	if err != nil {
		return out, err
	}
	return append(out, Record{Entity: p.entity, Op: ch.Op, Key: key, Value: value}), nil
}

func (p *Plan) tombstone(ch *cdc.Change, row []cdc.Value, out []Record) ([]Record, error) {
	key, err := p.encode(ch, p.entity.KeyHeader, p.key, row)
	if err != nil {
		return out, err
	}
	return append(out, Record{Entity: p.entity, Op: cdc.OpDelete, Key: key}), nil
}

// fillUnchanged completes the new row with old values for the columns the database
// did not resend (PostgreSQL's unchanged TOAST). Without an old value the entity
// cannot be written whole, and a partial record would overwrite the real one.
func (p *Plan) fillUnchanged(ch *cdc.Change) error {
	for _, c := range p.used {
		if ch.After[c].Kind != cdc.KindUnchanged {
			continue
		}
		if ch.Before[c].Kind == cdc.KindUnchanged {
			return fmt.Errorf("entity %q: %s column %s at %s arrived without its value (unchanged TOAST) and without an old value: set ALTER TABLE %s REPLICA IDENTITY FULL",
				p.entity.Name, p.table.Name, p.table.Columns[c].Name, ch.Position, p.table.Name)
		}
		ch.After[c] = ch.Before[c]
	}
	return nil
}

// keyChanged compares key columns rather than encoded keys: equal values encode
// alike, and an unchanged key (the common case) costs no encoding.
func (p *Plan) keyChanged(ch *cdc.Change) bool {
	for _, f := range p.key {
		if !ch.Before[f.column].Equal(ch.After[f.column]) {
			return true
		}
	}
	return false
}

func (p *Plan) unchanged(ch *cdc.Change) bool {
	for _, c := range p.used {
		if !ch.Before[c].Equal(ch.After[c]) {
			return false
		}
	}
	return true
}

// encode writes header and record fields into one new buffer: the only allocation
// per record, sized by a first guess that grows at most a few times.
func (p *Plan) encode(ch *cdc.Change, header []byte, fields []fieldPlan, row []cdc.Value) ([]byte, error) {
	buf := make([]byte, 0, len(header)+16*len(fields))
	buf = append(buf, header...)
	var err error
	for i := range fields {
		f := &fields[i]
		v := &row[f.column]
		if v.Kind == cdc.KindUnchanged {
			// fillUnchanged resolves these for updates; anywhere else the database
			// did not send the value, and a record without it would be wrong.
			return nil, p.valueError(ch, f, v, errors.New("the database did not send this value"))
		}
		if buf, err = f.encode(buf, v); err != nil {
			return nil, p.valueError(ch, f, v, err)
		}
	}
	return buf, nil
}

func (p *Plan) valueError(ch *cdc.Change, f *fieldPlan, v *cdc.Value, err error) error {
	text := v.String()
	if len(text) > 64 {
		text = text[:64] + "…"
	}
	return fmt.Errorf("entity %q, field %q: %s column %s value %s at position %q: %w; the schema cannot hold it, so nothing was written: fix the row or widen the field",
		p.entity.Name, f.name, p.table.Name, p.table.Columns[f.column].Name, text, ch.Position, err)
}
