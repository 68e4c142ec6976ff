package sink

import (
	"bytes"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/linkedin/goavro/v2"
)

// goavro computes the single-object header itself (Rabin fingerprint of its own
// canonical form): matching it shows our header is what other readers expect.
func TestSingleObjectHeaderMatchesGoavro(t *testing.T) {
	const schema = `{"type":"record","name":"Customer","namespace":"shop","doc":"ignored by the canonical form",
	  "fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null}]}`
	s, err := avro.Parse(schema)
	if err != nil {
		t.Fatal(err)
	}
	header, err := singleObjectHeader(s)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	single, err := codec.SingleFromNative(nil, map[string]any{"id": int64(1), "email": nil})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(single, header) || len(header) != 10 {
		t.Fatalf("header %x, goavro wrote %x", header, single)
	}
}

func TestConfluentHeaderIsMagicByteAndBigEndianID(t *testing.T) {
	if got := ConfluentHeader(0x01020304); !bytes.Equal(got, []byte{0, 1, 2, 3, 4}) {
		t.Fatalf("got %x", got)
	}
}
