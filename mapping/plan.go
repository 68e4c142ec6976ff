package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// Record is what one change means for one entity: an upsert (Value set) or a
// tombstone (Value nil), or, under the dead_letter policy, a change the entity
// could not represent (DeadLetter set). Key and Value are complete messages,
// framing included.
type Record struct {
	Entity *Entity
	// Op is the change's operation, or OpDelete for every tombstone (a row that
	// left the entity's filter, was soft-deleted, or changed its key).
	Op         cdc.Op
	Key        []byte
	Value      []byte
	Position   cdc.Position
	CommitTime time.Time
	// Transaction is the change's (see cdc.Change.Transaction).
	Transaction string
	// Seq numbers the records of one change for one entity (a key change gives
	// a tombstone and an upsert), so that position, entity and Seq name a record.
	Seq        int
	DeadLetter *DeadLetter
	// Event is what an outbox row says of its record (nil for the records
	// of table entities).
	Event *Event
	plan  *Plan
}

// KeyText renders the record's key as JSON, for messages.
func (r *Record) KeyText() string { return r.plan.keyText(r.Key) }

// DeadLetter is a change that an entity under the dead_letter policy could not
// represent: why, and the values of the columns the entity reads (masked
// columns left out), as a JSON object of their text forms.
type DeadLetter struct {
	Reason string
	Row    []byte
}

// Plan is an entity compiled against one shape of its table.
type Plan struct {
	entity  *Entity
	framing Framing
	table   *cdc.Table
	// skipped is why the last change mapped to no record.
	skipped SkipReason
	key     []fieldPlan // in key schema order
	value   []fieldPlan // in value schema order
	// keyColumns are the columns the key fields read.
	keyColumns []int
	// where and tombstoneWhen decide whether a row is part of the entity.
	where, tombstoneWhen *condition
	// used lists the columns any field or condition reads: an update that
	// changes none of them changes nothing the entity shows. masked lists those
	// whose values must not leave the mapping.
	used, masked []int
	// scratch is where records are encoded before being copied out whole.
	scratch []byte
	// outbox is set for a route of an outbox table; route is its value, and
	// text where an outbox row's values are written as text.
	outbox      *outboxPlan
	route, text []byte
}

