package mysql

import (
	"testing"
	"time"

	"github.com/cdc-dev/cdc"
)

// BenchmarkStreamUpdate measures the stream's per-change work in the source
// once go-mysql has decoded a rows event: turning the old and new rows of an
// update of the bench harness's row (about 150 bytes, integration/bench) into
// values. go-mysql's own decoding is measured by the harness's bare loop.
func BenchmarkStreamUpdate(b *testing.B) {
	types := []columnType{
		{name: "id", base: "bigint"}, {name: "name", base: "varchar", charset: "utf8mb4"},
		{name: "price", base: "decimal", precision: 12, scale: 2}, {name: "qty", base: "int"},
		{name: "created_at", base: "datetime", fsp: 6}, {name: "note", base: "varchar", charset: "utf8mb4", nullable: true},
	}
	state := &tableState{name: cdc.TableName{Schema: "bench", Name: "item"}, table: &cdc.Table{}}
	for _, ct := range types {
		c, err := ct.column(ZeroDatesError)
		if err != nil {
			b.Fatal(err)
		}
		state.table.Columns = append(state.table.Columns, c)
		state.decoders = append(state.decoders, newDecoder(ct, c, ZeroDatesError))
	}
	// As go-mysql hands them over with the daemon's options.
	row := func(qty int32) []any {
		return []any{int64(123456), "item name 123456 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "234.56", qty,
			time.Date(2024, 1, 2, 10, 17, 36, 0, time.UTC), "a note of yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"}
	}
	before, after := row(456), row(457)
	st := &streamer{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.decodeRow(state, before); err != nil {
			b.Fatal(err)
		}
		if _, err := st.decodeRow(state, after); err != nil {
			b.Fatal(err)
		}
	}
}
