package cdc

import (
	"bytes"
	"math"
	"strconv"
	"time"
)

// Kind is the family of a column's values once decoded from the database's own
// representation. Sources decode exactly: nothing is rounded or reformatted.
type Kind uint8

const (
	KindNull Kind = iota
	// KindBool: Int is 0 or 1.
	KindBool
	// KindInt: Int holds the value.
	KindInt
	// KindUint: an unsigned integer; Int holds its bits (read it with Uint).
	KindUint
	// KindFloat: Float holds the value (a 32-bit column's value is exact in it).
	KindFloat
	// KindDecimal: Bytes holds the exact decimal text, e.g. "-12.3400", "NaN".
	KindDecimal
	// KindString: Bytes holds UTF-8 text.
	KindString
	// KindBytes: Bytes holds raw bytes.
	KindBytes
	// KindDate: Int holds days since 1970-01-01.
	KindDate
	// KindTime: Int holds microseconds since midnight.
	KindTime
	// KindTimestamp: Int holds microseconds since 1970-01-01T00:00:00Z. Columns
	// without a time zone hold their wall-clock reading as if it were UTC.
	KindTimestamp
	// KindJSON: Bytes holds JSON text.
	KindJSON
	// KindDuration: Int holds signed microseconds, possibly beyond a day (MySQL
	// TIME, -838:59:59 to 838:59:59): not a time of day.
	KindDuration
	// KindUnchanged: the database did not send the value because the change
	// left it as it was (PostgreSQL's unchanged TOASTed values, a column an
	// update did not set under MySQL's binlog_row_image MINIMAL or NOBLOB), or,
	// in an insert, because the statement did not set it (MINIMAL). It appears
	// only in Change.After, and sources fill it in before a change leaves them.
	KindUnchanged
	// KindInvalid: the database holds a value that has no exact form in its
	// column's kind (a timestamp past the microseconds an int64 counts, bytes
	// that are not text in the column's character set). Bytes holds the
	// database's own rendering, for messages. Writing it into any field is a
	// value error (the entity's on_error), never a guess.
	KindInvalid
	// KindUnknown: the log did not carry the old value (PostgreSQL's REPLICA
	// IDENTITY DEFAULT logs only the key of the old row, MySQL's MINIMAL only
	// its primary key). It appears only in Change.Before, never in the
	// columns of Table.Identity; and in the new row of an insert into an
	// outbox table (sources.Settings.EventTables) whose row was deleted
	// before the values its log lacked could be read back.
	KindUnknown
)

var kindNames = [...]string{"null", "bool", "int", "uint", "float", "decimal", "string",
	"bytes", "date", "time", "timestamp", "json", "duration", "unchanged", "invalid", "unknown"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Special timestamp and date values: PostgreSQL's 'infinity' and '-infinity'.
const (
	InfinityMicros    = math.MaxInt64
	NegInfinityMicros = math.MinInt64
	InfinityDays      = math.MaxInt32
	NegInfinityDays   = math.MinInt32
)

// Value is one column value. It is a small struct rather than an interface so that
// rows are one allocation and reading a value needs no type switch.
type Value struct {
	Kind  Kind
	Int   int64
	Float float64
	Bytes []byte
}

func Null() Value               { return Value{Kind: KindNull} }
func Bool(b bool) Value         { return Value{Kind: KindBool, Int: b2i(b)} }
func Int(i int64) Value         { return Value{Kind: KindInt, Int: i} }
func Uint(u uint64) Value       { return Value{Kind: KindUint, Int: int64(u)} }
func Float(f float64) Value     { return Value{Kind: KindFloat, Float: f} }
func Decimal(text []byte) Value { return Value{Kind: KindDecimal, Bytes: text} }
func String(s []byte) Value     { return Value{Kind: KindString, Bytes: s} }
func Bytes(b []byte) Value      { return Value{Kind: KindBytes, Bytes: b} }
func JSON(text []byte) Value    { return Value{Kind: KindJSON, Bytes: text} }
func Date(days int64) Value     { return Value{Kind: KindDate, Int: days} }
func TimeOfDay(us int64) Value  { return Value{Kind: KindTime, Int: us} }
func Duration(us int64) Value   { return Value{Kind: KindDuration, Int: us} }
func Timestamp(us int64) Value  { return Value{Kind: KindTimestamp, Int: us} }
func Unchanged() Value          { return Value{Kind: KindUnchanged} }
func Invalid(text []byte) Value { return Value{Kind: KindInvalid, Bytes: text} }
func Unknown() Value            { return Value{Kind: KindUnknown} }
func (v Value) IsNull() bool    { return v.Kind == KindNull }
func (v Value) Uint() uint64    { return uint64(v.Int) }
func (v Value) Bool() bool      { return v.Int != 0 }
func (v Value) Time() time.Time { return time.UnixMicro(v.Int).UTC() }
func (v Value) Equal(w Value) bool {
	return v.Kind == w.Kind && v.Int == w.Int && sameFloat(v.Float, w.Float) && bytes.Equal(v.Bytes, w.Bytes)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// sameFloat compares bits, not numbers: NaN equals itself (an update that leaves
// a NaN alone changed nothing) and -0 differs from 0, so that equal values
// always encode alike.
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b)
}

