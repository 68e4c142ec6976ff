package mysql

import (
	"slices"
	"strings"
	"testing"

	"github.com/cdc-dev/cdc"
)

// Key values go back into the read-back query as literals that compare
// equal to the column; a kind with no such literal is refused with the fix.
func TestKeyValuesAreWrittenBackAsLiterals(t *testing.T) {
	for _, c := range []struct {
		v    cdc.Value
		want string
	}{
		{cdc.Int(-7), "-7"},
		{cdc.Decimal([]byte("12.50")), "12.50"},
		{cdc.String([]byte("a'b")), "_utf8mb4 X'612762'"},
		{cdc.Bytes([]byte{0, 255}), "X'00ff'"},
		{cdc.Date(1), "'1970-01-02'"},
		{cdc.Timestamp(1_500_000), "'1970-01-01 00:00:01.5'"},
	} {
		if got, err := valueLiteral(c.v); err != nil || got != c.want {
			t.Errorf("%s %v: %q, %v; want %q", c.v.Kind, c.v, got, err, c.want)
		}
	}
	if _, err := valueLiteral(cdc.Float(1.5)); err == nil || !strings.Contains(err.Error(), "binlog_row_image = FULL") {
		t.Errorf("a float key: %v, want a refusal with the fix", err)
	}
}

// The columns old row images hold under each binlog_row_image.
func TestRowImageIdentity(t *testing.T) {
	table := &cdc.Table{Columns: make([]cdc.Column, 4), PrimaryKey: []int{0}}
	types := []columnType{{base: "bigint"}, {base: "varchar"}, {base: "blob"}, {base: "text"}}
	for _, c := range []struct {
		image string
		want  []int
	}{{"FULL", nil}, {"MINIMAL", []int{0}}, {"NOBLOB", []int{0, 1}}} {
		if got := rowImageIdentity(c.image, table, types); !slices.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("%s: %v, want %v", c.image, got, c.want)
		}
	}
	if got := rowImageIdentity("MINIMAL", &cdc.Table{Columns: make([]cdc.Column, 4)}, types); got != nil {
		t.Errorf("a table without a primary key gets whole old rows, not %v", got)
	}
}
