package mapping

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// appendJSONPayload appends the Avro encoding, as schema, of a JSON document
// written by an application: plain JSON, as a consumer of the schema would
// read it (not Avro's JSON encoding, whose unions are wrapped). Nothing is
// guessed or rounded: a field the schema lacks, a missing field without a
// default, a number out of its type's range, a decimal with more digits than
// its scale, a symbol outside its enum, are errors that name the field.
//
// Beyond JSON's own types it reads: timestamps and times as numbers in the
// logical type's unit, or RFC 3339 text; dates as days, or YYYY-MM-DD; decimals
// as numbers or decimal text; bytes and fixed as base64 text; uuids as text.
func appendJSONPayload(dst []byte, schema avro.Schema, doc []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return dst, fmt.Errorf("the payload is not JSON: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return dst, errors.New("the payload holds more than one JSON value")
	}
	return appendJSON(dst, schema, v, "payload")
}

// payloadError is a JSON value its schema does not describe, at path.
type payloadError struct {
	path string
	msg  string
}

func (e *payloadError) Error() string { return e.path + ": " + e.msg }

func fail(path, format string, args ...any) error {
	return &payloadError{path: path, msg: fmt.Sprintf(format, args...)}
}

func appendJSON(dst []byte, s avro.Schema, v any, path string) ([]byte, error) {
	switch s := s.(type) {
	case *avro.RefSchema:
		return appendJSON(dst, s.Schema(), v, path)
	case *avro.NullSchema:
		if v != nil {
			return dst, fail(path, "want null, got %s", jsonType(v))
		}
		return dst, nil
	case *avro.UnionSchema:
		return appendUnion(dst, s, v, path)
	case *avro.RecordSchema:
		return appendRecord(dst, s, v, path)
	case *avro.EnumSchema:
		text, ok := v.(string)
		if !ok {
			return dst, fail(path, "want one of the symbols %s, got %s", strings.Join(s.Symbols(), ", "), jsonType(v))
		}
		i := slices.Index(s.Symbols(), text)
		if i < 0 {
			return dst, fail(path, "%q is not a symbol of enum %s (%s)", text, s.FullName(), strings.Join(s.Symbols(), ", "))
		}
		return appendLong(dst, int64(i)), nil
	case *avro.ArraySchema:
		items, ok := v.([]any)
		if !ok {
			return dst, fail(path, "want an array, got %s", jsonType(v))
		}
		if len(items) > 0 {
			dst = appendLong(dst, int64(len(items)))
			for i, item := range items {
				var err error
				if dst, err = appendJSON(dst, s.Items(), item, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return dst, err
				}
			}
		}
		return appendLong(dst, 0), nil
	case *avro.MapSchema:
		fields, ok := v.(map[string]any)
		if !ok {
			return dst, fail(path, "want an object, got %s", jsonType(v))
		}
		if len(fields) > 0 {
			dst = appendLong(dst, int64(len(fields)))
			keys := make([]string, 0, len(fields))
			for k := range fields {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				var err error
				dst = appendBytes(dst, []byte(k))
				if dst, err = appendJSON(dst, s.Values(), fields[k], path+"."+k); err != nil {
					return dst, err
				}
			}
		}
		return appendLong(dst, 0), nil
	case *avro.FixedSchema:
		if l, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			return appendDecimal(dst, v, l, s.Size(), path)
		}
		b, err := base64Value(v, path)
		if err != nil {
			return dst, err
		}
		if len(b) != s.Size() {
			return dst, fail(path, "want %d bytes (fixed %s), got %d", s.Size(), s.FullName(), len(b))
		}
		return append(dst, b...), nil
	case *avro.PrimitiveSchema:
		return appendPrimitive(dst, s, v, path)
	}
	return dst, fail(path, "schema type %s is not supported in payloads", s.Type())
}

func appendUnion(dst []byte, s *avro.UnionSchema, v any, path string) ([]byte, error) {
	var tried []string
	for i, branch := range s.Types() {
		if branch.Type() == avro.Null {
			if v == nil {
				return appendLong(dst, int64(i)), nil
			}
			continue
		}
		if v == nil {
			continue
		}
		out, err := appendJSON(appendLong(dst, int64(i)), branch, v, path)
		if err == nil {
			return out, nil
		}
		tried = append(tried, err.Error())
	}
	if v == nil {
		return dst, fail(path, "is null, and its union %s has no null", s)
	}
	return dst, fail(path, "fits no branch of its union: %s", strings.Join(tried, "; "))
}

