package cdc

import "testing"

func TestArenaPiecesNeverOverlap(t *testing.T) {
	var a Arena
	var rows [][]Value
	var bufs [][]byte
	for i := range 3000 { // several chunks of each kind
		row := a.Row(6)
		row[0] = Int(int64(i))
		rows = append(rows, row)
		b := a.CopyString("row")
		b = append(b, byte(i)) // must not write into the next piece
		bufs = append(bufs, b[:3])
	}
	big := a.Row(arenaValues) // larger than a chunk: its own allocation
	big[0] = Int(-1)
	for i, row := range rows {
		if len(row) != 6 || cap(row) != 6 || row[0].Int != int64(i) || !row[1].IsNull() {
			t.Fatalf("row %d = %v (cap %d)", i, row, cap(row))
		}
		if string(bufs[i]) != "row" {
			t.Fatalf("buffer %d = %q", i, bufs[i])
		}
	}
}
