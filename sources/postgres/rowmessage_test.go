package postgres

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cdc-dev/cdc"
)

// Messages built as PostgreSQL's "Logical Replication Message Formats"
// (protocol 1) lays them out.
func TestRowMessagesOfPgoutput(t *testing.T) {
	tuple := func(out []byte, columns ...string) []byte {
		out = binary.BigEndian.AppendUint16(out, uint16(len(columns)))
		for _, c := range columns {
			switch c {
			case "NULL":
				out = append(out, 'n')
			case "TOAST":
				out = append(out, 'u')
			default:
				out = binary.BigEndian.AppendUint32(append(out, 't'), uint32(len(c)))
				out = append(out, c...)
			}
		}
		return out
	}
	header := func(kind byte) []byte { return binary.BigEndian.AppendUint32([]byte{kind}, 16384) }
	render := func(columns []tupleColumn) string {
		var parts []string
		for _, c := range columns {
			parts = append(parts, string(c.kind)+":"+string(c.data))
		}
		return strings.Join(parts, ",")
	}
	for _, c := range []struct {
		name     string
		msg      []byte
		oldKind  byte
		old, new string
		err      string
	}{
		{"insert", tuple(append(header('I'), 'N'), "1", "NULL", ""), 0, "", "t:1,n:,t:", ""},
		{"update, old row", tuple(append(tuple(append(header('U'), 'O'), "1", "a"), 'N'), "1", "TOAST"), 'O', "t:1,t:a", "t:1,u:", ""},
		{"update, key only", tuple(append(tuple(append(header('U'), 'K'), "1"), 'N'), "2", "b"), 'K', "t:1", "t:2,t:b", ""},
		{"update, no old row", tuple(append(header('U'), 'N'), "1", "b"), 0, "", "t:1,t:b", ""},
		{"delete", tuple(append(header('D'), 'O'), "1", "a"), 'O', "t:1,t:a", "", ""},
		{"delete without its old row", tuple(append(header('D'), 'N'), "1"), 0, "", "", "a delete without its old row"},
		{"truncated value", append(binary.BigEndian.AppendUint32(append(binary.BigEndian.AppendUint16(append(header('I'), 'N'), 1), 't'), 10), "abc"...), 0, "", "", "ends early"},
		{"unknown column kind", append(binary.BigEndian.AppendUint16(append(header('I'), 'N'), 1), 'x'), 0, "", "", "unknown column kind"},
		{"not a row message", tuple(append(header('X'), 'N'), "1"), 0, "", "", "not a row message"},
		{"bytes after the rows", append(tuple(append(header('I'), 'N'), "1"), 0), 0, "", "", "1 bytes after"},
	} {
		var m rowMessage
		err := m.parse(c.msg)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err == "" && (m.oldKind != c.oldKind || render(m.old) != c.old || render(m.new) != c.new || (m.op != cdc.OpDelete) != (c.new != "")):
			t.Errorf("%s: old %c %q, new %q, want %c %q, %q", c.name, m.oldKind, render(m.old), render(m.new), c.oldKind, c.old, c.new)
		}
	}
}
