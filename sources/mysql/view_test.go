package mysql

import "testing"

func TestSnapshotIncludesAChangeOnlyPastItsTransaction(t *testing.T) {
	change := Position{File: "mysql-bin.000009", Offset: 1000, Row: 3} // inside the transaction starting at 1000
	boundary := Position{File: "mysql-bin.000009", Offset: 1000}       // after the transaction ending at 1000
	for _, tc := range []struct {
		seen Position
		p    Position
		want bool
	}{
		{Position{File: "mysql-bin.000009", Offset: 1000}, change, false},
		{Position{File: "mysql-bin.000009", Offset: 999}, change, false},
		{Position{File: "mysql-bin.000009", Offset: 1400}, change, true},
		{Position{File: "mysql-bin.000010", Offset: 4}, change, true},
		{Position{File: "mysql-bin.000008", Offset: 9000}, change, false},
		{Position{File: "mysql-bin.000009", Offset: 1000}, boundary, true},
		{Position{File: "mysql-bin.000009", Offset: 998}, boundary, false},
		{Position{File: "mysql-bin.000100", Offset: 4}, Position{File: "mysql-bin.000099", Offset: 50, Row: 1}, true},
	} {
		if got := includes(tc.seen, tc.p); got != tc.want {
			t.Errorf("snapshot at %s/%d includes %s: %v, want %v", tc.seen.File, tc.seen.Offset, tc.p, got, tc.want)
		}
	}
}
