package mysql

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// Under binlog_row_image MINIMAL or NOBLOB, a row image holds only some
// columns: an update's after image those it set (MINIMAL) or all but the
// blobs it left alone (NOBLOB), an insert's those its statement set
// (MINIMAL). The stream reads the others back (see reread.Complete).

// rereader reads rows back by primary key, on a connection of its own.
type rereader struct {
	s    *Source
	conn *client.Conn
	// states are the tables' decoders, by the shape the stream handed out.
	states map[*cdc.Table]*tableState
}

func (r *rereader) close() {
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}

// read implements reread.Read with a locking read. A transaction reaches
// the binlog before InnoDB makes it visible, so a plain read could return
// values older than the change; a locking read waits for the row's writer
// to commit and reads its latest committed version. Its shared locks last
// for the statement only (autocommit, READ COMMITTED: no gap locks); a
// deadlock with the application (the read, which changed nothing, is
// InnoDB's victim) or a lock wait timeout is retried.
func (r *rereader) read(ctx context.Context, t *cdc.Table, columns []int, rows [][]cdc.Value) (map[string][]cdc.Value, error) {
	state := r.states[t]
	if state == nil {
		return nil, fmt.Errorf("no table map for the shape of %s", t.Name)
	}
	query, err := rowsByKeyQuery(state, columns, rows)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		found, err := r.readOnce(ctx, state, columns, query)
		var myErr *mysql.MyError
		if err == nil || attempt == 5 || !errors.As(err, &myErr) || (myErr.Code != mysql.ER_LOCK_DEADLOCK && myErr.Code != mysql.ER_LOCK_WAIT_TIMEOUT) {
			return found, err
		}
		r.s.log.Warn("reading rows back met the application's locks; trying again", "table", t.Name.String(), "attempt", attempt, "error", myErr.Message)
		select {
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (r *rereader) readOnce(ctx context.Context, state *tableState, columns []int, query string) (map[string][]cdc.Value, error) {
	if r.conn == nil {
		conn, err := r.s.connect(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := conn.Execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"); err != nil {
			conn.Close()
			return nil, err
		}
		r.conn = conn
	}
	t := state.table
	found := map[string][]cdc.Value{}
	arena := new(memory.Arena) // these rows only, never reused
	var result mysql.Result
	err := r.conn.ExecuteSelectStreaming(query, &result, func(row []mysql.FieldValue) error {
		values := arena.Row(len(t.Columns))
		for j := range row {
			c := columns[j]
			v, err := state.decoders[c].snapshot(&row[j], arena)
			if err != nil {
				return fmt.Errorf("column %s: %w%s", t.Columns[c].Name, err, zeroDateHint(err))
			}
			values[c] = v
		}
		key, _ := t.KeyOf(values)
		found[key] = values
		return nil
	}, nil)
	if err != nil {
		var myErr *mysql.MyError
		if !errors.As(err, &myErr) {
			r.close() // a connection in an unknown state is not reused
		}
		return nil, err
	}
	return found, nil
}

// rowsByKeyQuery selects columns of the rows of a table with the primary
// keys of rows, locking them in share mode.
func rowsByKeyQuery(state *tableState, columns []int, rows [][]cdc.Value) (string, error) {
	t := state.table
	selectList := make([]string, len(columns))
	for j, c := range columns {
		selectList[j] = selectExpression(state.decoders[c].t)
	}
	keyNames := make([]string, len(t.PrimaryKey))
	for j, k := range t.PrimaryKey {
		keyNames[j] = quoteIdentifier(t.Columns[k].Name)
	}
	tuples := make([]string, len(rows))
	literals := make([]string, len(t.PrimaryKey))
	for i, row := range rows {
		for j, k := range t.PrimaryKey {
			var err error
			if literals[j], err = valueLiteral(row[k]); err != nil {
				return "", fmt.Errorf("primary key column %s: %w", t.Columns[k].Name, err)
			}
		}
		tuples[i] = "(" + strings.Join(literals, ", ") + ")"
	}
	return "SELECT " + strings.Join(selectList, ", ") + " FROM " + quoteTable(t.Name) +
		" WHERE (" + strings.Join(keyNames, ", ") + ") IN (" + strings.Join(tuples, ", ") + ") LOCK IN SHARE MODE", nil
}

// valueLiteral writes a key value decoded from the binlog back as a literal
// that compares equal to the column's value.
func valueLiteral(v cdc.Value) (string, error) {
	switch v.Kind {
	case cdc.KindInt, cdc.KindUint, cdc.KindDecimal:
		return v.String(), nil
	case cdc.KindString:
		// Decoded to UTF-8; compared under the column's collation.
		return "_utf8mb4 X'" + hex.EncodeToString(v.Bytes) + "'", nil
	case cdc.KindBytes:
		return "X'" + hex.EncodeToString(v.Bytes) + "'", nil
	case cdc.KindDate, cdc.KindDuration:
		return "'" + v.String() + "'", nil
	case cdc.KindTimestamp: // the session's time zone is UTC
		return "'" + v.Time().Format("2006-01-02 15:04:05.999999") + "'", nil
	}
	return "", fmt.Errorf("cdc cannot write a %s key value back into a query, to read the values the binlog left out: set binlog_row_image = FULL", v.Kind)
}