// String renders the value for messages and for text fields: numbers in their
// exact decimal form, times in ISO 8601 (UTC), bytes in hexadecimal.
func (v Value) String() string {
	return string(v.AppendText(nil))
}

// AppendText appends the text form described at String.
func (v Value) AppendText(dst []byte) []byte {
	switch v.Kind {
	case KindNull:
		return append(dst, "null"...)
	case KindBool:
		return strconv.AppendBool(dst, v.Bool())
	case KindInt:
		return strconv.AppendInt(dst, v.Int, 10)
	case KindUint:
		return strconv.AppendUint(dst, v.Uint(), 10)
	case KindFloat:
		return strconv.AppendFloat(dst, v.Float, 'g', -1, 64)
	case KindDecimal, KindString, KindJSON:
		return append(dst, v.Bytes...)
	case KindBytes:
		const hex = "0123456789abcdef"
		for _, c := range v.Bytes {
			dst = append(dst, hex[c>>4], hex[c&15])
		}
		return dst
	case KindDate:
		switch v.Int {
		case InfinityDays:
			return append(dst, "infinity"...)
		case NegInfinityDays:
			return append(dst, "-infinity"...)
		}
		return time.Unix(v.Int*86400, 0).UTC().AppendFormat(dst, "2006-01-02")
	case KindTime, KindDuration:
		us := v.Int
		if us < 0 {
			dst = append(dst, '-')
			us = -us
		}
		dst = appendPadded(dst, us/3_600_000_000, 2)
		dst = append(dst, ':')
		dst = appendPadded(dst, us/60_000_000%60, 2)
		dst = append(dst, ':')
		dst = appendPadded(dst, us/1_000_000%60, 2)
		if frac := us % 1_000_000; frac != 0 {
			dst = append(dst, '.')
			dst = appendPadded(dst, frac, 6)
		}
		return dst
	case KindTimestamp:
		switch v.Int {
		case InfinityMicros:
			return append(dst, "infinity"...)
		case NegInfinityMicros:
			return append(dst, "-infinity"...)
		}
		return v.Time().AppendFormat(dst, "2006-01-02T15:04:05.999999Z07:00")
	case KindUnchanged:
		return append(dst, "(unchanged)"...)
	case KindUnknown:
		return append(dst, "(unknown)"...)
	case KindInvalid:
		return append(dst, v.Bytes...)
	}
	return append(dst, '?')
}

func appendPadded(dst []byte, n int64, width int) []byte {
	var buf [20]byte
	s := strconv.AppendInt(buf[:0], n, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}
