package mysql

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// decoder turns one column's values into core values: from the binlog's row
// images (binary, in rows.go; go-mysql's decoded values for tables with binary
// JSON) and from the snapshot (the text protocol). Text, however it arrives,
// meets in the same parsers, so a row reads the same whichever way it comes.
type decoder struct {
	t    columnType
	kind cdc.Kind
	zero ZeroDates
	text func([]byte) ([]byte, error) // charset → UTF-8, for character columns
}

func newDecoder(t columnType, c cdc.Column, zero ZeroDates) *decoder {
	return &decoder{t: t, kind: c.Kind, zero: zero, text: charsetDecoders[t.charset]}
}

// errZeroDate is wrapped with the column and the value by the caller.
var errZeroDate = errors.New("zero date")

// errZeroDatetime is the binlog's zero DATETIME or TIMESTAMP.
var errZeroDatetime = fmt.Errorf("%w '0000-00-00 00:00:00'", errZeroDate)

// binlog decodes a value of a row event.
func (d *decoder) binlog(v any, a *memory.Arena) (cdc.Value, error) {
	if v == nil {
		return cdc.Null(), nil
	}
	switch d.kind {
	case cdc.KindInt:
		n, ok := signed(v)
		if !ok {
			break
		}
		return cdc.Int(n), nil
	case cdc.KindUint:
		if n, ok := unsigned(v, d.t); ok {
			return cdc.Uint(n), nil
		}
	case cdc.KindBool:
		if n, ok := signed(v); ok {
			return cdc.Bool(n != 0), nil
		}
	case cdc.KindFloat:
		switch f := v.(type) {
		case float32:
			return cdc.Float(float64(f)), nil
		case float64:
			return cdc.Float(f), nil
		}
	case cdc.KindString:
		switch d.t.base {
		case "enum":
			if n, ok := signed(v); ok {
				return d.enum(n)
			}
		case "set":
			if n, ok := signed(v); ok {
				return d.set(uint64(n))
			}
		}
	}
	switch s := v.(type) {
	case string:
		return d.parse(a.CopyString(s))
	case []byte:
		return d.parse(a.Copy(s))
	case time.Time:
		// DATETIME (read in UTC: its wall-clock reading) and TIMESTAMP from
		// 1970 on; earlier and zero dates arrive as text.
		if d.kind == cdc.KindTimestamp {
			return cdc.Timestamp(s.UnixMicro()), nil
		}
	}
	return cdc.Value{}, fmt.Errorf("unexpected binlog value %T for a %s column", v, d.t.render())
}

// snapshot decodes a value of the text protocol. Integers arrive parsed.
func (d *decoder) snapshot(v *mysql.FieldValue, a *memory.Arena) (cdc.Value, error) {
	switch v.Type {
	case mysql.FieldValueTypeNull:
		return cdc.Null(), nil
	case mysql.FieldValueTypeSigned:
		if d.kind == cdc.KindInt { // not through binlog's any, which allocates for most numbers
			return cdc.Int(v.AsInt64()), nil
		}
		return d.binlog(v.AsInt64(), a)
	case mysql.FieldValueTypeUnsigned:
		if d.kind == cdc.KindInt { // year
			return cdc.Int(int64(v.AsUint64())), nil
		}
		return cdc.Uint(v.AsUint64()), nil
	case mysql.FieldValueTypeFloat:
		f := v.AsFloat64()
		if d.t.base == "float" {
			// Read as a double (the SELECT adds 0e0: MySQL prints a FLOAT with 6
			// digits), which holds the float exactly.
			f = float64(float32(f))
		}
		return cdc.Float(f), nil
	}
	raw := v.AsString() // the driver's buffer, which the next row reuses: copied where a value keeps it
	switch d.kind {
	case cdc.KindBool, cdc.KindUint: // bit(n): big-endian bytes
		n := mysql.BFixedLengthInt(raw)
		if d.kind == cdc.KindBool {
			return cdc.Bool(n != 0), nil
		}
		return cdc.Uint(n), nil
	case cdc.KindString:
		if d.t.readsRaw() {
			return d.parse(a.Copy(raw))
		}
		// The session's character_set_results is utf8mb4: the server converted.
		if !utf8.Valid(raw) {
			return cdc.Value{}, fmt.Errorf("not valid UTF-8: %q", raw)
		}
		return cdc.String(a.Copy(raw)), nil
	case cdc.KindDate, cdc.KindTimestamp, cdc.KindDuration:
		return d.parse(raw) // into a number
	}
	return d.parse(a.Copy(raw))
}

