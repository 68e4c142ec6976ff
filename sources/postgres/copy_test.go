package postgres

import (
	"testing"

	"github.com/cdc-dev/cdc/internal/memory"
)

// The escapes are those of the COPY documentation, "Text Format".
func TestCopyTextFormatUnescapesEveryDocumentedSequence(t *testing.T) {
	var rows [][]string
	var nulls [][]bool
	p := &copyParser{columns: 3, arena: new(memory.Arena), onRow: func(fields [][]byte) error {
		var row []string
		var null []bool
		for _, f := range fields {
			row = append(row, string(f))
			null = append(null, f == nil)
		}
		rows, nulls = append(rows, row), append(nulls, null)
		return nil
	}}
	data := "1\ta\\tb\\nc\\\\d\t\\N\n" + // tab, newline, backslash; NULL
		"2\t\\101\\x42\\x4a\\b\\f\\r\\v\\q\t\n" + // octal, hex, controls, any other char as itself; empty string
		"3\t\\\\N\tzürich\n" // a literal backslash-N is not NULL, and unescaping it leaves the next field
	// Split the data across writes at awkward places, as the server may.
	for _, chunk := range []string{data[:5], data[5:17], data[17:]} {
		if _, err := p.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	want := [][]string{{"1", "a\tb\nc\\d", ""}, {"2", "ABJ\b\f\r\vq", ""}, {"3", `\N`, "zürich"}}
	wantNull := [][]bool{{false, false, true}, {false, false, false}, {false, false, false}}
	if len(rows) != 3 {
		t.Fatalf("rows %q", rows)
	}
	for i := range want {
		for j := range want[i] {
			if rows[i][j] != want[i][j] || nulls[i][j] != wantNull[i][j] {
				t.Errorf("row %d col %d = %q (null %v), want %q (null %v)", i, j, rows[i][j], nulls[i][j], want[i][j], wantNull[i][j])
			}
		}
	}
	if _, err := p.Write([]byte("1\t2\n")); err == nil {
		t.Error("a row with too few columns was accepted")
	}
}

// A fresh arena's first piece is empty when a one-column row is the empty
// string: it must not read as NULL.
func TestCopyEmptyFirstRowIsNotNull(t *testing.T) {
	var got [][]byte
	p := &copyParser{columns: 1, arena: new(memory.Arena), onRow: func(fields [][]byte) error {
		got = append(got, fields[0])
		return nil
	}}
	if _, err := p.Write([]byte("\n\\N\n")); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d rows, want 2", len(got))
	}
	if got[0] == nil || len(got[0]) != 0 || got[1] != nil {
		t.Errorf("fields %q (nil: %v, %v), want the empty string then NULL", got, got[0] == nil, got[1] == nil)
	}
}
