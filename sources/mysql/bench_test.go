package mysql

import (
	"encoding/binary"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// BenchmarkStreamUpdate measures the stream's per-change work in the source
// once go-mysql has read a rows event: reading the old and new images of an
// update of the bench harness's row (about 150 bytes, integration/bench) and
// decoding them into values.
func BenchmarkStreamUpdate(b *testing.B) {
	types := []columnType{
		{name: "id", base: "bigint"}, {name: "name", base: "varchar", charset: "utf8mb4"},
		{name: "price", base: "decimal", precision: 12, scale: 2}, {name: "qty", base: "int"},
		{name: "created_at", base: "datetime", fsp: 6}, {name: "note", base: "varchar", charset: "utf8mb4", nullable: true},
	}
	state := testTableState(b, types, []binlogColumn{{typ: mysql.MYSQL_TYPE_LONGLONG}, {typ: mysql.MYSQL_TYPE_VARCHAR, meta: 400},
		{typ: mysql.MYSQL_TYPE_NEWDECIMAL, meta: 12<<8 | 2}, {typ: mysql.MYSQL_TYPE_LONG},
		{typ: mysql.MYSQL_TYPE_DATETIME2, meta: 6}, {typ: mysql.MYSQL_TYPE_VARCHAR, meta: 400}})
	image := func(qty uint32) []byte {
		out := []byte{0} // no NULLs
		out = binary.LittleEndian.AppendUint64(out, 123456)
		name := "item name 123456 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		out = append(binary.LittleEndian.AppendUint16(out, uint16(len(name))), name...)
		out = append(out, 0x80, 0x00, 0x00, 0x00, 0xEA, 0x38) // 234.56
		out = binary.LittleEndian.AppendUint32(out, qty)
		out = append(out, be(uint64(0x80_0000_0000+(2024*13+1)<<22|2<<17|10<<12|17<<6|36), 5)...)
		out = append(out, 0, 0, 0)
		note := "a note of yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
		return append(binary.LittleEndian.AppendUint16(out, uint16(len(note))), note...)
	}
	data := append(image(456), image(457)...)
	st := &streamer{}
	fields := [2][]field{make([]field, 6), make([]field, 6)}
	all := []byte{0x3f}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n++; n%1024 == 0 { // a batch, released by the pipeline
			st.memory.Release(st.memory.Mark())
		}
		rest := data
		var before []cdc.Value
		for k := range 2 {
			n, err := readImage(rest, state.columns, all, fields[k])
			if err != nil {
				b.Fatal(err)
			}
			rest = rest[n:]
			var like *rowImage
			if k == 1 { // the after image, as the stream decodes it
				like = &rowImage{fields: fields[0]}
			}
			if before, _, err = st.decodeRow(state, rowImage{fields: fields[k]}, like, before, cdc.Unchanged()); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// testTableState describes a table as a table-map event would: its columns'
// types and binlog layouts, and their decoders.
func testTableState(t testing.TB, types []columnType, layouts []binlogColumn) *tableState {
	state := &tableState{name: cdc.TableName{Schema: "bench", Name: "item"}, table: &cdc.Table{}, columns: layouts}
	for _, ct := range types {
		c, err := ct.column(ZeroDatesError)
		if err != nil {
			t.Fatal(err)
		}
		state.table.Columns = append(state.table.Columns, c)
		state.decoders = append(state.decoders, newDecoder(ct, c, ZeroDatesError))
	}
	return state
}

// BenchmarkSnapshotRow measures the snapshot's per-row work in the source once
// go-mysql has parsed a text-protocol row: decoding the bench harness's row
// into values, as the snapshot's read does.
func BenchmarkSnapshotRow(b *testing.B) {
	types := []columnType{
		{name: "id", base: "bigint"}, {name: "name", base: "varchar", charset: "utf8mb4"},
		{name: "price", base: "decimal", precision: 12, scale: 2}, {name: "qty", base: "int"},
		{name: "created_at", base: "datetime", fsp: 6}, {name: "note", base: "varchar", charset: "utf8mb4", nullable: true},
	}
	state := testTableState(b, types, nil)
	q := &tableQuery{table: state.table, decoders: state.decoders}
	row := []mysql.FieldValue{
		mysql.NewFieldValue(mysql.FieldValueTypeSigned, 123456, nil),
		mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte("item name 123456 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")),
		mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte("234.56")),
		mysql.NewFieldValue(mysql.FieldValueTypeSigned, 456, nil),
		mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte("2024-01-10 17:36:00.000000")),
		mysql.NewFieldValue(mysql.FieldValueTypeString, 0, []byte("a note of yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy")),
	}
	var arena memory.Arena
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n++; n%1024 == 0 { // a batch, released by the pipeline
			arena.Release(arena.Mark())
		}
		if _, err := q.decode(row, &arena); err != nil {
			b.Fatal(err)
		}
	}
}
