package postgres

import (
	"strings"
	"testing"

	"github.com/cdc-dev/cdc"
)

func TestFenceReadsTheStreamsTransactionIDs(t *testing.T) {
	xids, err := fenceXids([]string{"4294967295:0/16B3748", "771:1/0"})
	if err != nil || len(xids) != 2 || xids[0] != 4294967295 || xids[1] != 771 {
		t.Errorf("xids %v, err %v", xids, err)
	}
	if _, err := fenceXids([]string{"0-1-42"}); err == nil || !strings.Contains(err.Error(), `transaction "0-1-42" is not one of this source's`) {
		t.Errorf("a MySQL GTID: err %v", err)
	}
}

func TestRowsQuery(t *testing.T) {
	table := &cdc.Table{Name: cdc.TableName{Schema: "public", Name: "order line"}, Columns: []cdc.Column{
		{Name: "order_id", DatabaseType: "bigint", Kind: cdc.KindInt},
		{Name: "line_no", DatabaseType: "integer", Kind: cdc.KindInt},
		{Name: "sku", DatabaseType: "text", Kind: cdc.KindString},
	}}
	query, err := rowsQuery(table, cdc.RowQuery{Columns: []string{"order_id"}, Values: [][]cdc.Value{{cdc.Int(1)}, {cdc.Int(2)}},
		OrderBy: []string{"order_id", "line_no"}, After: []cdc.Value{cdc.Int(1), cdc.Int(7)}, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	want := `SELECT "order_id", "line_no", "sku" FROM "public"."order line" WHERE ("order_id") IN ((E'1'::bigint), (E'2'::bigint)) AND ("order_id", "line_no") > (E'1'::bigint, E'7'::integer) ORDER BY "order_id", "line_no" LIMIT 500`
	if query != want {
		t.Errorf("query\n got %s\nwant %s", query, want)
	}
	if _, err := rowsQuery(table, cdc.RowQuery{Columns: []string{"orderid"}, Values: [][]cdc.Value{{cdc.Int(1)}}}); err == nil {
		t.Error("a column the table lacks was accepted")
	}
}
