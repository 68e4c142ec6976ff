package mysql

import (
	"context"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
	"github.com/cdc-dev/cdc/sources/internal/snapshot"
)

// snapshot reads every mapped table in consistent-snapshot transactions on one
// view of the database, in primary-key chunks, and returns the binlog position
// that view sees: streaming from it neither misses nor repeats a change. With
// snapshot parallelism, worker connections read the chunks, each in a
// transaction on the same view.
//
// progress says how the snapshot's progress is stored. Nil stores none (a read
// for cdc verify). A zero Position starts a snapshot: before its first row, it
// passes down a marker that a snapshot is under way from its position, and
// waits until the marker is stored. The stored marker of an interrupted
// snapshot resumes it after its cursor. Each chunk is followed by the marker
// with the cursor after that chunk.
func (s *Source) snapshot(ctx context.Context, progress *Position, out chan<- cdc.Batch) (Position, error) {
	conn, err := s.snapshotConnection(ctx)
	if err != nil {
		return Position{}, err
	}
	defer conn.Close()
	var workers []*client.Conn
	defer func() {
		for _, w := range workers {
			w.Close()
		}
	}()
	if s.cfg.Parallelism > 1 {
		for range s.cfg.Parallelism {
			w, err := s.snapshotConnection(ctx)
			if err != nil {
				return Position{}, fmt.Errorf("open a snapshot worker connection (snapshot.parallelism %d): %w", s.cfg.Parallelism, err)
			}
			workers = append(workers, w)
		}
	}
	if progress != nil { // a read for cdc verify is not streamed from
		if err := s.waitPreparedXA(ctx, conn); err != nil {
			return Position{}, err
		}
	}
	pos, err := s.beginSnapshot(conn, workers)
	if err != nil {
		return Position{}, err
	}
	s.log.Info("snapshot started", "position", pos.String(), "tables", len(s.cfg.Tables))
	if workers != nil {
		s.log.Info("snapshot workers share one view", "workers", len(workers), "position", pos.String())
	}
	keys, err := s.chunkKeys(conn)
	if err != nil {
		return Position{}, err
	}
	reader := &chunkReader{s: s, conn: conn, workers: workers, keys: keys}
	if workers == nil {
		reader.workers = []*client.Conn{conn}
	}
	reader.memory = make([]memory.BatchMemory, len(reader.workers))
	run := snapshot.Chunked{Reader: reader, Tables: s.cfg.SnapshotTables(s.cfg.Tables), ChunkSize: s.cfg.ChunkSize, Workers: len(reader.workers),
		Progress: &s.progress, Log: s.log}
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
		run.Cursor = *progress.Cursor
		if err := run.Cursor.CheckKey(run.Cursor.Table, len(keys[run.Cursor.Table])); err != nil {
			return Position{}, err
		}
	}
	if progress != nil {
		run.Marker = func(cursor cdc.SnapshotCursor) cdc.Position {
			stored := *progress
			stored.Cursor = &cursor
			return stored.cdc()
		}
	}
	if err := run.Run(ctx, out); err != nil {
		return Position{}, err
	}
	if _, err := conn.Execute("COMMIT"); err != nil {
		return Position{}, fmt.Errorf("end the snapshot transaction: %w", err)
	}
	s.log.Info("snapshot finished", "position", pos.String())
	return pos, nil
}

// snapshotConnection opens a connection for a snapshot transaction. The
// pipeline may hold the reader back for a while (a slow broker): the server
// must wait rather than drop the connection.
func (s *Source) snapshotConnection(ctx context.Context) (*client.Conn, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	for _, stmt := range []string{"SET SESSION net_write_timeout = 3600", "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"} {
		if _, err := conn.Execute(stmt); err != nil {
			conn.Close()
			return nil, fmt.Errorf("snapshot session setup (%s): %w", stmt, err)
		}
	}
	return conn, nil
}

// sameViewAttempts is how often MariaDB workers try to open their
// transactions on one view without blocking writes.
const sameViewAttempts = 5

