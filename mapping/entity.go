// Package mapping turns row changes into entity records: it decides, for each change,
// whether the public entity sees an upsert, a tombstone or nothing, and encodes the
// key and value records in the entity's Avro schema.
//
// A mapping is compiled once per table shape and checked against the table's
// columns and the Avro schema before any row is read: a field that cannot hold
// every value of its column is refused then, not discovered at the first odd row.
// The package is pure: it never logs, never does I/O, and holds no global state.
package mapping

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc"
)

// Entity is one public entity: how the rows of one table become records of one topic.
type Entity struct {
	Name  string
	Table cdc.TableName
	Topic string
	// Schema is the value record schema: the public contract. SchemaFile names
	// where it came from, for messages.
	Schema     *avro.RecordSchema
	SchemaFile string
	// Key names the value fields that form the record key, in key order.
	Key []string
	// Fields holds one rule per value field.
	Fields []Field
	// Where keeps only the rows for which it holds: a row that leaves it gets a
	// tombstone. TombstoneWhen marks soft-deleted rows: a row for which it holds
	// is treated as deleted. Both are CEL expressions over the row's columns.
	Where, TombstoneWhen Condition
	// MaskSalt is the secret key of hash masks; required when a rule hashes.
	MaskSalt []byte
	// OnError says what a value the entity cannot represent does: stop the
	// daemon (the default), or become a dead letter (see Record.DeadLetter).
	OnError ErrorPolicy
	// Origin is where the entity is defined ("cdc.yaml:12"), for messages.
	Origin string
	// Outbox, if set, makes the entity a route of an outbox table: its
	// records are the rows whose route column holds Route (see Outbox).
	// Key, Fields, Where and TombstoneWhen are unused then.
	Outbox *Outbox
	Route  string
	// Edges, if set, make the entity an aggregate of several tables: Table
	// is its root table, and each edge embeds rows of another (see Edge).
	Edges []Edge
}

// Framing is written before each encoded key and value of an entity: the
// wire format the sink chose (a schema registry id, or a single-object
// fingerprint).
type Framing struct {
	Key, Value []byte
}

// Field is the rule of one Avro field. Exactly one of Column, Expr and Fields
// says where the value comes from:
//   - Column: the column's value, or with Enum its code translated to a symbol,
//     or with Mask its value hashed or redacted;
//   - Expr: a CEL expression over the row's columns;
//   - Fields: a nested record, one rule per field of the record.
type Field struct {
	Name   string
	Origin string
	Column string
	Expr   string
	// Enum maps codes, in the text form of the column's values ("1", "A"), to
	// symbols of the field's Avro enum.
	Enum   map[string]string
	Mask   Mask
	Fields []Field
}

// Mask hides a column's value from consumers.
type Mask string

const (
	// MaskHash replaces a value with HMAC-SHA256(salt, value): equal values stay
	// equal (joins keep working) but cannot be read back without the salt.
	MaskHash Mask = "hash"
	// MaskRedact replaces every value with null.
	MaskRedact Mask = "redact"
)

// Condition is a boolean CEL expression over a row; the empty Expr is no condition.
type Condition struct {
	Expr   string
	Origin string
}

// ErrorPolicy is what happens to a change whose values the entity cannot represent.
type ErrorPolicy string

const (
	OnErrorStop       ErrorPolicy = "stop"
	OnErrorDeadLetter ErrorPolicy = "dead_letter"
)

// Error is a mapping mistake found before any row is read. It says where the
// mistake is, what is wrong and, in Msg, what would fix it.
type Error struct {
	Origin string // "cdc.yaml:14"
	Entity string
	Field  string // empty when the error concerns the entity as a whole
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Origin != "" {
		b.WriteString(e.Origin)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "entity %q", e.Entity)
	if e.Field != "" {
		fmt.Fprintf(&b, ", field %q", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Entity) errorf(origin, field, format string, args ...any) *Error {
	if origin == "" {
		origin = e.Origin
	}
	return &Error{Origin: origin, Entity: e.Name, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// KeySchema derives the key record schema from the value schema: a record named
// after the value record with a "Key" suffix, holding the key fields in key order
// with the same types. Consumers in any language can decode keys with it.
func (e *Entity) KeySchema() (*avro.RecordSchema, error) {
	if e.Outbox != nil {
		return outboxKeySchema(e)
	}
	if len(e.Key) == 0 {
		return nil, e.errorf("", "", "key is empty: list the fields that identify an entity, e.g. key: [id]")
	}
	fields := make([]*avro.Field, 0, len(e.Key))
	for _, name := range e.Key {
		f := schemaField(e.Schema, name)
		if f == nil {
			return nil, e.errorf("", "", "key field %q is not a field of %s (%s); key fields must be value fields (has: %s)",
				name, e.Schema.FullName(), e.SchemaFile, strings.Join(fieldNames(e.Schema), ", "))
		}
		kf, err := avro.NewField(f.Name(), f.Type())
		if err != nil {
			return nil, e.errorf("", name, "key field: %v", err)
		}
		fields = append(fields, kf)
	}
	ks, err := avro.NewRecordSchema(e.Schema.Name()+"Key", e.Schema.Namespace(), fields)
	if err != nil {
		return nil, e.errorf("", "", "derive key schema: %v", err)
	}
	return ks, nil
}

func schemaField(s *avro.RecordSchema, name string) *avro.Field {
	for _, f := range s.Fields() {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

func fieldNames(s *avro.RecordSchema) []string {
	names := make([]string, len(s.Fields()))
	for i, f := range s.Fields() {
		names[i] = f.Name()
	}
	return names
}

// EnumRule is an enum map of an entity, for checks of its coverage.
type EnumRule struct {
	Field  string // "status", or "address.kind" inside a record
	Column string
	Codes  map[string]string
	Origin string
}

// EnumRules lists the entity's enum maps, nested records included.
func (e *Entity) EnumRules() []EnumRule {
	var out []EnumRule
	var walk func(fields []Field, path string)
	walk = func(fields []Field, path string) {
		for _, f := range fields {
			if f.Enum != nil {
				out = append(out, EnumRule{Field: path + f.Name, Column: f.Column, Codes: f.Enum, Origin: f.Origin})
			}
			walk(f.Fields, path+f.Name+".")
		}
	}
	walk(e.Fields, "")
	return out
}
