package mapping

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc"
)

// encodeFunc appends the Avro encoding of one column value to dst. It fails only
// for a value its field cannot hold, which compile-time checks make rare (NaN in a
// decimal, a NULL the catalog said could not occur).
type encodeFunc func(dst []byte, v *cdc.Value) ([]byte, error)

// errNull is returned for a NULL in a field whose schema has no null branch.
var errNull = errors.New("NULL in a field that is not nullable")

// invalidValue says why a column's cdc.KindInvalid value has no exact form.
func invalidValue(col cdc.Column) error {
	switch col.Kind {
	case cdc.KindTimestamp:
		return fmt.Errorf("the %s value is outside what microseconds since 1970 in a long can count (years 290308 BC to 294246 AD): no Avro timestamp holds it", col.DatabaseType)
	case cdc.KindString:
		return fmt.Errorf("the %s value holds bytes that are not text in the column's character set, so it has no exact UTF-8 form: fix the row, or change the column's character set to the one its bytes are in", col.DatabaseType)
	}
	return fmt.Errorf("the %s value has no exact form in Avro", col.DatabaseType)
}

// encoderFor checks that the Avro field type can hold every value of the column and
// returns the encoder. Its error says what the schema would need instead.
func encoderFor(col cdc.Column, t avro.Schema) (encodeFunc, error) {
	if u, ok := t.(*avro.UnionSchema); ok {
		return nullableEncoder(col, u)
	}
	if col.Nullable {
		return nil, fmt.Errorf("column %s is nullable but the field type %s has no null: make it [\"null\", %s] with \"default\": null, or declare the column NOT NULL",
			col.Name, t, t)
	}
	enc, err := valueEncoder(col, t)
	if err != nil {
		return nil, err
	}
	return func(dst []byte, v *cdc.Value) ([]byte, error) {
		if v.Kind == cdc.KindNull {
			return dst, errNull
		}
		return enc(dst, v)
	}, nil
}

func nullableEncoder(col cdc.Column, u *avro.UnionSchema) (encodeFunc, error) {
	if !u.Nullable() || len(u.Types()) != 2 {
		return nil, fmt.Errorf("union %s is not supported: use [\"null\", T] for a nullable field, or T", u)
	}
	nullIndex, typIndex := u.Indices()
	enc, err := valueEncoder(col, u.Types()[typIndex])
	if err != nil {
		return nil, err
	}
	return func(dst []byte, v *cdc.Value) ([]byte, error) {
		if v.Kind == cdc.KindNull {
			return appendLong(dst, int64(nullIndex)), nil
		}
		return enc(appendLong(dst, int64(typIndex)), v)
	}, nil
}

// valueEncoder covers the non-null branch. The pairs it accepts are those where
// every value of the column has exactly one representation in the field.
func valueEncoder(col cdc.Column, t avro.Schema) (encodeFunc, error) {
	logical := logicalType(t)
	if t.Type() == avro.String && logical != avro.UUID {
		return textEncoder(col)
	}
	refuse := func() (encodeFunc, error) {
		return nil, fmt.Errorf("column %s (%s) cannot be held by %s: %s", col.Name, col.DatabaseType, t, suggestion(col))
	}
	switch col.Kind {
	case cdc.KindBool:
		if t.Type() == avro.Boolean {
			return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendBool(dst, v.Bool()), nil }, nil
		}
	case cdc.KindInt, cdc.KindUint:
		return integerEncoder(col, t, refuse)
	case cdc.KindFloat:
		switch {
		case t.Type() == avro.Double:
			return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendDouble(dst, v.Float), nil }, nil
		case t.Type() == avro.Float && col.Bits == 32:
			return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendFloat(dst, float32(v.Float)), nil }, nil
		}
	case cdc.KindDecimal:
		if logical == avro.Decimal {
			p, s := decimalOf(t)
			if col.Precision > 0 && col.Scale == s && col.Precision <= p {
				return decimalEncoder(t, p, s), nil
			}
		}
	case cdc.KindString:
		if logical == avro.UUID && strings.HasPrefix(col.DatabaseType, "uuid") {
			return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendBytes(dst, v.Bytes), nil }, nil
		}
		if es, ok := t.(*avro.EnumSchema); ok {
			// Values are the symbols themselves (a MySQL ENUM, a status text);
			// one that is not a symbol is an unmapped code.
			symbols := es.Symbols()
			return func(dst []byte, v *cdc.Value) ([]byte, error) {
				for i, s := range symbols {
					if s == string(v.Bytes) {
						return appendLong(dst, int64(i)), nil
					}
				}
				return dst, &unmappedError{code: string(v.Bytes), enum: es}
			}, nil
		}
	case cdc.KindBytes:
		if t.Type() == avro.Bytes && logical == "" {
			return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendBytes(dst, v.Bytes), nil }, nil
		}
	case cdc.KindDate:
		if t.Type() == avro.Int && logical == avro.Date {
			return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendLong(dst, v.Int), nil }, nil
		}
	case cdc.KindTime:
		switch {
		case t.Type() == avro.Long && logical == avro.TimeMicros:
			return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendLong(dst, v.Int), nil }, nil
		case t.Type() == avro.Int && logical == avro.TimeMillis && col.FractionDigits <= 3:
			return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendLong(dst, v.Int/1000), nil }, nil
		}
	case cdc.KindDuration:
		// time-micros is a time of day; a duration may be negative or past a day.
		if t.Type() == avro.Long && logical == "" {
			return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendLong(dst, v.Int), nil }, nil
		}
	case cdc.KindTimestamp:
		return timestampEncoder(col, t, logical, refuse)
	}
	return refuse()
}