// beginSnapshot opens the snapshot transaction, and the workers' if any, and
// reads the binlog position they see. MariaDB reports each transaction's
// position, so transactions that report the same one see the same commits:
// no lock is taken unless writes keep landing between them. MySQL does not:
// writes are blocked (FLUSH TABLES WITH READ LOCK) only between opening the
// transactions and reading the position.
func (s *Source) beginSnapshot(conn *client.Conn, workers []*client.Conn) (Position, error) {
	if s.mariadb {
		for range sameViewAttempts {
			pos, same, err := s.startTransactions(conn, workers)
			if err != nil || same {
				return s.withGTID(conn, pos, err)
			}
			for _, c := range append([]*client.Conn{conn}, workers...) {
				if _, err := c.Execute("ROLLBACK"); err != nil {
					return Position{}, fmt.Errorf("restart the snapshot transactions: %w", err)
				}
			}
		}
		s.log.Info("writes kept landing while the snapshot workers opened their transactions: blocking writes until they are open (FLUSH TABLES WITH READ LOCK)", "workers", len(workers))
	}
	if _, err := conn.Execute("FLUSH TABLES WITH READ LOCK"); err != nil {
		hint := "FLUSH TABLES WITH READ LOCK needs RELOAD"
		if s.mariadb {
			hint += ", or set snapshot.parallelism: 1"
		}
		return Position{}, fmt.Errorf("lock writes while the snapshot starts (%s): %w", hint, err)
	}
	defer conn.Execute("UNLOCK TABLES")
	pos, _, err := s.startTransactions(conn, workers)
	if err != nil || s.mariadb {
		return s.withGTID(conn, pos, err)
	}
	return s.currentPosition(conn)
}

// startTransactions opens the snapshot transactions and, on MariaDB, says
// whether the workers' see the same binlog position as conn's. All are opened
// before any position is read: the less time between them, the less likely a
// commit lands in between.
func (s *Source) startTransactions(conn *client.Conn, workers []*client.Conn) (Position, bool, error) {
	for i, c := range append([]*client.Conn{conn}, workers...) {
		if _, err := c.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
			if i > 0 {
				err = fmt.Errorf("snapshot worker: %w", err)
			}
			return Position{}, false, fmt.Errorf("start the snapshot transaction: %w", err)
		}
	}
	if !s.mariadb {
		return Position{}, true, nil
	}
	pos, err := snapshotPosition(conn)
	if err != nil {
		return Position{}, false, err
	}
	same := true
	for _, w := range workers {
		seen, err := snapshotPosition(w)
		if err != nil {
			return Position{}, false, fmt.Errorf("snapshot worker: %w", err)
		}
		same = same && seen.File == pos.File && seen.Offset == pos.Offset
	}
	return pos, same, nil
}

// snapshotPosition is the binlog position a MariaDB snapshot transaction sees.
func snapshotPosition(conn *client.Conn) (Position, error) {
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
	return pos, nil
}

// withGTID adds the GTID set at a MariaDB position when positions are GTIDs.
func (s *Source) withGTID(conn *client.Conn, pos Position, err error) (Position, error) {
	if err != nil || !s.gtid {
		return pos, err
	}
	pos.GTIDSet, err = mariadbGTIDAt(conn, pos)
	return pos, err
}

// chunkReader implements snapshot.Reader: estimates and splits on the
// snapshot's own connection, reads on the workers'. A table whose key cannot
// be compared as a literal is read in one streamed query.
type chunkReader struct {
	s       *Source
	conn    *client.Conn
	workers []*client.Conn
	keys    map[cdc.TableName][]int // the columns each table is read in the order of
	memory  []memory.BatchMemory    // each worker's batches
}

func (r *chunkReader) Estimate(ctx context.Context, table cdc.TableName) (int64, error) {
	estimate, _, err := estimateRows(r.conn, table)
	return int64(estimate), err
}

// chunkKeys gives each table the columns its chunks follow: its primary key,
// or else the columns of a unique index on NOT NULL columns, which identify
// its rows as well (the index InnoDB itself would cluster on). A table with
// neither, or whose key cannot be written as a literal, is read in one query,
// whole again after an interruption.
func (s *Source) chunkKeys(conn *client.Conn) (map[cdc.TableName][]int, error) {
	keys := map[cdc.TableName][]int{}
	for _, name := range s.cfg.Tables {
		d := s.tables[name]
		key := d.table.PrimaryKey
		if len(key) == 0 && len(d.table.UniqueKeys) > 0 {
			key = d.table.UniqueKeys[0] // the smallest
			s.log.Info("table without a primary key: read in chunks of a unique index on NOT NULL columns", "table", name.String(), "columns", columnNames(d.table, key))
		}
		if key = s.newTableQuery(d, key).key; key == nil {
			s.log.Warn("table without a primary key (or a unique index on NOT NULL columns) that compares as a literal: read in one query, and whole again if the snapshot is interrupted; add one to read it in chunks",
				"table", name.String())
		}
		keys[name] = key
	}
	return keys, nil
}

