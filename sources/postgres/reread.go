package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
	"github.com/cdc-dev/cdc/sources/internal/visible"
)

// Under any REPLICA IDENTITY but FULL, PostgreSQL logs an update's new row
// without the TOASTed values the update left alone, and logs no old row to
// take them from: the stream reads those rows back (see reread.Complete).

// rereader reads rows back by key, on a connection of its own.
type rereader struct {
	s    *Source
	conn *pgx.Conn
	// xids are the transactions of the batch being completed: the read's
	// snapshot must see them all.
	xids []int64
}

func (r *rereader) close() {
	if r.conn != nil {
		r.conn.Close(context.Background())
		r.conn = nil
	}
}

// read implements reread.Read. A transaction's commit reaches the WAL, and
// so the stream, before it is visible to other transactions: the read's
// snapshot is checked to see every transaction of the batch, and taken
// again until it does, or the read could return values older than the
// change and overwrite newer ones in the topic.
func (r *rereader) read(ctx context.Context, t *cdc.Table, columns []int, rows [][]cdc.Value) (map[string][]cdc.Value, error) {
	if r.conn == nil {
		cc, err := connConfig(r.s.cfg.DSN, r.s.cfg.ApplicationName+" reread")
		if err != nil {
			return nil, err
		}
		if r.conn, err = pgx.ConnectConfig(ctx, cc); err != nil {
			return nil, fmt.Errorf("open the connection that reads rows back: %w", err)
		}
	}
	query := "COPY (" + rowsByKeyQuery(t, columns, rows) + ") TO STDOUT"
	var found map[string][]cdc.Value
	err := visible.Await(ctx, r.s.log, "reading rows back waits for transactions the stream has read to become visible", []any{"transactions", r.xids},
		func() (seen bool, err error) {
			found, seen, err = r.readIn(ctx, t, columns, query)
			return seen, err
		})
	if err != nil && ctx.Err() == nil {
		r.close() // a connection in an unknown state is not reused
	}
	return found, err
}

func (r *rereader) readIn(ctx context.Context, t *cdc.Table, columns []int, query string) (map[string][]cdc.Value, bool, error) {
	tx, err := r.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback(context.Background())
	// pgoutput gives 32-bit transaction ids; the snapshot's functions take
	// them with their epoch, which the snapshot's xmax has.
	var visible bool
	err = tx.QueryRow(ctx, `SELECT coalesce(bool_and(pg_catalog.txid_visible_in_snapshot(m.xmax - ((m.xmax - x) & 4294967295), s.snap)), true)
		FROM (SELECT pg_catalog.txid_current_snapshot() AS snap) s,
			LATERAL (SELECT pg_catalog.txid_snapshot_xmax(s.snap) AS xmax) m, unnest($1::bigint[]) x`, r.xids).Scan(&visible)
	if err != nil || !visible {
		return nil, false, err
	}
	found := map[string][]cdc.Value{}
	parser := &copyParser{columns: len(columns), arena: new(memory.Arena)} // these rows only, never reused
	parser.onRow = func(fields [][]byte) error {
		values := parser.arena.Row(len(t.Columns))
		for j, f := range fields {
			c := columns[j]
			if f == nil {
				continue // the zero Value is NULL
			}
			v, err := decodeText(t.Columns[c].Kind, t.Columns[c].WithTimeZone, f)
			if err != nil {
				return fmt.Errorf("column %s: %w", t.Columns[c].Name, err)
			}
			values[c] = v
		}
		key, _ := t.KeyOf(values)
		found[key] = values
		return nil
	}
	if _, err := tx.Conn().PgConn().CopyTo(ctx, parser, query); err != nil {
		return nil, false, err
	}
	return found, true, tx.Commit(ctx)
}

// rowsByKeyQuery selects columns of the rows of t with the primary keys of rows.
func rowsByKeyQuery(t *cdc.Table, columns []int, rows [][]cdc.Value) string {
	tuples := make([]string, len(rows))
	texts := make([]string, len(t.PrimaryKey))
	for i, row := range rows {
		for j, k := range t.PrimaryKey {
			texts[j] = literalText(row[k])
		}
		tuples[i] = "(" + keyLiterals(t, t.PrimaryKey, texts) + ")"
	}
	return "SELECT " + strings.Join(keyColumns(t, columns), ", ") + " FROM " + pgx.Identifier{t.Name.Schema, t.Name.Name}.Sanitize() +
		" WHERE (" + strings.Join(keyColumns(t, t.PrimaryKey), ", ") + ") IN (" + strings.Join(tuples, ", ") + ")"
}

// literalText is a value's text as PostgreSQL reads it back into its type.
func literalText(v cdc.Value) string {
	if v.Kind == cdc.KindBytes {
		return `\x` + hex.EncodeToString(v.Bytes)
	}
	return v.String()
}