// parse reads the text MySQL prints for decimals, dates, times and strings.
func (d *decoder) parse(b []byte) (cdc.Value, error) {
	switch d.kind {
	case cdc.KindDecimal:
		return cdc.Decimal(b), nil
	case cdc.KindDate:
		days, err := parseDate(b)
		return d.zeroDate(cdc.Date(days), err)
	case cdc.KindTimestamp:
		us, err := parseDatetime(b)
		return d.zeroDate(cdc.Timestamp(us), err)
	case cdc.KindDuration:
		us, err := parseDuration(b)
		return cdc.Duration(us), err
	case cdc.KindString:
		text, err := d.text(b)
		if err != nil {
			// Bytes its character set has no character for: the value exists
			// but has no exact text, in the snapshot as in the binlog.
			return cdc.Invalid([]byte(strconv.Quote(string(b)))), nil
		}
		return cdc.String(text), nil
	case cdc.KindBytes:
		if d.t.base == "binary" && len(b) < d.t.length {
			// BINARY(n) values are padded with zero bytes; the binlog drops them.
			b = append(b, make([]byte, d.t.length-len(b))...)
		}
		return cdc.Bytes(b), nil
	case cdc.KindJSON:
		return cdc.JSON(b), nil
	}
	return cdc.Value{}, fmt.Errorf("unexpected text %q for a %s column", b, d.t.render())
}

func (d *decoder) zeroDate(v cdc.Value, err error) (cdc.Value, error) {
	if errors.Is(err, errZeroDate) && d.zero == ZeroDatesNull {
		return cdc.Null(), nil
	}
	return v, err
}

func (d *decoder) enum(index int64) (cdc.Value, error) {
	switch {
	case index == 0: // the empty string MySQL stores for an invalid value
		return cdc.String([]byte{}), nil
	case index > 0 && int(index) <= len(d.t.elements):
		return cdc.String([]byte(d.t.elements[index-1])), nil
	}
	return cdc.Value{}, fmt.Errorf("enum index %d out of range (%d elements)", index, len(d.t.elements))
}

func (d *decoder) set(mask uint64) (cdc.Value, error) {
	if bits.Len64(mask) > len(d.t.elements) {
		return cdc.Value{}, fmt.Errorf("set bitmask %b names elements past the %d declared", mask, len(d.t.elements))
	}
	var out []byte
	for i, e := range d.t.elements {
		if mask&(1<<i) != 0 {
			if out != nil {
				out = append(out, ',')
			}
			out = append(out, e...)
		}
	}
	if out == nil {
		out = []byte{}
	}
	return cdc.String(out), nil
}

func signed(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}

// unsigned reads an unsigned column's value, also when the binlog decoder read
// its bits as signed (it does when it lacks the signedness metadata).
func unsigned(v any, t columnType) (uint64, bool) {
	switch n := v.(type) {
	case uint8:
		return uint64(n), true
	case uint16:
		return uint64(n), true
	case uint32:
		return uint64(n), true
	case uint64:
		return n, true
	}
	n, ok := signed(v)
	if !ok {
		return 0, false
	}
	width := integerBits[t.base]
	if t.base == "bit" {
		width = 64
	}
	if width < 64 {
		return uint64(n) & (1<<width - 1), true
	}
	return uint64(n), true
}

// parseDate reads YYYY-MM-DD as days since 1970-01-01 (proleptic Gregorian).
func parseDate(b []byte) (int64, error) {
	y, m, d, ok := splitDate(b)
	if !ok || len(b) != 10 {
		return 0, fmt.Errorf("not a date: %q", b)
	}
	return epochDays(y, m, d)
}