func integerEncoder(col cdc.Column, t avro.Schema, refuse func() (encodeFunc, error)) (encodeFunc, error) {
	// The widest value of the column decides: a signed 32-bit column fits "int", an
	// unsigned one does not; an unsigned 64-bit column fits only a decimal.
	bits := col.Bits
	if col.Kind == cdc.KindUint {
		bits++
	}
	switch {
	case t.Type() == avro.Int && logicalType(t) == "" && bits <= 32:
		return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendLong(dst, v.Int), nil }, nil
	case t.Type() == avro.Long && logicalType(t) == "" && bits <= 64:
		return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendLong(dst, v.Int), nil }, nil
	case t.Type() == avro.Double && logicalType(t) == "" && bits <= 53:
		return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendDouble(dst, float64(v.Int)), nil }, nil
	case logicalType(t) == avro.Decimal:
		p, s := decimalOf(t)
		if p-s >= maxDigits(bits) {
			dec := decimalEncoder(t, p, s)
			return func(dst []byte, v *cdc.Value) ([]byte, error) {
				var buf [24]byte
				text := cdc.Value{Kind: cdc.KindDecimal, Bytes: v.AppendText(buf[:0])}
				return dec(dst, &text)
			}, nil
		}
	}
	return refuse()
}

// maxDigits is the number of decimal digits of the largest magnitude a two's
// complement integer of the given width (sign bit included) can hold.
func maxDigits(bits int) int {
	return len(new(big.Int).Lsh(big.NewInt(1), uint(bits-1)).String())
}

func timestampEncoder(col cdc.Column, t avro.Schema, logical avro.LogicalType, refuse func() (encodeFunc, error)) (encodeFunc, error) {
	if t.Type() != avro.Long {
		return refuse()
	}
	micros := func(dst []byte, v *cdc.Value) ([]byte, error) { return appendLong(dst, v.Int), nil }
	millis := func(dst []byte, v *cdc.Value) ([]byte, error) {
		if v.Int == cdc.InfinityMicros || v.Int == cdc.NegInfinityMicros {
			return appendLong(dst, v.Int), nil
		}
		return appendLong(dst, v.Int/1000), nil
	}
	switch logical {
	case avro.TimestampMicros:
		return micros, nil
	case avro.TimestampMillis:
		if col.FractionDigits <= 3 {
			return millis, nil
		}
	case avro.LocalTimestampMicros:
		if !col.WithTimeZone {
			return micros, nil
		}
	case avro.LocalTimestampMillis:
		if !col.WithTimeZone && col.FractionDigits <= 3 {
			return millis, nil
		}
	}
	return refuse()
}

