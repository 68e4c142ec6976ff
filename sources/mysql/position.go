package mysql

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cdc-dev/cdc"
)

// Position is a point in the binlog, always at a transaction boundary plus a
// count of changes: restarting in the middle of a table-map/rows sequence is what
// broke other tools ("no corresponding table map event").
//
// A change's position names the start of its transaction and its 1-based index
// inside it; a position with Row 0 is the boundary after a whole transaction.
// Resuming from a position streams from the boundary and drops the first Row
// changes of the first transaction, which an earlier run delivered.
type Position struct {
	// File and Offset are the binlog coordinates of the boundary.
	File   string
	Offset uint32
	// GTIDSet, in GTID mode, is the set of transactions wholly before the boundary,
	// in the server's own format (MariaDB "0-1-42", MySQL "uuid:1-42"). It is what
	// a restart uses: it stays valid on another server of the replication topology,
	// where File and Offset mean nothing.
	GTIDSet string
	Row     int
	// Snapshot marks the start of a snapshot that has not finished: stored
	// before the snapshot's first row, it tells a restart to read the tables
	// anew and then stream from here, so that rows deleted since this first
	// snapshot started get their tombstones.
	Snapshot bool
	// Cursor, during a snapshot, is how far it got: a restart reads only the
	// chunks after it.
	Cursor *cdc.SnapshotCursor
	// Backfill is the backfill under way, carried by every position of the
	// stream until it is done.
	Backfill *cdc.Backfill
	// Prepared, while XA transactions are prepared but neither committed nor
	// rolled back, is the boundary before the oldest one's prepare: their
	// rows are in the binlog there, and are sent at their XA COMMIT. A
	// restart reads the binlog from Prepared again, keeps the prepared rows
	// it meets, and sends nothing else from before the position itself.
	Prepared *Boundary
}

// Boundary is a point between two transactions of the binlog.
type Boundary struct {
	File    string
	Offset  uint32
	GTIDSet string
}

func (p Position) boundary() Boundary {
	return Boundary{File: p.File, Offset: p.Offset, GTIDSet: p.GTIDSet}
}

// String renders the boundary as one token: file/offset/gtid-set (no GTID set
// and binlog file name holds a slash).
func (b Boundary) String() string {
	return b.File + "/" + strconv.FormatUint(uint64(b.Offset), 10) + "/" + b.GTIDSet
}

func parseBoundary(s string) (Boundary, error) {
	parts := strings.SplitN(s, "/", 3)
	if len(parts) != 3 || parts[0] == "" {
		return Boundary{}, fmt.Errorf("boundary %q: want file/offset/gtid-set", s)
	}
	offset, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return Boundary{}, fmt.Errorf("boundary %q: want file/offset/gtid-set", s)
	}
	return Boundary{File: parts[0], Offset: uint32(offset), GTIDSet: parts[2]}, nil
}

// String renders the position as stored in the checkpoint, e.g.
// "file=mysql-bin.000003 pos=1234 row=5 gtid=0-1-42". The GTID set comes last
// because MySQL's contains ':' and ','.
func (p Position) String() string {
	// Every change carries one: built without fmt, in one allocation.
	var b strings.Builder
	b.Grow(48 + len(p.File) + len(p.GTIDSet))
	if p.Snapshot {
		b.WriteString("snapshot ")
	}
	var number [20]byte
	b.WriteString("file=")
	b.WriteString(p.File)
	b.WriteString(" pos=")
	b.Write(strconv.AppendUint(number[:0], uint64(p.Offset), 10))
	b.WriteString(" row=")
	b.Write(strconv.AppendInt(number[:0], int64(p.Row), 10))
	if p.Cursor != nil {
		b.WriteString(" cursor=" + p.Cursor.String())
	}
	if p.Backfill != nil {
		b.WriteString(" backfill=" + p.Backfill.String())
	}
	if p.Prepared != nil {
		b.WriteString(" xa=" + p.Prepared.String())
	}
	if p.GTIDSet != "" {
		b.WriteString(" gtid=")
		b.WriteString(p.GTIDSet)
	}
	return b.String()
}

func (p Position) cdc() cdc.Position { return cdc.Position(p.String()) }

// ParsePosition reads the form String writes.
func ParsePosition(s string) (Position, error) {
	var p Position
	fields := strings.Fields(s)
	if len(fields) > 0 && fields[0] == "snapshot" {
		p.Snapshot, fields = true, fields[1:]
	}
	seen := map[string]bool{}
	for _, f := range fields {
		key, value, ok := strings.Cut(f, "=")
		if !ok || seen[key] {
			return Position{}, fmt.Errorf("%q is not a MySQL position ([snapshot] file=F pos=N row=N [gtid=SET])", s)
		}
		seen[key] = true
		var err error
		switch key {
		case "file":
			p.File = value
		case "pos":
			var n uint64
			n, err = strconv.ParseUint(value, 10, 32)
			p.Offset = uint32(n)
		case "row":
			p.Row, err = strconv.Atoi(value)
			if p.Row < 0 {
				err = fmt.Errorf("negative row")
			}
		case "gtid":
			p.GTIDSet = value
		case "cursor":
			var c cdc.SnapshotCursor
			c, err = cdc.ParseSnapshotCursor(value)
			p.Cursor = &c
		case "backfill":
			var b cdc.Backfill
			b, err = cdc.ParseBackfill(value)
			p.Backfill = &b
		case "xa":
			var b Boundary
			b, err = parseBoundary(value)
			p.Prepared = &b
		default:
			err = fmt.Errorf("unknown field %q", key)
		}
		if err != nil {
			return Position{}, fmt.Errorf("%q is not a MySQL position: %v", s, err)
		}
	}
	if !seen["file"] || !seen["pos"] || !seen["row"] || p.File == "" || (p.Cursor != nil && !p.Snapshot) {
		return Position{}, fmt.Errorf("%q is not a MySQL position ([snapshot] file=F pos=N row=N [cursor=C] [backfill=B] [xa=F/N/SET] [gtid=SET])", s)
	}
	return p, nil
}