func appendRecord(dst []byte, s *avro.RecordSchema, v any, path string) ([]byte, error) {
	fields, ok := v.(map[string]any)
	if !ok {
		return dst, fail(path, "want an object (record %s), got %s", s.FullName(), jsonType(v))
	}
	for name := range fields {
		if schemaField(s, name) == nil {
			return dst, fail(path+"."+name, "is not a field of %s (has: %s): the schema is the contract, so a field it lacks is refused, not dropped", s.FullName(), strings.Join(fieldNames(s), ", "))
		}
	}
	for _, f := range s.Fields() {
		value, present := fields[f.Name()]
		var err error
		switch {
		case present:
			dst, err = appendJSON(dst, f.Type(), value, path+"."+f.Name())
		case f.HasDefault():
			var encoded []byte
			if encoded, err = avro.Marshal(f.Type(), f.Default()); err == nil {
				dst = append(dst, encoded...)
			}
		default:
			err = fail(path+"."+f.Name(), "is missing, and the schema gives it no default")
		}
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func appendPrimitive(dst []byte, s *avro.PrimitiveSchema, v any, path string) ([]byte, error) {
	var logical avro.LogicalType
	if l := s.Logical(); l != nil {
		logical = l.Type()
	}
	switch s.Type() {
	case avro.Null:
		if v != nil {
			return dst, fail(path, "want null, got %s", jsonType(v))
		}
		return dst, nil
	case avro.Boolean:
		b, ok := v.(bool)
		if !ok {
			return dst, fail(path, "want true or false, got %s", jsonType(v))
		}
		return appendBool(dst, b), nil
	case avro.Int, avro.Long:
		n, err := integerValue(v, logical, path)
		if err != nil {
			return dst, err
		}
		if s.Type() == avro.Int && (n < math.MinInt32 || n > math.MaxInt32) {
			return dst, fail(path, "%d is out of the range of an int (32 bits)", n)
		}
		return appendLong(dst, n), nil
	case avro.Float, avro.Double:
		num, ok := v.(json.Number)
		if !ok {
			return dst, fail(path, "want a number, got %s", jsonType(v))
		}
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return dst, fail(path, "%s is out of the range of a double", num)
		}
		if s.Type() == avro.Float {
			if math.Abs(f) > math.MaxFloat32 {
				return dst, fail(path, "%s is out of the range of a float (32 bits)", num)
			}
			return appendFloat(dst, float32(f)), nil
		}
		return appendDouble(dst, f), nil
	case avro.String:
		text, ok := v.(string)
		if !ok {
			return dst, fail(path, "want text, got %s", jsonType(v))
		}
		if logical == avro.UUID && !uuidText.MatchString(text) {
			return dst, fail(path, "%q is not a UUID", text)
		}
		return appendBytes(dst, []byte(text)), nil
	case avro.Bytes:
		if l, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			return appendDecimal(dst, v, l, 0, path)
		}
		b, err := base64Value(v, path)
		if err != nil {
			return dst, err
		}
		return appendBytes(dst, b), nil
	}
	return dst, fail(path, "schema type %s is not supported in payloads", s.Type())
}

var uuidText = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// integerValue reads an int or long: a JSON integer, or for the temporal
// logical types their text form.
func integerValue(v any, logical avro.LogicalType, path string) (int64, error) {
	switch v := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, fail(path, "%s is not an integer of 64 bits", v)
		}
		return n, nil
	case string:
		switch logical {
		case avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return 0, fail(path, "%q is not an RFC 3339 timestamp (2024-05-01T12:00:00Z)", v)
			}
			if logical == avro.TimestampMillis || logical == avro.LocalTimestampMillis {
				if t.Nanosecond()%int(time.Millisecond) != 0 {
					return 0, fail(path, "%q has digits past the milliseconds %s holds", v, logical)
				}
				return t.UnixMilli(), nil
			}
			if t.Nanosecond()%int(time.Microsecond) != 0 {
				return 0, fail(path, "%q has digits past the microseconds %s holds", v, logical)
			}
			return t.UnixMicro(), nil
		case avro.Date:
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				return 0, fail(path, "%q is not a date (2024-05-01)", v)
			}
			return t.Unix() / 86400, nil
		}
	}
	return 0, fail(path, "want an integer, got %s", jsonType(v))
}

// appendDecimal writes a decimal, exactly at the schema's scale: as bytes, or
// as a fixed of size bytes (size 0: bytes).
func appendDecimal(dst []byte, v any, l *avro.DecimalLogicalSchema, size int, path string) ([]byte, error) {
	var text string
	switch v := v.(type) {
	case json.Number:
		text = string(v)
	case string:
		text = v
	default:
		return dst, fail(path, "want a decimal number, got %s", jsonType(v))
	}
	if strings.ContainsAny(text, "eE") {
		return dst, fail(path, "%s: write decimals without an exponent", text)
	}
	d, err := rescaleDecimal([]byte(text), l.Scale(), l.Precision())
	if err != nil {
		return dst, fail(path, "%v", err)
	}
	var buf [8]byte
	b := d.twosComplement(&buf)
	if size == 0 {
		return appendBytes(dst, b), nil
	}
	if len(b) > size {
		return dst, fail(path, "%s does not fit %d bytes", text, size)
	}
	pad := byte(0)
	if d.big != nil && d.big.Sign() < 0 || d.big == nil && d.small < 0 {
		pad = 0xff
	}
	for range size - len(b) {
		dst = append(dst, pad)
	}
	return append(dst, b...), nil
}

func base64Value(v any, path string) ([]byte, error) {
	text, ok := v.(string)
	if !ok {
		return nil, fail(path, "want base64 text, got %s", jsonType(v))
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fail(path, "is not base64 text: %v", err)
	}
	return b, nil
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + string(v)
	case string:
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("the text %q", v)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