func decimalEncoder(t avro.Schema, precision, scale int) encodeFunc {
	fixed, isFixed := t.(*avro.FixedSchema)
	return func(dst []byte, v *cdc.Value) ([]byte, error) {
		d, err := rescaleDecimal(v.Bytes, scale, precision)
		if err != nil {
			return dst, err
		}
		var buf [8]byte
		b := d.twosComplement(&buf)
		if !isFixed {
			return appendBytes(dst, b), nil
		}
		out, ok := appendFixedTwosComplement(dst, b, fixed.Size())
		if !ok {
			return dst, fmt.Errorf("%s does not fit fixed(%d)", v.Bytes, fixed.Size())
		}
		return out, nil
	}
}

// textEncoder renders any column as a string: text as is, everything else in the
// exact text form of cdc.Value.AppendText. Raw bytes are refused: they have no
// text form that every consumer would read back the same way.
func textEncoder(col cdc.Column) (encodeFunc, error) {
	switch col.Kind {
	case cdc.KindString, cdc.KindJSON, cdc.KindDecimal:
		return func(dst []byte, v *cdc.Value) ([]byte, error) { return appendBytes(dst, v.Bytes), nil }, nil
	case cdc.KindBytes:
		return nil, fmt.Errorf("column %s (%s) holds raw bytes: map it to \"bytes\", not \"string\"", col.Name, col.DatabaseType)
	}
	return func(dst []byte, v *cdc.Value) ([]byte, error) {
		var buf [40]byte
		return appendBytes(dst, v.AppendText(buf[:0])), nil
	}, nil
}

// suggestion names the Avro types that would hold a column.
func suggestion(col cdc.Column) string {
	switch col.Kind {
	case cdc.KindBool:
		return `use "boolean"`
	case cdc.KindInt, cdc.KindUint:
		bits := col.Bits
		if col.Kind == cdc.KindUint {
			bits++
		}
		switch {
		case bits <= 32:
			return `use "int" or "long"`
		case bits <= 64:
			return `use "long"`
		}
		return fmt.Sprintf(`use {"type":"bytes","logicalType":"decimal","precision":%d,"scale":0} or "string"`, maxDigits(bits))
	case cdc.KindFloat:
		if col.Bits == 32 {
			return `use "float" or "double"`
		}
		return `use "double"`
	case cdc.KindDecimal:
		if col.Precision == 0 {
			return "the column has no declared precision and scale, so no decimal type holds every value: use \"string\", or declare the column numeric(p,s)"
		}
		return fmt.Sprintf(`use {"type":"bytes","logicalType":"decimal","precision":%d,"scale":%d} (same scale, precision at least %d) or "string"`,
			col.Precision, col.Scale, col.Precision)
	case cdc.KindString:
		if strings.HasPrefix(col.DatabaseType, "uuid") {
			return `use {"type":"string","logicalType":"uuid"} or "string"`
		}
		return `use "string"`
	case cdc.KindJSON:
		return `use "string" (JSON text)`
	case cdc.KindBytes:
		return `use "bytes"`
	case cdc.KindDate:
		return `use {"type":"int","logicalType":"date"} or "string"`
	case cdc.KindTime:
		if col.FractionDigits <= 3 {
			return `use {"type":"int","logicalType":"time-millis"} or {"type":"long","logicalType":"time-micros"}`
		}
		return `use {"type":"long","logicalType":"time-micros"}`
	case cdc.KindDuration:
		return `use "long" (microseconds, may be negative or past 24 hours; time-micros cannot hold them) or "string"`
	case cdc.KindTimestamp:
		if col.WithTimeZone {
			return `use {"type":"long","logicalType":"timestamp-micros"}`
		}
		return `use {"type":"long","logicalType":"timestamp-micros"} (the wall clock read as UTC) or "local-timestamp-micros"`
	}
	return `use "string"`
}

func logicalType(t avro.Schema) avro.LogicalType {
	if lt, ok := t.(avro.LogicalTypeSchema); ok && lt.Logical() != nil {
		return lt.Logical().Type()
	}
	return ""
}

func decimalOf(t avro.Schema) (precision, scale int) {
	d := t.(avro.LogicalTypeSchema).Logical().(*avro.DecimalLogicalSchema)
	return d.Precision(), d.Scale()
}
