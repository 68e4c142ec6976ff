package mapping

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc"
)

// writer appends one field's Avro encoding, computed from a row.
type writer func(dst []byte, row []cdc.Value) ([]byte, error)

// fieldPlan is one compiled rule.
type fieldPlan struct {
	name    string
	rule    *Field
	columns []int // the columns the rule reads
	write   writer
}

// fieldFault is a value one field could not be written with: a NULL where the
// schema has none, a number out of range, an unmapped code, a failed expression.
type fieldFault struct {
	field  string // "address.city" inside nested records
	column int    // the column read, or -1 for an expression
	err    error
}

func (f *fieldFault) Error() string { return f.err.Error() }
func (f *fieldFault) Unwrap() error { return f.err }

// unmappedError is a value that has no symbol in an Avro enum: a code missing
// from an enum rule's map, or (without a map) a value that is not a symbol.
type unmappedError struct {
	code   string
	enum   *avro.EnumSchema
	mapped bool
}

func (e *unmappedError) Error() string {
	symbols := strings.Join(e.enum.Symbols(), ", ")
	if e.mapped {
		return fmt.Sprintf("code %q has no symbol in the enum map (symbols: %s): add `%s: <SYMBOL>` to it", e.code, symbols, e.code)
	}
	return fmt.Sprintf("%q is not a symbol of %s (symbols: %s): add it to the schema, or translate values with an enum map", e.code, e.enum.FullName(), symbols)
}

// errReported says that the problems of a nested record are already listed.
var errReported = errors.New("reported")

// CheckShape checks that a rule names one source of its value and only options
// that apply to it, before any table or schema is known.
func (f *Field) CheckShape() error {
	sources := 0
	for _, set := range []bool{f.Column != "", f.Expr != "", f.Fields != nil} {
		if set {
			sources++
		}
	}
	switch {
	case sources != 1:
		return errors.New("give exactly one of column, expr and record")
	case (f.Enum != nil || f.Mask != "") && f.Column == "":
		return errors.New("enum and mask apply to a column: add `column: <name>`")
	case f.Enum != nil && f.Mask != "":
		return errors.New("a field is either an enum or masked, not both")
	case f.Mask != "" && f.Mask != MaskHash && f.Mask != MaskRedact:
		return fmt.Errorf("mask %q: want hash (HMAC-SHA256 with masking.salt) or redact (always null)", f.Mask)
	}
	return nil
}

// compiler compiles an entity's rules against one table shape, or, without
// one (t nil), checks what needs no table (see Check).
type compiler struct {
	e    *Entity
	t    *cdc.Table
	env  *exprEnv // made at the first expression
	errs []error
	// used collects every column a rule or condition reads; masked, the columns
	// whose values must not appear anywhere (dead letters included).
	used, masked []int
}

func (c *compiler) fail(origin, field string, format string, args ...any) {
	c.errs = append(c.errs, c.e.errorf(origin, field, format, args...))
}

func (c *compiler) exprEnv() (*exprEnv, error) {
	if c.env == nil {
		env, err := newExprEnv(c.t)
		if err != nil {
			return nil, err
		}
		c.env = env
	}
	return c.env, nil
}

// record compiles the rules of a record's fields, in the schema's field order.
// path prefixes field names in messages ("address.").
func (c *compiler) record(rules []Field, schema *avro.RecordSchema, schemaFile, path, origin string) []fieldPlan {
	byName := make(map[string]*Field, len(rules))
	for i := range rules {
		f := &rules[i]
		if _, dup := byName[f.Name]; dup {
			c.fail(f.Origin, path+f.Name, "mapped twice: keep one rule per field")
		}
		byName[f.Name] = f
		if schemaField(schema, f.Name) == nil {
			c.fail(f.Origin, path+f.Name, "not a field of %s (%s): add it to the schema or remove the rule (schema fields: %s)",
				schema.FullName(), schemaFile, strings.Join(fieldNames(schema), ", "))
		}
	}
	var plans []fieldPlan
	for _, sf := range schema.Fields() {
		rule, ok := byName[sf.Name()]
		if !ok {
			c.fail(origin, path+sf.Name(), "schema field of %s (%s) has no rule: add `%s: <column>` under fields",
				schema.FullName(), schemaFile, sf.Name())
			continue
		}
		w, columns, err := c.rule(rule, sf.Type(), path+sf.Name(), schemaFile)
		if err != nil {
			if err != errReported {
				c.fail(rule.Origin, path+sf.Name(), "%v", err)
			}
			continue
		}
		for _, col := range columns {
			c.used = appendUnique(c.used, col)
		}
		plans = append(plans, fieldPlan{name: sf.Name(), rule: rule, columns: columns, write: w})
	}
	return plans
}

