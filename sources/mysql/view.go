package mysql

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
	"github.com/cdc-dev/cdc/sources/internal/visible"
)

// viewConn is the connection aggregate entities are read back on.
type viewConn struct {
	mu   sync.Mutex
	conn *client.Conn
	// arena holds the rows of one query, reused by the next.
	arena memory.Arena
}

// ReadView implements cdc.ViewReader with a consistent-snapshot transaction.
// A transaction reaches the binlog before InnoDB makes it visible: MariaDB
// says which binlog position a consistent snapshot sees (binlog_snapshot_file
// and _position), and the view is opened again until that position is past
// the fence's.
func (s *Source) ReadView(ctx context.Context, fence cdc.Fence, read func(cdc.View) error) error {
	var after Position
	if fence.Position != "" {
		p, err := ParsePosition(string(fence.Position))
		if err != nil {
			return err
		}
		after = p
	}
	s.view.mu.Lock()
	defer s.view.mu.Unlock()
	err := visible.Await(ctx, s.log, "recomputing aggregates waits for transactions the stream has read to become visible", []any{"position", after.String()},
		func() (bool, error) { return s.readView(ctx, after, read) })
	if err != nil && ctx.Err() == nil {
		if s.view.conn != nil {
			s.view.conn.Close() // a connection in an unknown state is not reused
			s.view.conn = nil
		}
		return classify(err)
	}
	return err
}

func (s *Source) readView(ctx context.Context, after Position, read func(cdc.View) error) (bool, error) {
	if !s.mariadb {
		return false, fmt.Errorf("aggregate entities are read back in a consistent snapshot whose binlog position MariaDB reports (binlog_snapshot_file); MySQL reports none, so cdc cannot tell whether a snapshot includes the changes it read. Map the tables as table entities on MySQL")
	}
	if s.view.conn == nil {
		conn, err := s.connect(ctx)
		if err != nil {
			return false, err
		}
		s.view.conn = conn
	}
	conn := s.view.conn
	if _, err := conn.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return false, err
	}
	pos, err := snapshotPosition(conn)
	if err == nil && after.File != "" && !includes(pos, after) {
		_, err = conn.Execute("ROLLBACK")
		return false, err
	}
	if err == nil {
		err = read(&view{s: s, conn: conn})
	}
	if err != nil {
		conn.Execute("ROLLBACK")
		return false, err
	}
	_, err = conn.Execute("COMMIT")
	return err == nil, err
}

// includes says whether a snapshot at binlog boundary seen includes the
// change at position p: a change's position names the start of its
// transaction (Row > 0), a boundary the end of the one before (Row 0).
func includes(seen, p Position) bool {
	if seen.File != p.File {
		return binlogNumber(seen.File) > binlogNumber(p.File)
	}
	if p.Row == 0 {
		return seen.Offset >= p.Offset
	}
	return seen.Offset > p.Offset
}

// binlogNumber is the sequence number of a binlog file (mysql-bin.000042).
func binlogNumber(file string) uint64 {
	n, _ := strconv.ParseUint(file[strings.LastIndexByte(file, '.')+1:], 10, 64)
	return n
}

func (s *Source) closeView() {
	s.view.mu.Lock()
	defer s.view.mu.Unlock()
	if s.view.conn != nil {
		s.view.conn.Close()
		s.view.conn = nil
	}
}

// view implements cdc.View in a transaction.
type view struct {
	s    *Source
	conn *client.Conn
}

func (v *view) Rows(ctx context.Context, q cdc.RowQuery, each func(*cdc.Table, []cdc.Value) error) error {
	d := v.s.tables[q.Table]
	if d == nil {
		return fmt.Errorf("table %s is not described", q.Table)
	}
	tq := v.s.newTableQuery(d, nil)
	t := d.table
	names := func(columns []string) ([]string, error) {
		out := make([]string, len(columns))
		for i, name := range columns {
			if t.Column(name) < 0 {
				return nil, fmt.Errorf("table %s has no column %s", t.Name, name)
			}
			out[i] = quoteIdentifier(name)
		}
		return out, nil
	}
	tuple := func(values []cdc.Value) (string, error) {
		literals := make([]string, len(values))
		for i, value := range values {
			var err error
			if literals[i], err = valueLiteral(value); err != nil {
				return "", err
			}
		}
		return "(" + strings.Join(literals, ", ") + ")", nil
	}
	columns, err := names(q.Columns)
	if err != nil {
		return err
	}
	order, err := names(q.OrderBy)
	if err != nil {
		return err
	}
	var where []string
	if q.Values != nil {
		tuples := make([]string, len(q.Values))
		for i, values := range q.Values {
			if tuples[i], err = tuple(values); err != nil {
				return err
			}
		}
		where = append(where, "("+strings.Join(columns, ", ")+") IN ("+strings.Join(tuples, ", ")+")")
	}
	if q.After != nil {
		after, err := tuple(q.After)
		if err != nil {
			return err
		}
		where = append(where, "("+strings.Join(order, ", ")+") > "+after)
	}
	query := tq.base
	if where != nil {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if len(order) > 0 {
		query += " ORDER BY " + strings.Join(order, ", ")
	}
	if q.Limit > 0 {
		query += " LIMIT " + strconv.Itoa(q.Limit)
	}
	arena := &v.s.view.arena
	defer func() { arena.Release(arena.Mark()) }() // the rows are valid during each's call only
	_, err = tq.read(v.conn, query, arena, func(values []cdc.Value) error { return each(t, values) })
	return err
}
