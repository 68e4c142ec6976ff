package sink

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/hamba/avro/v2"
)

// Inputs, canonical forms and fingerprints from the Avro project's
// share/test/data/schema-tests.txt (fingerprints cross-checked there by Java's
// SchemaNormalization). Single-object encoding writes the fingerprint little-endian.
var canonicalVectors = []struct {
	input, canonical string
	fingerprint      int64
}{
	{`"null"`, `"null"`, 7195948357588979594},
	{`{"type":"int"}`, `"int"`, 8247732601305521295},
	{`"string"`, `"string"`, -8142146995180207161},
	{`[ "int" , {"type":"boolean"} ]`, `["int","boolean"]`, 5392556393470105090},
	{`{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}`, `{"name":"x.y.foo","type":"record","fields":[]}`, 5916914534497305771},
	{`{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}`, `{"name":"a.b.foo","type":"record","fields":[]}`, -4616218487480524110},
	{`{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":true},
	    {"order":"descending","name":"f2","doc":"Hello","type":"int"}], "type":"record", "name":"foo"}`,
		`{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}`, -4860222112080293046},
	{`{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}`, `{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}`, -4448647247586288245},
	{`{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}`, `{"name":"x.y.z.foo","type":"fixed","size":32}`, -3064184465700546786},
	{`{ "items":{"type":"null"}, "type":"array"}`, `{"type":"array","items":"null"}`, -589620603366471059},
	{`{ "values":"string", "type":"map"}`, `{"type":"map","values":"string"}`, -8732877298790414990},
	{`{"name":"PigValue","type":"record", "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}`,
		`{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}`, -1759257747318642341},
}

func TestSingleObjectHeaderUsesTheSpecificationsFingerprint(t *testing.T) {
	for _, v := range canonicalVectors {
		s, err := avro.Parse(v.input)
		if err != nil {
			t.Fatalf("%s: %v", v.input, err)
		}
		if got := canonicalForm(s); got != v.canonical {
			t.Errorf("canonical form of %s\n got %s\nwant %s", v.input, got, v.canonical)
		}
		want := []byte{0xc3, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.LittleEndian.PutUint64(want[2:], uint64(v.fingerprint))
		if got := SingleObjectHeader(s); !bytes.Equal(got, want) {
			t.Errorf("header of %s = %x, want %x", v.input, got, want)
		}
	}
}

// The canonical form keeps only name, type, fields, symbols, items, values and
// size: logical types are stripped, so Java readers (SchemaNormalization) find
// the same fingerprint. Names take their own namespace, else the enclosing one.
func TestCanonicalFormStripsLogicalTypesAndQualifiesNames(t *testing.T) {
	cases := map[string]string{
		`{"type":"record","name":"Customer","namespace":"shop.v1","fields":[
		  {"name":"balance","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
		  {"name":"born","type":["null",{"type":"int","logicalType":"date"}],"default":null},
		  {"name":"id","type":{"type":"string","logicalType":"uuid"}}]}`: `{"name":"shop.v1.Customer","type":"record","fields":[{"name":"balance","type":"bytes"},{"name":"born","type":["null","int"]},{"name":"id","type":"string"}]}`,
		`{"type":"record","name":"A","namespace":"n","fields":[
		  {"name":"f","type":{"type":"fixed","name":"F","size":4,"logicalType":"decimal","precision":8}},{"name":"g","type":"F"},
		  {"name":"e","type":{"type":"enum","name":"E","namespace":"other","symbols":["X","Y"]}},
		  {"name":"l","type":{"type":"array","items":{"type":"map","values":"other.E"}}}]}`: `{"name":"n.A","type":"record","fields":[{"name":"f","type":{"name":"n.F","type":"fixed","size":4}},{"name":"g","type":"n.F"},{"name":"e","type":{"name":"other.E","type":"enum","symbols":["X","Y"]}},{"name":"l","type":{"type":"array","items":{"type":"map","values":"other.E"}}}]}`,
	}
	for input, want := range cases {
		s, err := avro.Parse(input)
		if err != nil {
			t.Fatal(err)
		}
		if got := canonicalForm(s); got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

func TestConfluentHeaderIsMagicByteAndBigEndianID(t *testing.T) {
	if got := ConfluentHeader(0x01020304); !bytes.Equal(got, []byte{0, 1, 2, 3, 4}) {
		t.Fatalf("got %x", got)
	}
}