func columnNames(t *cdc.Table, key []int) []string {
	names := make([]string, len(key))
	for i, k := range key {
		names[i] = t.Columns[k].Name
	}
	return names
}

// Split reads the key n rows on, through the chunk key.
func (r *chunkReader) Split(ctx context.Context, table cdc.TableName, after []string, n int) ([]string, error) {
	q := r.s.newTableQuery(r.s.tables[table], r.keys[table])
	if len(q.key) == 0 {
		return nil, nil
	}
	query, err := q.keyAt(after, n)
	if err != nil {
		return nil, err
	}
	return q.readKey(r.conn, query)
}

// Read sends the chunk in batches, which the pipeline releases for reuse once
// it has mapped them.
func (r *chunkReader) Read(ctx context.Context, worker int, chunk snapshot.Chunk, limit int, out chan<- cdc.Batch) (int, []string, error) {
	s, memory := r.s, &r.memory[worker]
	q := s.newTableQuery(s.tables[chunk.Table], r.keys[chunk.Table])
	t := q.table
	batch := memory.Changes(s.cfg.BatchSize)
	send := func() error {
		select {
		case out <- memory.Batch(batch):
			s.progress.Add(t.Name, len(batch), s.log)
			batch = memory.Changes(s.cfg.BatchSize)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	query, err := q.chunk(chunk.After, chunk.UpTo, limit)
	if err != nil {
		return 0, nil, fmt.Errorf("snapshot of table %s, chunk after key %q: %w", t.Name, chunk.After, err)
	}
	rows := 0
	last, err := q.read(r.workers[worker], query, &memory.Arena, func(values []cdc.Value) error {
		batch = append(batch, cdc.Change{Table: t, Op: cdc.OpRead, After: values})
		rows++
		if len(batch) == cap(batch) || memory.Full() {
			return send()
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, fmt.Errorf("snapshot of table %s: %w", t.Name, err)
	}
	if len(batch) > 0 {
		if err := send(); err != nil {
			return 0, nil, err
		}
	}
	if len(q.key) == 0 {
		last = nil
	}
	return rows, last, nil
}

// tableQuery reads a table in the order of a key, a chunk per query.
type tableQuery struct {
	table    *cdc.Table
	decoders []*decoder
	base     string // SELECT ... FROM the table
	key      []int  // nil: no key that compares as a literal, so one query
	lastKey  []keyValue
}

// newTableQuery reads in the order of the key columns given; without any, or
// with one whose values cannot be written back as literals, it reads the
// table whole.
func (s *Source) newTableQuery(d *described, key []int) *tableQuery {
	t := d.table
	q := &tableQuery{table: t, key: key, decoders: make([]*decoder, len(d.types))}
	selectList := make([]string, len(d.types))
	for i, ct := range d.types {
		q.decoders[i] = newDecoder(ct, t.Columns[i], s.cfg.ZeroDates)
		selectList[i] = selectExpression(ct)
	}
	for _, k := range q.key {
		if literalKind(d.types[k], t.Columns[k].Kind) == "" {
			q.key = nil
		}
	}
	q.base = "SELECT " + strings.Join(selectList, ", ") + " FROM " + quoteTable(t.Name)
	q.lastKey = make([]keyValue, len(q.key))
	return q
}

// selectExpression reads a column in the form its decoder's snapshot reads.
func selectExpression(ct columnType) string {
	name := quoteIdentifier(ct.name)
	switch {
	case ct.base == "float":
		return name + " + 0e0" // a double prints every digit of the float
	case ct.readsRaw():
		// Its bytes, decoded as the binlog's are: the server's conversion
		// would turn bytes its charset lacks into '?'.
		return "CAST(" + name + " AS BINARY)"
	}
	return name
}

// chunk is the query of the rows after the key given (nil: from the first)
// and at most upTo (nil: to the last), at most limit of them when limit > 0;
// or of the whole table when it has no usable key.
func (q *tableQuery) chunk(after, upTo []string, limit int) (string, error) {
	if len(q.key) == 0 {
		return q.base, nil
	}
	return q.keyRange(q.base, after, upTo, limit, 0)
}

// keyAt is the query of the key of the n-th row after the key given.
func (q *tableQuery) keyAt(after []string, n int) (string, error) {
	selectKey := make([]string, len(q.key))
	for i, k := range q.key {
		selectKey[i] = quoteIdentifier(q.table.Columns[k].Name)
	}
	return q.keyRange("SELECT "+strings.Join(selectKey, ", ")+" FROM "+quoteTable(q.table.Name), after, nil, 1, n-1)
}

func (q *tableQuery) keyRange(base string, after, upTo []string, limit, offset int) (string, error) {
	var where []string
	for _, bound := range []struct {
		key    []string
		before bool
	}{{after, false}, {upTo, true}} {
		if bound.key == nil {
			continue
		}
		literals := make([]string, len(q.key))
		for j, k := range q.key {
			var err error
			if literals[j], err = keyLiteral(q.decoders[k].t, q.table.Columns[k].Kind, bound.key[j]); err != nil {
				return "", err
			}
		}
		if bound.before {
			where = append(where, "("+keysetUpTo(q.table, q.key, literals)+")")
		} else {
			where = append(where, "("+keysetAfter(q.table, q.key, literals)+")")
		}
	}
	query := base
	if where != nil {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	order := make([]string, len(q.key))
	for i, k := range q.key {
		order[i] = quoteIdentifier(q.table.Columns[k].Name)
	}
	query += " ORDER BY " + strings.Join(order, ", ")
	if limit > 0 {
		query += " LIMIT " + strconv.Itoa(limit)
	}
	if offset > 0 {
		query += " OFFSET " + strconv.Itoa(offset)
	}
	return query, nil
}

// readKey runs keyAt's query and returns the key it finds, nil if none.
func (q *tableQuery) readKey(conn *client.Conn, query string) ([]string, error) {
	var result mysql.Result
	var key []string
	err := conn.ExecuteSelectStreaming(query, &result, func(row []mysql.FieldValue) error {
		key = make([]string, len(row))
		for j := range row {
			var kv keyValue
			kv.keep(&row[j])
			key[j] = kv.text()
		}
		return nil
	}, nil)
	return key, err
}

// read runs a chunk's query, decodes each row into the arena and hands it to
// onRow, and returns the last row's key.
func (q *tableQuery) read(conn *client.Conn, query string, arena *memory.Arena, onRow func([]cdc.Value) error) (last []string, err error) {
	var result mysql.Result
	read := false
	err = conn.ExecuteSelectStreaming(query, &result, func(row []mysql.FieldValue) error {
		values, err := q.decode(row, arena)
		if err != nil {
			return err
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

// decode decodes a row of the text protocol into values carved from the arena.
func (q *tableQuery) decode(row []mysql.FieldValue, arena *memory.Arena) ([]cdc.Value, error) {
	t := q.table
	if len(row) != len(q.decoders) {
		return nil, fmt.Errorf("table %s has %d columns, not the %d described: its definition changed during the snapshot; restart cdc", t.Name, len(row), len(q.decoders))
	}
	values := arena.Row(len(row))
	for i := range row {
		v, err := q.decoders[i].snapshot(&row[i], arena)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w%s", t.Columns[i].Name, err, zeroDateHint(err))
		}
		values[i] = v
	}
	return values, nil
}

// literalKind says how a key value is written back into a query, or "" when a
// literal would not compare as ORDER BY sorts the column: floats and JSON;
// ENUM and SET, which sort by their index but compare with text as text; BIT,
// which the text protocol sends as raw bytes. Text compares under the
// column's collation either way (a literal yields to a column's collation).
func literalKind(t columnType, k cdc.Kind) string {
	switch t.base {
	case "enum", "set", "bit", "geometry":
		return ""
	}
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
func keyLiteral(t columnType, k cdc.Kind, text string) (string, error) {
	switch literalKind(t, k) {
	case "text":
		charset := "utf8mb4"
		if t.readsRaw() {
			charset = t.charset // the key was read as the column's own bytes
		}
		return "_" + charset + " X'" + hex.EncodeToString([]byte(text)) + "'", nil
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
	return keyset(t, key, last, ">", ">")
}

// keysetUpTo is the condition for rows up to and including the key (a, b, c):
// a < x OR (a = x AND b < y) OR (a = x AND b = y AND c <= z).
func keysetUpTo(t *cdc.Table, key []int, last []string) string {
	return keyset(t, key, last, "<", "<=")
}

func keyset(t *cdc.Table, key []int, last []string, op, lastOp string) string {
	var or []string
	for i := range key {
		var and []string
		for j := 0; j < i; j++ {
			and = append(and, quoteIdentifier(t.Columns[key[j]].Name)+" = "+last[j])
		}
		cmp := op
		if i == len(key)-1 {
			cmp = lastOp
		}
		and = append(and, quoteIdentifier(t.Columns[key[i]].Name)+" "+cmp+" "+last[i])
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