// epochDays reads a date as days since 1970-01-01. It refuses zero dates, and
// dates that do not exist (ALLOW_INVALID_DATES lets MySQL store '2021-02-30'),
// which time.Date would silently move to another day.
func epochDays(y, m, d int) (int64, error) {
	if y == 0 || m == 0 || d == 0 {
		return 0, fmt.Errorf("%w '%04d-%02d-%02d'", errZeroDate, y, m, d)
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d || int(t.Month()) != m {
		return 0, fmt.Errorf("'%04d-%02d-%02d' is not a date of the calendar", y, m, d)
	}
	return t.Unix() / 86400, nil
}

// parseDatetime reads YYYY-MM-DD HH:MM:SS[.ffffff] as microseconds since the
// epoch, the wall clock read as UTC (TIMESTAMP columns are read in UTC).
func parseDatetime(b []byte) (int64, error) {
	if len(b) < 19 || b[10] != ' ' {
		return 0, fmt.Errorf("not a datetime: %q", b)
	}
	y, m, d, ok := splitDate(b[:10])
	if !ok {
		return 0, fmt.Errorf("not a datetime: %q", b)
	}
	days, err := epochDays(y, m, d)
	if err != nil {
		return 0, err
	}
	us, err := parseClock(b[11:], false)
	if err != nil || us >= 24*3600_000_000 {
		return 0, fmt.Errorf("not a datetime: %q", b)
	}
	return days*86400_000_000 + us, nil
}

// parseDuration reads MySQL's TIME, [-]H+:MM:SS[.ffffff], as signed microseconds.
func parseDuration(b []byte) (int64, error) {
	negative := len(b) > 0 && b[0] == '-'
	if negative {
		b = b[1:]
	}
	us, err := parseClock(b, true)
	if err != nil {
		return 0, err
	}
	if negative {
		us = -us
	}
	return us, nil
}

// parseClock reads H+:MM:SS[.f{1,6}] (HH: exactly two hour digits unless
// longHours) without allocating: every temporal value of every row comes here.
func parseClock(b []byte, longHours bool) (int64, error) {
	hms, frac := b, []byte(nil)
	if dot := bytes.IndexByte(b, '.'); dot >= 0 {
		hms, frac = b[:dot], b[dot+1:]
	}
	colon := bytes.IndexByte(hms, ':')
	if colon < 1 || len(hms) != colon+6 || hms[colon+3] != ':' || (!longHours && colon != 2) || len(frac) > 6 {
		return 0, fmt.Errorf("not a time: %q", b)
	}
	h, ok1 := digits(hms[:colon])
	m, ok2 := digits(hms[colon+1 : colon+3])
	sec, ok3 := digits(hms[colon+4:])
	us, ok4 := digits(frac)
	if !ok1 || !ok2 || !ok3 || (!ok4 && len(frac) > 0) || m > 59 || sec > 59 {
		return 0, fmt.Errorf("not a time: %q", b)
	}
	for range 6 - len(frac) {
		us *= 10
	}
	return ((h*60+m)*60+sec)*1_000_000 + us, nil
}

func splitDate(b []byte) (y, m, d int, ok bool) {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return 0, 0, 0, false
	}
	y64, ok1 := digits(b[:4])
	m64, ok2 := digits(b[5:7])
	d64, ok3 := digits(b[8:])
	return int(y64), int(m64), int(d64), ok1 && ok2 && ok3 && m64 <= 12 && d64 <= 31
}

// digits reads up to 9 decimal digits; an empty or non-digit input is not ok.
func digits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// charsetDecoders convert a character set's bytes to UTF-8, keyed by MySQL's
// charset name. A charset missing here is refused when the table is described.
var charsetDecoders = map[string]func([]byte) ([]byte, error){
	"utf8mb4": validUTF8,
	"utf8mb3": validUTF8,
	"utf8":    validUTF8,
	"ascii":   asciiOnly,
	"latin1":  latin1ToUTF8,
}

func asciiOnly(b []byte) ([]byte, error) {
	if !isASCII(b) {
		return nil, fmt.Errorf("not ASCII: %q", b)
	}
	return b, nil
}

func validUTF8(b []byte) ([]byte, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("not valid UTF-8: %q", b)
	}
	return b, nil
}

// latin1High maps bytes 0x80-0x9F of MySQL's latin1, which is Windows-1252 with
// the five bytes cp1252 leaves undefined mapped to the C1 controls.
var latin1High = [32]rune{
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
}

func latin1ToUTF8(b []byte) ([]byte, error) {
	if isASCII(b) {
		return b, nil
	}
	out := make([]byte, 0, len(b)+len(b)/2)
	for _, c := range b {
		switch {
		case c < 0x80:
			out = append(out, c)
		case c < 0xA0:
			out = utf8.AppendRune(out, latin1High[c-0x80])
		default:
			out = utf8.AppendRune(out, rune(c))
		}
	}
	return out, nil
}

// isASCII reads eight bytes a step: most latin1 text is ASCII, and then is
// UTF-8 as it is.
func isASCII(b []byte) bool {
	for ; len(b) >= 8; b = b[8:] {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// zeroDateHint tells what to do about a zero date.
func zeroDateHint(err error) string {
	if !errors.Is(err, errZeroDate) {
		return ""
	}
	return ": no Avro date or timestamp can hold MySQL's zero date; set source.mysql.zero_dates: null to send it as NULL (the field must then be nullable), or fix the row"
}
