package mysql

import (
	"context"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/cdc-dev/cdc"
)

// snapshot reads every mapped table in one consistent-snapshot transaction and
// returns the binlog position that transaction sees: streaming from it neither
// misses nor repeats a change.
//
// progress says how the snapshot's progress is stored. Nil stores none (a read
// for cdc verify). A zero Position starts a snapshot: before its first row, it
// passes down a marker that a snapshot is under way from its position, and
// waits until the marker is stored. The stored marker of an interrupted
// snapshot resumes it after its cursor. Each chunk's last batch carries the
// marker with the cursor after that chunk.
func (s *Source) snapshot(ctx context.Context, progress *Position, out chan<- cdc.Batch) (Position, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return Position{}, err
	}
	defer conn.Close()
	// The pipeline may hold the reader back for a while (a slow broker): the
	// server must wait rather than drop the connection.
	for _, stmt := range []string{"SET SESSION net_write_timeout = 3600", "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"} {
		if _, err := conn.Execute(stmt); err != nil {
			return Position{}, fmt.Errorf("snapshot session setup (%s): %w", stmt, err)
		}
	}
	pos, err := s.beginSnapshot(conn)
	if err != nil {
		return Position{}, err
	}
	s.log.Info("snapshot started", "position", pos.String(), "tables", len(s.cfg.Tables))
	var cursor cdc.SnapshotCursor
	switch {
	case progress == nil:
	case progress.File == "":
		// No row may reach a topic before a restart can know that a snapshot
		// was under way: it would stay there, stale, if deleted before the
		// restart.
		*progress = pos
		progress.Snapshot = true
		if err := s.mark(ctx, *progress, out); err != nil {
			return Position{}, err
		}
		if err := s.waitStored(ctx, *progress); err != nil {
			return Position{}, err
		}
	case progress.Cursor != nil:
		cursor = *progress.Cursor
	}
	for _, name := range s.cfg.Tables {
		after, read := cursor.Resume(name)
		if !read {
			continue
		}
		var marker func(after []string, finished bool) cdc.Position
		if progress != nil {
			marker = func(after []string, finished bool) cdc.Position {
				cursor = cursor.Advance(name, after, finished)
				stored := *progress
				stored.Cursor = &cursor
				return stored.cdc()
			}
		}
		if err := s.snapshotTable(ctx, conn, s.tables[name], after, marker, out); err != nil {
			return Position{}, err
		}
	}
	if _, err := conn.Execute("COMMIT"); err != nil {
		return Position{}, fmt.Errorf("end the snapshot transaction: %w", err)
	}
	s.log.Info("snapshot finished", "position", pos.String())
	return pos, nil
}

// beginSnapshot opens the snapshot transaction and reads the binlog position it
// sees. MariaDB reports that position with the transaction itself, so no lock
// is taken. MySQL does not: writes are blocked (FLUSH TABLES WITH READ LOCK)
// only between opening the transaction and reading the position.
func (s *Source) beginSnapshot(conn *client.Conn) (Position, error) {
	const begin = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
	if s.mariadb {
		if _, err := conn.Execute(begin); err != nil {
			return Position{}, fmt.Errorf("start the snapshot transaction: %w", err)
		}
		res, err := conn.Execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
		if err != nil {
			return Position{}, fmt.Errorf("read the snapshot's binlog position: %w", err)
		}
		var pos Position
		for i := range res.RowNumber() {
			name, _ := res.GetString(i, 0)
			value, _ := res.GetString(i, 1)
			switch strings.ToLower(name) {
			case "binlog_snapshot_file":
				pos.File = value
			case "binlog_snapshot_position":
				n, _ := strconv.ParseUint(value, 10, 32)
				pos.Offset = uint32(n)
			}
		}
		if pos.File == "" {
			return Position{}, fmt.Errorf("the server reports no binlog_snapshot_file: is log_bin on?")
		}
		if s.gtid {
			pos.GTIDSet, err = mariadbGTIDAt(conn, pos)
		}
		return pos, err
	}
	if _, err := conn.Execute("FLUSH TABLES WITH READ LOCK"); err != nil {
		return Position{}, fmt.Errorf("lock writes while the snapshot starts (FLUSH TABLES WITH READ LOCK needs RELOAD): %w", err)
	}
	defer conn.Execute("UNLOCK TABLES")
	if _, err := conn.Execute(begin); err != nil {
		return Position{}, fmt.Errorf("start the snapshot transaction: %w", err)
	}
	return s.currentPosition(conn)
}