func (c *compiler) rule(f *Field, t avro.Schema, path, schemaFile string) (writer, []int, error) {
	if err := f.CheckShape(); err != nil {
		return nil, nil, err
	}
	switch {
	case f.Expr != "":
		return c.exprRule(f, t, path)
	case f.Fields != nil:
		return c.recordRule(f, t, path, schemaFile)
	case c.t == nil:
		return nil, nil, c.checkColumnRule(f, t)
	}
	ord := c.t.Column(f.Column)
	if why, omitted := c.t.Omitted[f.Column]; omitted {
		return nil, nil, fmt.Errorf("column %q of %s cannot be mapped: %s", f.Column, c.t.Name, why)
	}
	if ord < 0 {
		return nil, nil, fmt.Errorf("column %q not in %s (has: %s)", f.Column, c.t.Name, strings.Join(c.t.ColumnNames(), ", "))
	}
	col := c.t.Columns[ord]
	var enc encodeFunc
	var err error
	switch {
	case f.Enum != nil:
		enc, err = enumEncoder(col, f.Enum, t)
	case f.Mask == MaskRedact:
		if u, ok := t.(*avro.UnionSchema); ok && u.Nullable() {
			nullIndex, _ := u.Indices()
			return func(dst []byte, _ []cdc.Value) ([]byte, error) { return appendLong(dst, int64(nullIndex)), nil }, nil, nil
		}
		return nil, nil, fmt.Errorf("a redacted field is always null: make its type [\"null\", %s] with \"default\": null", t)
	case f.Mask == MaskHash:
		if len(c.e.MaskSalt) == 0 {
			return nil, nil, errors.New("hash masks need a secret salt: set masking.salt (e.g. masking: {salt: ${CDC_MASK_SALT}})")
		}
		c.masked = appendUnique(c.masked, ord)
		enc, err = hashEncoder(col, t, hmac.New(sha256.New, c.e.MaskSalt))
	default:
		enc, err = encoderFor(col, t)
	}
	if err != nil {
		return nil, nil, err
	}
	return func(dst []byte, row []cdc.Value) ([]byte, error) {
		v := &row[ord]
		switch v.Kind {
		case cdc.KindUnchanged:
			// Updates resolve these first; anywhere else the database did not
			// send the value, and a record without it would be wrong.
			return dst, &fieldFault{field: path, column: ord, err: errors.New("the database did not send this value")}
		case cdc.KindInvalid:
			return dst, &fieldFault{field: path, column: ord, err: invalidValue(col)}
		}
		out, err := enc(dst, v)
		if err != nil {
			return dst, &fieldFault{field: path, column: ord, err: err}
		}
		return out, nil
	}, []int{ord}, nil
}

// checkColumnRule checks what a column's rule must hold whatever the column:
// an enum map's symbols are the schema's, a redacted field may be null, a
// hash has its salt.
func (c *compiler) checkColumnRule(f *Field, t avro.Schema) error {
	switch {
	case f.Enum != nil:
		_, _, err := enumSymbols(f.Enum, t)
		return err
	case f.Mask == MaskRedact:
		if u, ok := t.(*avro.UnionSchema); !ok || !u.Nullable() {
			return fmt.Errorf("a redacted field is always null: make its type [\"null\", %s] with \"default\": null", t)
		}
	case f.Mask == MaskHash && len(c.e.MaskSalt) == 0:
		return errors.New("hash masks need a secret salt: set masking.salt (e.g. masking: {salt: ${CDC_MASK_SALT}})")
	}
	return nil
}

func (c *compiler) exprRule(f *Field, t avro.Schema, path string) (writer, []int, error) {
	if c.t == nil {
		return nil, nil, checkSyntax(f.Expr)
	}
	env, err := c.exprEnv()
	if err != nil {
		return nil, nil, err
	}
	p, err := env.compile(f.Expr)
	if err != nil {
		return nil, nil, err
	}
	enc, err := exprEncoder(p, t)
	if err != nil {
		return nil, nil, err
	}
	return func(dst []byte, row []cdc.Value) ([]byte, error) {
		v, err := p.eval(row)
		if err == nil {
			var out []byte
			if out, err = enc(dst, v); err == nil {
				return out, nil
			}
			err = fmt.Errorf("expression `%s` gave %v: %w", p.text, v, err)
		}
		return dst, &fieldFault{field: path, column: -1, err: err}
	}, p.columns, nil
}

