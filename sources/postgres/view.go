package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
	"github.com/cdc-dev/cdc/sources/internal/visible"
)

// viewConn is the connection aggregate entities are read back on.
type viewConn struct {
	mu   sync.Mutex
	conn *pgx.Conn
	// arena holds the rows of one query, reused by the next.
	arena memory.Arena
}

// ReadView implements cdc.ViewReader with a REPEATABLE READ, READ ONLY
// transaction. A transaction's commit reaches the WAL, and so the stream,
// before it is visible to other transactions: the view's snapshot is checked
// to see every transaction of the fence, and taken again until it does.
func (s *Source) ReadView(ctx context.Context, fence cdc.Fence, read func(cdc.View) error) error {
	xids, err := fenceXids(fence.Transactions)
	if err != nil {
		return err
	}
	s.view.mu.Lock()
	defer s.view.mu.Unlock()
	if s.view.conn == nil {
		cc, err := connConfig(s.cfg.DSN, s.cfg.ApplicationName+" aggregates")
		if err != nil {
			return err
		}
		if s.view.conn, err = pgx.ConnectConfig(ctx, cc); err != nil {
			return classify(fmt.Errorf("open the connection that reads aggregates: %w", err))
		}
	}
	err = visible.Await(ctx, s.log, "recomputing aggregates waits for transactions the stream has read to become visible", []any{"transactions", xids},
		func() (bool, error) { return s.readView(ctx, xids, read) })
	if err != nil && ctx.Err() == nil {
		s.view.conn.Close(context.Background()) // a connection in an unknown state is not reused
		s.view.conn = nil
		return classify(err)
	}
	return err
}

func (s *Source) readView(ctx context.Context, xids []int64, read func(cdc.View) error) (bool, error) {
	tx, err := s.view.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.Background())
	// The first statement takes the transaction's snapshot; pgoutput gives
	// 32-bit transaction ids, which the snapshot's xmax gives their epoch.
	var visible bool
	err = tx.QueryRow(ctx, `SELECT coalesce(bool_and(pg_catalog.txid_visible_in_snapshot(m.xmax - ((m.xmax - x) & 4294967295), s.snap)), true)
		FROM (SELECT pg_catalog.txid_current_snapshot() AS snap) s,
			LATERAL (SELECT pg_catalog.txid_snapshot_xmax(s.snap) AS xmax) m, unnest($1::bigint[]) x`, xids).Scan(&visible)
	if err != nil || !visible {
		return false, err
	}
	if err := read(&view{s: s, tx: tx}); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// fenceXids reads the transaction ids of the stream's transactions
// ("xid:commit LSN").
func fenceXids(transactions []string) ([]int64, error) {
	xids := make([]int64, 0, len(transactions))
	for _, t := range transactions {
		xid, _, _ := strings.Cut(t, ":")
		n, err := strconv.ParseUint(xid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("transaction %q is not one of this source's", t)
		}
		xids = append(xids, int64(n))
	}
	return xids, nil
}

func (s *Source) closeView() {
	s.view.mu.Lock()
	defer s.view.mu.Unlock()
	if s.view.conn != nil {
		s.view.conn.Close(context.Background())
		s.view.conn = nil
	}
}

// view implements cdc.View in a transaction.
type view struct {
	s  *Source
	tx pgx.Tx
}

func (v *view) Rows(ctx context.Context, q cdc.RowQuery, each func(*cdc.Table, []cdc.Value) error) error {
	v.s.catalogMu.Lock()
	t := v.s.tables[q.Table]
	v.s.catalogMu.Unlock()
	if t == nil {
		return fmt.Errorf("table %s is not described", q.Table)
	}
	query, err := rowsQuery(t, q)
	if err != nil {
		return err
	}
	arena := &v.s.view.arena
	defer func() { arena.Release(arena.Mark()) }() // the rows are valid during each's call only
	parser := &copyParser{columns: len(t.Columns), arena: arena}
	parser.onRow = func(fields [][]byte) error {
		values, err := decodeFields(t, fields, parser.arena)
		if err != nil {
			return fmt.Errorf("%s, %w", t.Name, err)
		}
		return each(t, values)
	}
	_, err = v.tx.Conn().PgConn().CopyTo(ctx, parser, "COPY ("+query+") TO STDOUT")
	return err
}

// rowsQuery writes a cdc.RowQuery in SQL.
func rowsQuery(t *cdc.Table, q cdc.RowQuery) (string, error) {
	ordinals := func(names []string) ([]int, error) {
		out := make([]int, len(names))
		for i, name := range names {
			if out[i] = t.Column(name); out[i] < 0 {
				return nil, fmt.Errorf("table %s has no column %s", t.Name, name)
			}
		}
		return out, nil
	}
	tuple := func(columns []int, values []cdc.Value) string {
		texts := make([]string, len(values))
		for i, v := range values {
			texts[i] = literalText(v)
		}
		return "(" + keyLiterals(t, columns, texts) + ")"
	}
	columns, err := ordinals(q.Columns)
	if err != nil {
		return "", err
	}
	order, err := ordinals(q.OrderBy)
	if err != nil {
		return "", err
	}
	query := chunkQuery(t, nil, nil, nil, 0)
	var where []string
	if q.Values != nil {
		tuples := make([]string, len(q.Values))
		for i, values := range q.Values {
			tuples[i] = tuple(columns, values)
		}
		where = append(where, "("+strings.Join(keyColumns(t, columns), ", ")+") IN ("+strings.Join(tuples, ", ")+")")
	}
	if q.After != nil {
		where = append(where, "("+strings.Join(keyColumns(t, order), ", ")+") > "+tuple(order, q.After))
	}
	if where != nil {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if len(order) > 0 {
		query += " ORDER BY " + strings.Join(keyColumns(t, order), ", ")
	}
	if q.Limit > 0 {
		query += " LIMIT " + strconv.Itoa(q.Limit)
	}
	return query, nil
}