// snapshotTable reads a table in primary-key order after the key given, a
// chunk per query, so that memory stays flat and no query runs for long. A
// table whose key cannot be compared as a literal is read in one streamed
// query. With a marker, each chunk ends with a batch that carries the
// marker's position.
func (s *Source) snapshotTable(ctx context.Context, conn *client.Conn, d *described, after []string, marker func(after []string, finished bool) cdc.Position, out chan<- cdc.Batch) error {
	t := d.table
	started := time.Now()
	estimate, _, err := estimateRows(conn, t.Name)
	if err != nil {
		return fmt.Errorf("snapshot of table %s: %w", t.Name, err)
	}
	s.progress.Start(t.Name, int64(estimate))
	s.log.Info("snapshot of table started", "table", t.Name.String(), "estimated_rows", estimate, "resumed_after_key", after)
	q := s.newTableQuery(d)
	if len(q.key) == 0 {
		s.log.Info("snapshot of a table without a usable primary key: one query, read whole again if interrupted", "table", t.Name.String())
		after = nil
	}

	batch := make([]cdc.Change, 0, s.cfg.BatchSize)
	var arena cdc.Arena
	send := func(pos cdc.Position) error {
		select {
		case out <- cdc.Batch{Changes: batch, Position: pos, StoreNow: pos != ""}:
			s.progress.Add(t.Name, len(batch), s.log)
			batch = make([]cdc.Change, 0, s.cfg.BatchSize)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var rows int
	for {
		query, err := q.chunk(after, s.cfg.ChunkSize)
		if err != nil {
			return fmt.Errorf("snapshot of table %s, resumed after key %q: %w", t.Name, after, err)
		}
		read := 0
		last, err := q.read(conn, query, &arena, func(values []cdc.Value) error {
			batch = append(batch, cdc.Change{Table: t, Op: cdc.OpRead, After: values})
			read++
			if len(batch) == cap(batch) {
				return send("")
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("snapshot of table %s: %w", t.Name, err)
		}
		rows += read
		finished := len(q.key) == 0 || read < s.cfg.ChunkSize
		if !finished {
			after = last
		}
		if marker != nil {
			if err := send(marker(after, finished)); err != nil {
				return err
			}
		}
		if finished {
			break
		}
	}
	if len(batch) > 0 {
		if err := send(""); err != nil {
			return err
		}
	}
	s.progress.Finish(t.Name)
	s.log.Info("snapshot of table done", "table", t.Name.String(), "rows", rows, "seconds", time.Since(started).Round(time.Millisecond).Seconds())
	return nil
}

// tableQuery reads a table in primary-key order, a chunk per query.
type tableQuery struct {
	table    *cdc.Table
	decoders []*decoder
	base     string // SELECT ... FROM the table
	key      []int  // nil: no key that compares as a literal, so one query
	lastKey  []keyValue
}

func (s *Source) newTableQuery(d *described) *tableQuery {
	t := d.table
	q := &tableQuery{table: t, key: t.PrimaryKey, decoders: make([]*decoder, len(d.types))}
	selectList := make([]string, len(d.types))
	for i, ct := range d.types {
		q.decoders[i] = newDecoder(ct, t.Columns[i], s.cfg.ZeroDates)
		selectList[i] = quoteIdentifier(ct.name)
		if ct.base == "float" {
			selectList[i] += " + 0e0" // a double prints every digit of the float
		}
	}
	for _, k := range q.key {
		if literalKind(t.Columns[k].Kind) == "" {
			q.key = nil
		}
	}
	q.base = "SELECT " + strings.Join(selectList, ", ") + " FROM " + quoteTable(t.Name)
	q.lastKey = make([]keyValue, len(q.key))
	return q
}

// chunk is the query of the chunk after the key given (nil: the first), or
// of the whole table when it has no usable key.
func (q *tableQuery) chunk(after []string, limit int) (string, error) {
	if len(q.key) == 0 {
		return q.base, nil
	}
	query := q.base
	if after != nil {
		literals := make([]string, len(q.key))
		for j, k := range q.key {
			var err error
			if literals[j], err = keyLiteral(q.table.Columns[k].Kind, after[j]); err != nil {
				return "", err
			}
		}
		query += " WHERE " + keysetAfter(q.table, q.key, literals)
	}
	order := make([]string, len(q.key))
	for i, k := range q.key {
		order[i] = quoteIdentifier(q.table.Columns[k].Name)
	}
	return query + fmt.Sprintf(" ORDER BY %s LIMIT %d", strings.Join(order, ", "), limit), nil
}

// read runs a chunk's query, decodes each row into the arena and hands it to
// onRow, and returns the last row's key.
func (q *tableQuery) read(conn *client.Conn, query string, arena *cdc.Arena, onRow func([]cdc.Value) error) (last []string, err error) {
	t := q.table
	var result mysql.Result
	read := false
	err = conn.ExecuteSelectStreaming(query, &result, func(row []mysql.FieldValue) error {
		if len(row) != len(q.decoders) {
			return fmt.Errorf("table %s has %d columns, not the %d described: its definition changed during the snapshot; restart cdc", t.Name, len(row), len(q.decoders))
		}
		values := arena.Row(len(row))
		for i := range row {
			v, err := q.decoders[i].snapshot(&row[i], arena)
			if err != nil {
				return fmt.Errorf("column %s: %w%s", t.Columns[i].Name, err, zeroDateHint(err))
			}
			values[i] = v
		}
		// Kept raw: the text is needed only for the next chunk's query.
		for j, k := range q.key {
			q.lastKey[j].keep(&row[k])
		}
		read = true
		return onRow(values)
	}, nil)
	if err != nil || !read {
		return nil, err
	}
	last = make([]string, len(q.key))
	for j := range q.lastKey {
		last[j] = q.lastKey[j].text()
	}
	return last, nil
}

// literalKind says how a key value is written back into a query, or "" when a
// literal would not compare exactly like the column (floats, enums, JSON).
func literalKind(k cdc.Kind) string {
	switch k {
	case cdc.KindInt, cdc.KindUint, cdc.KindDecimal:
		return "number"
	case cdc.KindString:
		return "text"
	case cdc.KindBytes:
		return "bytes"
	case cdc.KindDate, cdc.KindTimestamp, cdc.KindDuration:
		return "quoted"
	}
	return ""
}

// keyValue is a key column's value as the server sent it, copied out of the
// driver's buffer (which the next row reuses).
type keyValue struct {
	typ    mysql.FieldValueType
	signed int64
	uns    uint64
	raw    []byte
}

func (kv *keyValue) keep(v *mysql.FieldValue) {
	kv.typ = v.Type
	switch v.Type {
	case mysql.FieldValueTypeSigned:
		kv.signed = v.AsInt64()
	case mysql.FieldValueTypeUnsigned:
		kv.uns = v.AsUint64()
	default:
		kv.raw = append(kv.raw[:0], v.AsString()...)
	}
}

// text is the value as the server prints it.
func (kv *keyValue) text() string {
	switch kv.typ {
	case mysql.FieldValueTypeSigned:
		return strconv.FormatInt(kv.signed, 10)
	case mysql.FieldValueTypeUnsigned:
		return strconv.FormatUint(kv.uns, 10)
	}
	return string(kv.raw)
}

var (
	numberLiteral = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	quotedLiteral = regexp.MustCompile(`^-?[0-9][0-9 :.-]*$`)
)

// keyLiteral renders a key value's text for a query. Text goes in hex with a
// charset introducer, so that it compares under the column's collation and no
// byte of it is ever parsed as SQL. The other forms are checked, since a
// resumed snapshot reads them back from the checkpoint.
func keyLiteral(k cdc.Kind, text string) (string, error) {
	switch literalKind(k) {
	case "text":
		return "_utf8mb4 X'" + hex.EncodeToString([]byte(text)) + "'", nil
	case "bytes":
		return "X'" + hex.EncodeToString([]byte(text)) + "'", nil
	case "quoted":
		if quotedLiteral.MatchString(text) {
			return "'" + text + "'", nil
		}
	case "number":
		if numberLiteral.MatchString(text) {
			return text, nil
		}
	}
	return "", fmt.Errorf("%q is not a key value of a %s column", text, k)
}

// keysetAfter is the condition for rows after the key (a, b, c) in index order:
// a > x OR (a = x AND b > y) OR (a = x AND b = y AND c > z). Both servers turn it
// into an index range; a row constructor comparison they may not.
func keysetAfter(t *cdc.Table, key []int, last []string) string {
	var or []string
	for i := range key {
		var and []string
		for j := 0; j < i; j++ {
			and = append(and, quoteIdentifier(t.Columns[key[j]].Name)+" = "+last[j])
		}
		and = append(and, quoteIdentifier(t.Columns[key[i]].Name)+" > "+last[i])
		or = append(or, "("+strings.Join(and, " AND ")+")")
	}
	return strings.Join(or, " OR ")
}

// ReadTables implements cdc.TableReader: the snapshot's consistent read,
// without the marker that would tell a restart a snapshot is under way.
func (s *Source) ReadTables(ctx context.Context, out chan<- cdc.Batch) error {
	_, err := s.snapshot(ctx, nil, out)
	return err
}