// recordRule writes a nested record; a nullable record field always takes the
// record branch (its fields say what is missing).
func (c *compiler) recordRule(f *Field, t avro.Schema, path, schemaFile string) (writer, []int, error) {
	branch := -1
	if u, ok := t.(*avro.UnionSchema); ok && u.Nullable() && len(u.Types()) == 2 {
		_, branch = u.Indices()
		t = u.Types()[branch]
	}
	rs, ok := t.(*avro.RecordSchema)
	if !ok {
		return nil, nil, fmt.Errorf("a record rule needs a record field, the schema says %s", t)
	}
	before := len(c.errs)
	fields := c.record(f.Fields, rs, schemaFile, path+".", f.Origin)
	if len(c.errs) > before {
		return nil, nil, errReported
	}
	var columns []int
	for _, sub := range fields {
		for _, col := range sub.columns {
			columns = appendUnique(columns, col)
		}
	}
	return func(dst []byte, row []cdc.Value) ([]byte, error) {
		if branch >= 0 {
			dst = appendLong(dst, int64(branch))
		}
		var err error
		for i := range fields {
			if dst, err = fields[i].write(dst, row); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}, columns, nil
}

// enumEncoder translates a column's codes to the symbols of an Avro enum. Every
// symbol the map names must exist; a code missing from the map is an error at
// the row, never a default symbol.
func enumEncoder(col cdc.Column, codes map[string]string, t avro.Schema) (encodeFunc, error) {
	nullIndex, typIndex := -1, -1
	if u, ok := t.(*avro.UnionSchema); ok && u.Nullable() && len(u.Types()) == 2 {
		nullIndex, typIndex = u.Indices()
	}
	es, index, err := enumSymbols(codes, t)
	if err != nil {
		return nil, err
	}
	if col.Nullable && nullIndex < 0 {
		return nil, fmt.Errorf("column %s is nullable but the field type %s has no null: make it [\"null\", %s] with \"default\": null, or declare the column NOT NULL",
			col.Name, es.FullName(), es.FullName())
	}
	switch col.Kind {
	case cdc.KindBytes, cdc.KindFloat, cdc.KindJSON:
		return nil, fmt.Errorf("column %s (%s) cannot hold enum codes: codes are integers or strings", col.Name, col.DatabaseType)
	}
	return func(dst []byte, v *cdc.Value) ([]byte, error) {
		if v.Kind == cdc.KindNull {
			if nullIndex < 0 {
				return dst, errNull
			}
			return appendLong(dst, int64(nullIndex)), nil
		}
		var buf [24]byte
		code := v.Bytes
		if v.Kind != cdc.KindString {
			code = v.AppendText(buf[:0])
		}
		i, ok := index[string(code)]
		if !ok {
			return dst, &unmappedError{code: string(code), enum: es, mapped: true}
		}
		if typIndex >= 0 {
			dst = appendLong(dst, int64(typIndex))
		}
		return appendLong(dst, int64(i)), nil
	}, nil
}

// enumSymbols finds the enum of an enum rule's field (t, or its non-null
// branch), and each code's symbol index in it: every symbol the map names
// must be the enum's.
func enumSymbols(codes map[string]string, t avro.Schema) (*avro.EnumSchema, map[string]int, error) {
	inner := t
	if u, ok := t.(*avro.UnionSchema); ok && u.Nullable() && len(u.Types()) == 2 {
		_, typIndex := u.Indices()
		inner = u.Types()[typIndex]
	}
	es, ok := inner.(*avro.EnumSchema)
	if !ok {
		return nil, nil, fmt.Errorf("an enum rule needs an Avro enum field, the schema says %s", t)
	}
	index := make(map[string]int, len(codes))
	var unknown []string
	for code, symbol := range codes {
		i := slices.Index(es.Symbols(), symbol)
		if i < 0 {
			unknown = append(unknown, symbol)
			continue
		}
		index[code] = i
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, nil, fmt.Errorf("symbols %s are not in enum %s (symbols: %s)", strings.Join(unknown, ", "), es.FullName(), strings.Join(es.Symbols(), ", "))
	}
	return es, index, nil
}

// hashEncoder writes HMAC-SHA256(salt, text of the value): hex in a string
// field, the 32 bytes in a bytes field. NULL stays NULL.
func hashEncoder(col cdc.Column, t avro.Schema, mac hash.Hash) (encodeFunc, error) {
	nullIndex, typIndex, inner := -1, -1, t
	if u, ok := t.(*avro.UnionSchema); ok && u.Nullable() && len(u.Types()) == 2 {
		nullIndex, typIndex = u.Indices()
		inner = u.Types()[typIndex]
	}
	asHex := inner.Type() == avro.String && logicalType(inner) == ""
	if !asHex && !(inner.Type() == avro.Bytes && logicalType(inner) == "") {
		return nil, fmt.Errorf("a hashed field is a string (hex) or bytes, the schema says %s", t)
	}
	if col.Nullable && nullIndex < 0 {
		return nil, fmt.Errorf("column %s is nullable but the field type %s has no null: make it [\"null\", %s] with \"default\": null",
			col.Name, t, t)
	}
	return func(dst []byte, v *cdc.Value) ([]byte, error) {
		if v.Kind == cdc.KindNull {
			if nullIndex < 0 {
				return dst, errNull
			}
			return appendLong(dst, int64(nullIndex)), nil
		}
		if typIndex >= 0 {
			dst = appendLong(dst, int64(typIndex))
		}
		var text [64]byte
		var sum [sha256.Size]byte
		mac.Reset()
		if v.Kind == cdc.KindBytes || v.Kind == cdc.KindString {
			mac.Write(v.Bytes)
		} else {
			mac.Write(v.AppendText(text[:0]))
		}
		digest := mac.Sum(sum[:0])
		if !asHex {
			return appendBytes(dst, digest), nil
		}
		var hexed [2 * sha256.Size]byte
		hex.Encode(hexed[:], digest)
		return appendBytes(dst, hexed[:]), nil
	}, nil
}
