package postgres

import (
	"encoding/binary"
	"testing"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// The bench harness's row (integration/bench): about 150 bytes.
var benchTable = &cdc.Table{Name: cdc.TableName{Schema: "public", Name: "item"}, PrimaryKey: []int{0}, Columns: []cdc.Column{
	{Name: "id", Kind: cdc.KindInt}, {Name: "name", Kind: cdc.KindString}, {Name: "price", Kind: cdc.KindDecimal},
	{Name: "qty", Kind: cdc.KindInt}, {Name: "created_at", Kind: cdc.KindTimestamp}, {Name: "note", Kind: cdc.KindString, Nullable: true},
}}

var benchFields = []string{"123456", "item name 123456 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "234.56", "456",
	"2024-01-02 10:17:36", "a note of yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"}

// BenchmarkSnapshotRow measures the snapshot's per-row work in the source:
// splitting a COPY line and decoding its fields into an arena released a
// batch at a time.
func BenchmarkSnapshotRow(b *testing.B) {
	var line []byte
	for i, f := range benchFields {
		if i > 0 {
			line = append(line, '\t')
		}
		line = append(line, f...)
	}
	line = append(line, '\n')
	p := &copyParser{columns: len(benchFields), arena: new(memory.Arena)}
	p.onRow = func(fields [][]byte) error {
		_, err := decodeFields(benchTable, fields, p.arena)
		return err
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	n := 0
	for b.Loop() {
		if _, err := p.Write(line); err != nil {
			b.Fatal(err)
		}
		if n++; n%1024 == 0 { // a batch, released by the pipeline
			p.arena.Release(p.arena.Mark())
		}
	}
}

// BenchmarkStreamUpdate measures the stream's per-change work in the source:
// parsing a pgoutput update with its old and new rows and decoding both.
func BenchmarkStreamUpdate(b *testing.B) {
	tuple := func(out []byte) []byte {
		out = binary.BigEndian.AppendUint16(out, uint16(len(benchFields)))
		for _, f := range benchFields {
			out = binary.BigEndian.AppendUint32(append(out, 't'), uint32(len(f)))
			out = append(out, f...)
		}
		return out
	}
	msg := binary.BigEndian.AppendUint32([]byte{'U'}, 16384)
	msg = tuple(append(msg, 'O'))
	msg = tuple(append(msg, 'N'))
	var arena memory.Arena
	var m rowMessage
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	n := 0
	for b.Loop() {
		if n++; n%1024 == 0 { // a batch, released by the pipeline
			arena.Release(arena.Mark())
		}
		if err := m.parse(arena.Copy(msg)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := decodeTuple(benchTable, nil, m.old, &arena); err != nil {
			b.Fatal(err)
		}
		if _, _, err := decodeTuple(benchTable, nil, m.new, &arena); err != nil {
			b.Fatal(err)
		}
	}
}
