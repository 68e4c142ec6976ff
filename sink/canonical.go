package sink

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/pkg/crc64"
)

// fingerprint is the CRC-64-AVRO fingerprint of the schema's Parsing Canonical
// Form, little-endian, as single-object encoding wants it. The canonical form is
// the specification's ("Transforming into Parsing Canonical Form"): it keeps only
// name, type, fields, symbols, items, values and size, so logicalType and doc do
// not count. Java's SchemaNormalization computes it this way; hamba's own
// String() keeps logicalType and would give readers another fingerprint.
func fingerprint(s avro.Schema) [8]byte {
	return crc64.SumWithByteOrder([]byte(canonicalForm(s)), crc64.LittleEndian)
}

func canonicalForm(s avro.Schema) string {
	var b strings.Builder
	writeCanonical(&b, s, map[string]bool{})
	return b.String()
}

func writeCanonical(b *strings.Builder, s avro.Schema, seen map[string]bool) {
	quote := func(v string) { q, _ := json.Marshal(v); b.Write(q) }
	if named, ok := s.(avro.NamedSchema); ok {
		name := named.FullName()
		if seen[name] {
			quote(name) // a named type is defined once, then referred to
			return
		}
		seen[name] = true
	}
	switch s := s.(type) {
	case *avro.RefSchema:
		writeCanonical(b, s.Schema(), seen)
	case *avro.PrimitiveSchema:
		quote(string(s.Type()))
	case *avro.RecordSchema:
		b.WriteString(`{"name":`)
		quote(s.FullName())
		b.WriteString(`,"type":"record","fields":[`)
		for i, f := range s.Fields() {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"name":`)
			quote(f.Name())
			b.WriteString(`,"type":`)
			writeCanonical(b, f.Type(), seen)
			b.WriteByte('}')
		}
		b.WriteString("]}")
	case *avro.EnumSchema:
		b.WriteString(`{"name":`)
		quote(s.FullName())
		b.WriteString(`,"type":"enum","symbols":[`)
		for i, sym := range s.Symbols() {
			if i > 0 {
				b.WriteByte(',')
			}
			quote(sym)
		}
		b.WriteString("]}")
	case *avro.FixedSchema:
		b.WriteString(`{"name":`)
		quote(s.FullName())
		b.WriteString(`,"type":"fixed","size":` + strconv.Itoa(s.Size()) + "}")
	case *avro.ArraySchema:
		b.WriteString(`{"type":"array","items":`)
		writeCanonical(b, s.Items(), seen)
		b.WriteByte('}')
	case *avro.MapSchema:
		b.WriteString(`{"type":"map","values":`)
		writeCanonical(b, s.Values(), seen)
		b.WriteByte('}')
	case *avro.UnionSchema:
		b.WriteByte('[')
		for i, t := range s.Types() {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, t, seen)
		}
		b.WriteByte(']')
	default:
		quote(string(s.Type()))
	}
}