// Compile checks the entity against the table and returns its plan, whose
// records carry the framing given, or every problem found, each an *Error.
func Compile(e *Entity, t *cdc.Table, framing Framing) (*Plan, error) {
	if e.Outbox != nil {
		if err := Check(e); err != nil {
			return nil, err
		}
		return compileOutbox(e, t, framing)
	}
	c := &compiler{e: e, t: t}
	p := &Plan{entity: e, framing: framing, table: t}
	p.value = c.record(e.Fields, e.Schema, e.SchemaFile, "", e.Origin)
	for _, cond := range []struct {
		c    Condition
		name string
		dst  **condition
	}{{e.Where, "where", &p.where}, {e.TombstoneWhen, "tombstone_when", &p.tombstoneWhen}} {
		if cond.c.Expr == "" {
			continue
		}
		env, err := c.exprEnv()
		if err == nil {
			*cond.dst, err = compileCondition(env, cond.c)
		}
		if err != nil {
			c.errs = append(c.errs, &Error{Origin: cond.c.Origin, Entity: e.Name, Msg: cond.name + ": " + err.Error()})
			continue
		}
		for _, col := range (*cond.dst).columns {
			c.used = appendUnique(c.used, col)
		}
	}
	if _, err := e.KeySchema(); err != nil {
		c.errs = append(c.errs, err)
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	p.used, p.masked = c.used, c.masked
	for _, name := range e.Key {
		for _, f := range p.value {
			if f.name != name {
				continue
			}
			if f.rule.Column != "" && f.rule.Mask != MaskRedact && t.Columns[f.columns[0]].Nullable {
				c.fail(f.rule.Origin, name, "is a key field but column %s is nullable: a key must identify a row; declare it NOT NULL or key on other fields",
					t.Columns[f.columns[0]].Name)
			} else if _, union := schemaField(e.Schema, name).Type().(*avro.UnionSchema); union || f.rule.Mask == MaskRedact {
				c.fail(f.rule.Origin, name, "is a key field but may be null: a key must identify a row; make its type non-null or key on other fields")
			}
			p.key = append(p.key, f)
			for _, col := range f.columns {
				p.keyColumns = appendUnique(p.keyColumns, col)
			}
		}
	}
	if t.Identity != nil {
		for _, f := range p.key {
			for _, col := range f.columns {
				if !slices.Contains(t.Identity, col) {
					c.fail(f.rule.Origin, f.name, "is a key field but reads column %s, which %s's log does not carry in the old row of an update or delete (it carries only %s): a deleted row's key could not be tombstoned. Key the entity on those columns, or have the database log whole old rows (PostgreSQL: ALTER TABLE %s REPLICA IDENTITY FULL; MySQL: binlog_row_image = FULL)",
						t.Columns[col].Name, t.Name, strings.Join(columnNames(t, t.Identity), ", "), t.Name)
				}
			}
		}
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return p, nil
}

// Check reports every mistake of e that needs no table, so that it can be
// found where there is no database: rules against the schema's fields (nested
// records too), key fields, enum maps against the schema's symbols, masks, and
// the syntax of expressions and conditions. Compile makes the same checks,
// and the rest against the table.
func Check(e *Entity) error {
	if e.IsAggregate() {
		return checkAggregate(e)
	}
	if e.Outbox != nil {
		_, err := e.KeySchema()
		if err == nil && e.Outbox.KeyField != "" {
			err = checkKeyField(e)
		}
		return err
	}
	c := &compiler{e: e}
	c.record(e.Fields, e.Schema, e.SchemaFile, "", e.Origin)
	for _, cond := range []struct {
		c    Condition
		name string
	}{{e.Where, "where"}, {e.TombstoneWhen, "tombstone_when"}} {
		if cond.c.Expr == "" {
			continue
		}
		if err := checkSyntax(cond.c.Expr); err != nil {
			c.errs = append(c.errs, &Error{Origin: cond.c.Origin, Entity: e.Name, Msg: cond.name + ": " + err.Error()})
		}
	}
	if _, err := e.KeySchema(); err != nil {
		c.errs = append(c.errs, err)
	}
	return errors.Join(c.errs...)
}

func appendUnique(s []int, v int) []int {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// Entity is the entity the plan maps to.
func (p *Plan) Entity() *Entity { return p.entity }

// keyText renders a key the plan encoded (framing included) as JSON, for
// messages; a key it cannot decode is rendered in hexadecimal.
func (p *Plan) keyText(key []byte) string {
	schema, err := p.entity.KeySchema()
	if err == nil && len(key) >= len(p.framing.Key) {
		var decoded map[string]any
		if err = avro.Unmarshal(schema, key[len(p.framing.Key):], &decoded); err == nil {
			if text, err := json.Marshal(decoded); err == nil {
				return string(text)
			}
		}
	}
	return fmt.Sprintf("%x", key)
}

// Map appends to out the records a change means for the entity, their keys
// and values carved from arena (each allocated when arena is nil). A row is part
// of the entity when it passes where and not tombstone_when:
//   - read, insert: the new value if the row is part of the entity;
//   - delete: a tombstone if the old row was;
//   - update: nothing if no column the entity reads changed; a tombstone if the
//     row left the entity (or its key changed), then the new value if it is
//     part of the entity.
//
// Its error names the entity, table, field and position: the change must not be
// skipped, so the caller stops. Under the dead_letter policy a value the entity
// cannot represent becomes a dead-letter record instead.
//
// A plan is not safe for concurrent use.
func (p *Plan) Map(ch *cdc.Change, out []Record, arena *memory.Arena) ([]Record, error) {
	n := len(out)
	out, err := p.mapChange(ch, out, arena)
	if err == nil {
		for i := n; i < len(out); i++ {
			out[i].Position, out[i].CommitTime, out[i].Transaction, out[i].Seq = ch.Position, ch.CommitTime, ch.Transaction, i-n
		}
		return out, nil
	}
	var fault *fieldFault
	if p.entity.OnError != OnErrorDeadLetter || !errors.As(err, &fault) {
		return out[:n], err
	}
	return append(out[:n], p.deadLetter(ch, err)), nil
}

// SkipReason says why a change produced no record for an entity.
type SkipReason uint8

const (
	// SkipFiltered: the row is not part of the entity (its where or
	// tombstone_when), before the change or after it.
	SkipFiltered SkipReason = iota
	// SkipUnchanged: only columns the entity does not show (or redacts) changed.
	SkipUnchanged
)

func (r SkipReason) String() string {
	if r == SkipUnchanged {
		return "unchanged"
	}
	return "filtered"
}

func (p *Plan) mapChange(ch *cdc.Change, out []Record, arena *memory.Arena) ([]Record, error) {
	p.skipped = SkipFiltered
	if p.outbox != nil {
		if ch.Op != cdc.OpInsert {
			return out, nil // not an event (see Outbox)
		}
		return p.event(ch, out, arena)
	}
	switch ch.Op {
	case cdc.OpRead, cdc.OpInsert:
		if in, err := p.contains(ch, ch.After); !in || err != nil {
			return out, err
		}
		return p.upsert(ch, ch.After, out, arena)
	case cdc.OpDelete:
		if in, err := p.mayContain(ch, ch.Before); !in || err != nil {
			return out, err
		}
		return p.tombstone(ch, ch.Before, out, arena)
	case cdc.OpUpdate:
		return p.update(ch, out, arena)
	}
	return out, fmt.Errorf("entity %q: change at %s has unknown operation %d", p.entity.Name, ch.Position, ch.Op)
}

func (p *Plan) update(ch *cdc.Change, out []Record, arena *memory.Arena) ([]Record, error) {
	if ch.Before == nil {
		// Without the old row, a row outside the entity may have been inside:
		// a tombstone for a key consumers never saw is harmless, a missed one is not.
		isIn, err := p.contains(ch, ch.After)
		if err != nil {
			return out, err
		}
		if !isIn {
			return p.tombstone(ch, ch.After, out, arena)
		}
		return p.upsert(ch, ch.After, out, arena)
	}
	// The conditions see the row as it is after the change: a large value the
	// update left alone is filled in before they read it.
	if err := p.fillUnchanged(ch); err != nil {
		return out, err
	}
	if p.unchanged(ch) {
		p.skipped = SkipUnchanged
		return out, nil
	}
	isIn, err := p.contains(ch, ch.After)
	if err != nil {
		return out, err
	}
	wasIn, err := p.mayContain(ch, ch.Before)
	if err != nil {
		return out, err
	}
	if wasIn {
		gone := !isIn
		if isIn {
			if gone, err = p.keyChanged(ch); err != nil {
				return out, err
			}
		}
		if gone {
			if out, err = p.tombstone(ch, ch.Before, out, arena); err != nil {
				return out, err
			}
		}
	}
	if !isIn {
		return out, nil
	}
	return p.upsert(ch, ch.After, out, arena)
}

// contains says whether a row is part of the entity.
func (p *Plan) contains(ch *cdc.Change, row []cdc.Value) (bool, error) {
	for _, c := range []*condition{p.where, p.tombstoneWhen} {
		if c == nil {
			continue
		}
		holds, err := c.holds(row)
		if err != nil {
			return false, fmt.Errorf("%s: entity %q: %s %s: %w", c.origin, p.entity.Name, p.table.Name, p.at(ch), err)
		}
		if holds != (c == p.where) {
			return false, nil
		}
	}
	return true, nil
}

// mayContain says whether an old row may have been part of the entity: a
// condition that reads a column the log did not carry in the old row (see
// cdc.KindUnknown) cannot say, and a tombstone for a key consumers never saw
// is harmless where a missed one is not.
func (p *Plan) mayContain(ch *cdc.Change, row []cdc.Value) (bool, error) {
	for _, c := range []*condition{p.where, p.tombstoneWhen} {
		if c == nil {
			continue
		}
		for _, col := range c.columns {
			if row[col].Kind == cdc.KindUnknown {
				return true, nil
			}
		}
	}
	return p.contains(ch, row)
}

func (p *Plan) upsert(ch *cdc.Change, row []cdc.Value, out []Record, arena *memory.Arena) ([]Record, error) {
	key, err := p.encode(ch, p.framing.Key, p.key, row, arena)
	if err != nil {
		return out, err
	}
	value, err := p.encode(ch, p.framing.Value, p.value, row, arena)
	if err != nil {
		return out, err
	}
	return append(out, Record{Entity: p.entity, plan: p, Op: ch.Op, Key: key, Value: value}), nil
}

func (p *Plan) tombstone(ch *cdc.Change, row []cdc.Value, out []Record, arena *memory.Arena) ([]Record, error) {
	for _, c := range p.keyColumns {
		if row[c].Kind == cdc.KindUnknown || row[c].Kind == cdc.KindUnchanged {
			// Not a value error: no dead letter may stand in for a tombstone.
			return out, fmt.Errorf("entity %q: %s %s: the log did not carry key column %s of the old row, so the key to tombstone is unknown; stopped before writing anything of it. Have the database log the column in old rows (PostgreSQL: ALTER TABLE %s REPLICA IDENTITY FULL, or USING INDEX on a unique index of the key; MySQL: binlog_row_image = FULL in every session)",
				p.entity.Name, p.table.Name, p.at(ch), p.table.Columns[c].Name, p.table.Name)
		}
	}
	key, err := p.encode(ch, p.framing.Key, p.key, row, arena)
	if err != nil {
		return out, err
	}
	return append(out, Record{Entity: p.entity, plan: p, Op: cdc.OpDelete, Key: key}), nil
}

// fillUnchanged completes the new row with old values for the columns the database
// did not resend (PostgreSQL's unchanged TOAST). Sources fill them when the
// old row lacks them too; a change that still lacks one cannot be written
// whole, and a partial record would overwrite the real one.
func (p *Plan) fillUnchanged(ch *cdc.Change) error {
	for _, c := range p.used {
		if ch.After[c].Kind != cdc.KindUnchanged {
			continue
		}
		if k := ch.Before[c].Kind; k == cdc.KindUnchanged || k == cdc.KindUnknown {
			return fmt.Errorf("entity %q: %s column %s at %s arrived without its value (the update left it unchanged) and without an old value; stopped before writing a record without it",
				p.entity.Name, p.table.Name, p.table.Columns[c].Name, ch.Position)
		}
		ch.After[c] = ch.Before[c]
	}
	return nil
}

// keyChanged compares key columns first: an unchanged key (the common case)
// costs no encoding. When they differ, the encoded keys decide, since a computed
// key may map different columns to the same key.
func (p *Plan) keyChanged(ch *cdc.Change) (bool, error) {
	same := true
	for _, c := range p.keyColumns {
		if !ch.Before[c].Equal(ch.After[c]) {
			same = false
			break
		}
	}
	if same {
		return false, nil
	}
	before, err := p.encode(ch, nil, p.key, ch.Before, nil)
	if err != nil {
		return false, err
	}
	after, err := p.encode(ch, nil, p.key, ch.After, nil)
	if err != nil {
		return false, err
	}
	return string(before) != string(after), nil
}

func (p *Plan) unchanged(ch *cdc.Change) bool {
	for _, c := range p.used {
		if !ch.Before[c].Equal(ch.After[c]) {
			return false
		}
	}
	return true
}

// encode writes header and record fields into the plan's scratch buffer, then
// copies them into arena (a buffer of their own when arena is nil): a record
// takes exactly its size, and no memory of its own once the arena is warm.
func (p *Plan) encode(ch *cdc.Change, header []byte, fields []fieldPlan, row []cdc.Value, arena *memory.Arena) ([]byte, error) {
	buf := append(p.scratch[:0], header...)
	var err error
	for i := range fields {
		if buf, err = fields[i].write(buf, row); err != nil {
			p.scratch = buf[:0]
			return nil, p.valueError(ch, row, err)
		}
	}
	p.scratch = buf[:0]
	if arena == nil || len(buf) == 0 {
		return append([]byte{}, buf...), nil // never nil: a nil value is a tombstone
	}
	return arena.Copy(buf), nil
}

func (p *Plan) valueError(ch *cdc.Change, row []cdc.Value, err error) error {
	var f *fieldFault
	if !errors.As(err, &f) {
		return err
	}
	if f.column < 0 {
		return fmt.Errorf("entity %q, field %q: %s %s: %w; nothing was written: fix the row or the expression",
			p.entity.Name, f.field, p.table.Name, p.at(ch), f)
	}
	text := "(masked)"
	if !slices.Contains(p.masked, f.column) {
		text = row[f.column].String()
		if len(text) > 64 {
			text = text[:64] + "…"
		}
	}
	fix := "fix the row or widen the field"
	if p.outbox != nil {
		fix = "fix what the application writes into the outbox, or the route's schema (a compatible change)"
	} else if errors.Is(f, errNull) {
		// The catalog says NOT NULL now: a change logged before the column
		// became NOT NULL, read again from the log.
		fix = "the column is NOT NULL now, so the change was logged before it became so (ALTER TABLE ... SET NOT NULL came later, and the row's later changes carry a value): let cdc pass it with on_error: dead_letter, or make the field nullable"
	}
	return fmt.Errorf("entity %q, field %q: %s column %s value %s %s: %w; the schema cannot hold it, so nothing was written: %s",
		p.entity.Name, f.field, p.table.Name, p.table.Columns[f.column].Name, text, p.at(ch), f, fix)
}

// at says where a change is, for messages: its position in the log, or for
// a snapshot row, which has none, its key.
func (p *Plan) at(ch *cdc.Change) string {
	if ch.Position != "" {
		return fmt.Sprintf("at position %q", ch.Position)
	}
	row := ch.After
	if row == nil {
		row = ch.Before
	}
	columns := p.keyColumns
	if len(columns) == 0 {
		columns = p.table.PrimaryKey
	}
	parts := make([]string, 0, len(columns))
	for _, c := range columns {
		text := "(masked)"
		if !slices.Contains(p.masked, c) && c < len(row) {
			text = row[c].String()
		}
		parts = append(parts, p.table.Columns[c].Name+"="+text)
	}
	return "in the snapshot row " + strings.Join(parts, ", ")
}

// deadLetter describes a change the entity could not represent. The key is the
// entity's key when it could be encoded, so consumers of the dead letters can
// match it with the entity topic.
func (p *Plan) deadLetter(ch *cdc.Change, err error) Record {
	row := ch.After
	if row == nil {
		row = ch.Before
	}
	var key []byte
	if o := p.outbox; o == nil {
		key, _ = p.encode(ch, p.framing.Key, p.key, row, nil)
	} else if o.key >= 0 && row[o.key].Kind != cdc.KindNull {
		key = appendBytes(append([]byte{}, p.framing.Key...), []byte(row[o.key].String()))
	}
	values := make(map[string]any, len(p.used))
	for _, c := range p.used {
		if slices.Contains(p.masked, c) {
			continue
		}
		if row[c].Kind == cdc.KindNull {
			values[p.table.Columns[c].Name] = nil
		} else {
			values[p.table.Columns[c].Name] = row[c].String()
		}
	}
	doc, _ := json.Marshal(values)
	return Record{Entity: p.entity, plan: p, Op: ch.Op, Key: key, Position: ch.Position, CommitTime: ch.CommitTime, Transaction: ch.Transaction,
		DeadLetter: &DeadLetter{Reason: err.Error(), Row: doc}}
}
