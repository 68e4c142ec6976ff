// Package mysql is the MySQL and MariaDB source: a consistent snapshot of the
// mapped tables read in primary-key chunks, handed over at the exact binlog
// position the snapshot saw, then the binlog streamed as a replica would
// (go-mysql's BinlogSyncer), with column names and types taken from the binlog's
// own table-map events (binlog_row_metadata=FULL), never from a DDL parser.
package mysql

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/sources"
	"github.com/cdc-dev/cdc/sources/internal/reread"
	"github.com/cdc-dev/cdc/sources/internal/snapshot"
)

// Defaults for Config fields left zero.
const (
	// DefaultDeadAfter is how long the stream may stay silent (no event, no
	// heartbeat) while cdc waits for it before the connection counts as lost.
	DefaultDeadAfter = 15 * time.Second
	// statusTimeout bounds each read and write of the log-status connection.
	statusTimeout = 10 * time.Second
	// closeTimeout bounds closing the binlog connection, which opens another
	// connection to KILL it: on a dead network path that one hangs too.
	closeTimeout = 5 * time.Second
)

// Config configures the source.
type Config struct {
	// DSN is user:password@tcp(host:port)/database or mysql://user:password@host:port/database.
	DSN string
	// ServerID identifies cdc as a replica; it must differ from every server's
	// and replica's server_id in the topology. Zero derives one from Name.
	ServerID uint32
	// Name is the connector's name, for the default server id and the host name
	// the replica registers with.
	Name   string
	Tables []cdc.TableName
	// UseGTID chooses GTID positions when the server has them (MariaDB always;
	// MySQL with gtid_mode=ON); otherwise positions are binlog file and offset.
	UseGTID   bool
	ZeroDates ZeroDates
	// WatermarkTable, if set, is the table of the connector's own where a
	// backfill writes its watermarks; cdc creates it. Without it, entities
	// cannot be backfilled while streaming.
	WatermarkTable cdc.TableName
	// TLS, if set, secures every connection to the server (snapshot, binlog,
	// checks); without it the DSN's tls parameter decides.
	TLS *tls.Config
	// AcceptUnloggedCascades lists the mapped tables whose changes by
	// cascading foreign keys (never in the binlog) the operator accepts to
	// miss: Check warns of them instead of refusing them.
	AcceptUnloggedCascades []cdc.TableName
	// Settings.HeartbeatInterval is also how often the server sends a
	// heartbeat on an idle binlog.
	sources.Settings
}

// DefaultServerID derives a stable replica server id from the connector name, in
// a range (1000000000-1999999999) that hand-numbered servers rarely use.
func DefaultServerID(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return 1_000_000_000 + h.Sum32()%1_000_000_000
}

// Source reads one MySQL or MariaDB server. It implements cdc.Source.
type Source struct {
	// readBack counts the rows read back for values the log left out
	// (cdc.ReadBackReporter).
	readBack reread.Counter
	cfg      Config
	log      *slog.Logger
	endpoint endpoint
	tls      *tls.Config  // nil: plaintext
	conn     *client.Conn // catalog and checks
	mariadb  bool
	// rowImage is the server's binlog_row_image (FULL, MINIMAL, NOBLOB); a session may log otherwise.
	rowImage string
	gtid     bool
	// collations maps collation ids (as the binlog names charsets) to charsets.
	collations map[uint64]string
	tables     map[cdc.TableName]*described
	// view reads aggregate entities back (see ReadView).
	view viewConn
	// acknowledged is the last position stored downstream.
	acknowledged atomic.Pointer[cdc.Position]

	progress snapshot.Progress
	// fill is the backfill asked for the next Run, if any.
	fill *cdc.Backfill
	// statusConn is opened on the first LogStatus, so that a status query
	// never waits for another user of conn.
	statusMu   sync.Mutex
	statusConn *client.Conn
	// statusBusy is the status connection while a call uses it: Close closes
	// it without waiting for the call, which a dead network path would hold
	// for the connection's timeouts.
	statusBusy atomic.Pointer[client.Conn]
	closed     atomic.Bool
}

// described is a table as the catalog describes it.
type described struct {
	table *cdc.Table
	types []columnType
}

var _ cdc.Source = (*Source)(nil)

// New connects to the server.
func New(ctx context.Context, cfg Config) (*Source, error) {
	cfg.Settings = cfg.Settings.WithDefaults(DefaultDeadAfter)
	if cfg.ZeroDates == "" {
		cfg.ZeroDates = ZeroDatesError
	}
	if cfg.ServerID == 0 {
		cfg.ServerID = DefaultServerID(cfg.Name)
	}
	ep, err := parseDSN(cfg.DSN)
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, log: cfg.Logger, endpoint: ep, tables: map[cdc.TableName]*described{}}
	s.tls = s.tlsConfig()
	if s.conn, err = s.connect(ctx); err != nil {
		return nil, err
	}
	s.mariadb = strings.Contains(strings.ToLower(s.conn.GetServerVersion()), "mariadb")
	if err := s.loadServerFacts(); err != nil {
		s.conn.Close()
		return nil, err
	}
	return s, nil
}

// tlsConfig is the TLS of every connection: the configuration's, or the
// DSN's tls parameter (nil: none).
func (s *Source) tlsConfig() *tls.Config {
	c := s.cfg.TLS
	switch {
	case c != nil:
		c = c.Clone()
	case s.endpoint.tls == "true":
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	case s.endpoint.tls == "skip-verify":
		c = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}
		s.log.Warn("source.dsn has tls=skip-verify: the connection to MySQL is encrypted, but its certificate is not verified; anyone on the network path can read and change it (set source.mysql.tls with ca_file)")
	default:
		return nil
	}
	if c.ServerName == "" {
		c.ServerName = s.endpoint.host // the name verify-full checks
	}
	return c
}

// connect opens a session whose text results are UTF-8 and whose TIMESTAMPs
// read in UTC, over TLS when configured.
func (s *Source) connect(ctx context.Context, options ...client.Option) (*client.Conn, error) {
	if s.tls != nil {
		options = append([]client.Option{func(c *client.Conn) error { c.SetTLSConfig(s.tls); return nil }}, options...)
	}
	conn, err := client.ConnectWithContext(ctx, s.endpoint.addr(), s.endpoint.user, s.endpoint.password, "", 10*time.Second, options...)
	if err != nil {
		return nil, classify(fmt.Errorf("connect to MySQL at %s as %s: %w", s.endpoint.addr(), s.endpoint.user, err))
	}
	for _, stmt := range []string{"SET NAMES utf8mb4", "SET time_zone = '+00:00'"} {
		if _, err := conn.Execute(stmt); err != nil {
			conn.Close()
			return nil, fmt.Errorf("MySQL session setup (%s): %w", stmt, err)
		}
	}
	return conn, nil
}

func (s *Source) loadServerFacts() error {
	res, err := s.conn.Execute(`SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("read the server's collations: %w", err)
	}
	s.collations = map[uint64]string{}
	for i := range res.RowNumber() {
		id, _ := res.GetUint(i, 0)
		charset, _ := res.GetString(i, 1)
		s.collations[id] = charset
	}
	image, err := s.variable("binlog_row_image")
	if err != nil {
		return err
	}
	s.rowImage = strings.ToUpper(image)
	s.gtid = s.cfg.UseGTID && s.mariadb
	if s.cfg.UseGTID && !s.mariadb {
		mode, err := s.variable("gtid_mode")
		if err != nil {
			return err
		}
		s.gtid = mode == "ON"
	}
	return nil
}

func (s *Source) flavor() string {
	if s.mariadb {
		return mysql.MariaDBFlavor
	}
	return mysql.MySQLFlavor
}

// variable reads a global system variable; a missing one reads as "".
func (s *Source) variable(name string) (string, error) {
	res, err := s.conn.Execute("SHOW GLOBAL VARIABLES LIKE '" + name + "'")
	if err != nil {
		return "", fmt.Errorf("read @@%s: %w", name, err)
	}
	if res.RowNumber() == 0 {
		return "", nil
	}
	return res.GetString(0, 1)
}

// Describe implements cdc.Source.
func (s *Source) Describe(ctx context.Context, names []cdc.TableName) ([]*cdc.Table, error) {
	tables := make([]*cdc.Table, len(names))
	for i, name := range names {
		d, err := s.describe(s.conn, name)
		if err != nil {
			return nil, classify(err)
		}
		s.tables[name] = d
		tables[i] = d.table
	}
	return tables, nil
}

func (s *Source) describe(conn *client.Conn, name cdc.TableName) (*described, error) {
	res, err := conn.Execute(`SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COALESCE(NUMERIC_PRECISION, 0),
		COALESCE(NUMERIC_SCALE, 0), COALESCE(DATETIME_PRECISION, 0), COALESCE(CHARACTER_SET_NAME, ''),
		COALESCE(CHARACTER_OCTET_LENGTH, 0)
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, name.Schema, name.Name)
	if err != nil {
		return nil, fmt.Errorf("describe table %s: %w", name, err)
	}
	if res.RowNumber() == 0 {
		return nil, s.missingTable(conn, name)
	}
	d := &described{table: &cdc.Table{Name: name}}
	var errs []string
	for i := range res.RowNumber() {
		str := func(col int) string { v, _ := res.GetString(i, col); return v }
		num := func(col int) int { v, _ := res.GetInt(i, col); return int(v) }
		dataType := strings.ToLower(str(1))
		columnType := columnType{
			name: str(0), base: catalogBase(dataType), databaseType: str(2),
			unsigned: strings.Contains(strings.ToLower(str(2)), "unsigned"), nullable: str(3) == "YES",
			charset: str(7),
		}
		switch columnType.base {
		case "decimal":
			columnType.precision, columnType.scale = num(4), num(5)
		case "bit":
			columnType.bits = num(4)
		case "datetime", "timestamp", "time":
			columnType.fsp = num(6)
		case "binary":
			columnType.length = num(8)
		case "varbinary", "blob", "geometry":
			columnType.charset = "binary"
		}
		c, err := columnType.column(s.cfg.ZeroDates)
		if err != nil {
			errs = append(errs, fmt.Sprintf("table %s: %v", name, err))
		}
		d.table.Columns = append(d.table.Columns, c)
		d.types = append(d.types, columnType)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	if err := readKeys(conn, d); err != nil {
		return nil, err
	}
	d.table.Identity = rowImageIdentity(s.rowImage, d.table, d.types)
	return d, nil
}

// rowImageIdentity is the columns the old row images of a table hold under
// the server's binlog_row_image (see cdc.Table.Identity): MINIMAL logs the
// primary key, NOBLOB every column but the blobs and texts outside it; a
// table without a primary key gets whole old rows under both.
func rowImageIdentity(rowImage string, t *cdc.Table, types []columnType) []int {
	if len(t.PrimaryKey) == 0 {
		return nil
	}
	switch rowImage {
	case "MINIMAL":
		return append([]int{}, t.PrimaryKey...)
	case "NOBLOB":
		var identity []int
		for i, ct := range types {
			switch ct.base {
			case "blob", "text", "json", "geometry":
				if !slices.Contains(t.PrimaryKey, i) {
					continue
				}
			}
			identity = append(identity, i)
		}
		return identity
	}
	return nil
}

// readKeys puts the primary key's columns in index order, which is also the
// order snapshot chunks follow, and finds the table's unique keys: unique
// indexes on whole NOT NULL columns, smallest first.
func readKeys(conn *client.Conn, d *described) error {
	t := d.table
	res, err := conn.Execute(`SELECT INDEX_NAME, COLUMN_NAME, SUB_PART IS NULL FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`, t.Name.Schema, t.Name.Name)
	if err != nil {
		return fmt.Errorf("read the keys of %s: %w", t.Name, err)
	}
	indexes := map[string][]int{}
	var order []string
	unusable := map[string]bool{}
	for i := range res.RowNumber() {
		index, _ := res.GetString(i, 0)
		column, _ := res.GetString(i, 1)
		whole, _ := res.GetInt(i, 2)
		c := t.Column(column)
		if c < 0 || whole == 0 || d.types[c].nullable {
			unusable[index] = true
		}
		if _, seen := indexes[index]; !seen {
			order = append(order, index)
		}
		indexes[index] = append(indexes[index], c)
	}
	t.PrimaryKey, t.UniqueKeys = nil, nil
	for _, index := range order {
		switch {
		case index == "PRIMARY":
			t.PrimaryKey = indexes[index]
		case !unusable[index]:
			t.UniqueKeys = append(t.UniqueKeys, indexes[index])
		}
	}
	slices.SortStableFunc(t.UniqueKeys, func(a, b []int) int { return len(a) - len(b) })
	return nil
}

// missingTable names the tables the database does have, to catch typos.
func (s *Source) missingTable(conn *client.Conn, name cdc.TableName) error {
	res, err := conn.Execute(`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME LIMIT 20`, name.Schema)
	if err != nil || res.RowNumber() == 0 {
		return fmt.Errorf("table %s does not exist (dropped or renamed since it was mapped? No database %s with tables, or no privilege to see them)", name, name.Schema)
	}
	var have []string
	for i := range res.RowNumber() {
		t, _ := res.GetString(i, 0)
		have = append(have, t)
	}
	return fmt.Errorf("table %s does not exist (dropped or renamed since it was mapped? Or a typo); database %s has: %s", name, name.Schema, strings.Join(have, ", "))
}

// Acknowledge implements cdc.Source. A MySQL server keeps its binlog by its own
// expiry settings, not by what a replica has read: there is nothing to confirm
// to it. The source itself waits for one acknowledgement (see snapshot).
func (s *Source) Acknowledge(pos cdc.Position) { s.acknowledged.Store(&pos) }

// waitStored waits until pos is stored downstream.
func (s *Source) waitStored(ctx context.Context, pos Position) error {
	want := pos.cdc()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if p := s.acknowledged.Load(); p != nil && *p == want {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close implements cdc.Source.
func (s *Source) Close() error {
	s.closed.Store(true)
	if busy := s.statusBusy.Load(); busy != nil {
		busy.Close() // the call under way fails now
	}
	// A status call still opening its connection closes it itself.
	if s.statusMu.TryLock() {
		if s.statusConn != nil {
			s.statusConn.Close()
			s.statusConn = nil
		}
		s.statusMu.Unlock()
	}
	s.closeView()
	return s.conn.Close()
}

// SnapshotProgress implements cdc.ProgressReporter.
func (s *Source) SnapshotProgress() []cdc.TableProgress { return s.progress.Tables() }

// LogStatus implements cdc.LogReporter from the server's list of binlogs and
// its expiry setting, on a connection of its own. The server purges binlogs
// by age only (a size limit, where the server has one, is not read).
func (s *Source) LogStatus(ctx context.Context) (cdc.LogStatus, error) {
	var st cdc.LogStatus
	err := s.onStatusConn(ctx, func(conn *client.Conn) (err error) {
		st, err = s.logStatus(conn)
		return err
	})
	return st, err
}

// onStatusConn runs fn on the status connection, opening it if needed; a
// failed call closes it, to be opened again on the next.
func (s *Source) onStatusConn(ctx context.Context, fn func(*client.Conn) error) error {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	defer func() {
		if s.closed.Load() && s.statusConn != nil { // closed while this call was under way
			s.statusConn.Close()
			s.statusConn = nil
		}
	}()
	if s.closed.Load() {
		return errors.New("the source is closed")
	}
	if s.statusConn == nil {
		// Its queries answer at once: a server that stays silent longer is
		// unreachable, and the reading must fail rather than hang.
		conn, err := s.connect(ctx, func(c *client.Conn) error {
			c.ReadTimeout, c.WriteTimeout = statusTimeout, statusTimeout
			return nil
		})
		if err != nil {
			return err
		}
		s.statusConn = conn
	}
	s.statusBusy.Store(s.statusConn)
	err := fn(s.statusConn)
	s.statusBusy.Store(nil)
	if err != nil {
		s.statusConn.Close()
		s.statusConn = nil
	}
	return err
}

var _ cdc.Rechecker = (*Source)(nil)

// Recheck implements cdc.Rechecker on the status connection. The binlog
// shows a mapped table dropped or renamed (the stream stops there); what it
// does not tell the mapping is a key changed so that an entity's key no
// longer identifies rows, which the pipeline checks on the tables described
// here.
func (s *Source) Recheck(ctx context.Context) ([]*cdc.Table, error) {
	var tables []*cdc.Table
	err := s.onStatusConn(ctx, func(conn *client.Conn) error {
		for _, name := range s.cfg.Tables {
			d, err := s.describe(conn, name)
			if err != nil {
				return err
			}
			tables = append(tables, d.table)
		}
		return nil
	})
	return tables, classify(err)
}

func (s *Source) logStatus(conn *client.Conn) (cdc.LogStatus, error) {
	st := cdc.LogStatus{SafeBytes: -1}
	vars, err := conn.Execute("SHOW VARIABLES WHERE Variable_name IN ('binlog_expire_logs_seconds', 'expire_logs_days')")
	if err != nil {
		return cdc.LogStatus{}, fmt.Errorf("read the binlog expiry: %w", err)
	}
	var seconds, days float64
	for i := range vars.RowNumber() {
		name, _ := vars.GetString(i, 0)
		value, _ := vars.GetString(i, 1)
		n, _ := strconv.ParseFloat(value, 64)
		if name == "expire_logs_days" {
			days = n
		} else {
			seconds = n
		}
	}
	if seconds == 0 {
		seconds = days * 86400
	}
	st.KeptFor = time.Duration(seconds * float64(time.Second))
	logs, err := conn.Execute("SHOW BINARY LOGS")
	if err != nil {
		return cdc.LogStatus{}, fmt.Errorf("list the binlogs (needs REPLICATION CLIENT / BINLOG MONITOR): %w", err)
	}
	acked := s.acknowledged.Load()
	if acked == nil {
		return st, nil // nothing stored yet: nothing held back
	}
	pos, err := ParsePosition(string(*acked))
	if err != nil {
		return cdc.LogStatus{}, err
	}
	found := false
	for i := range logs.RowNumber() {
		name, _ := logs.GetString(i, 0)
		size, _ := logs.GetInt(i, 1)
		switch {
		case name == pos.File:
			found = true
			st.BehindBytes += max(size-int64(pos.Offset), 0)
		case found:
			st.BehindBytes += size
		}
	}
	st.Lost = !found
	return st, nil
}

// erConnectionKilled is MariaDB's ER_CONNECTION_KILLED (KILL CONNECTION).
const erConnectionKilled = 1927

// classify marks as transient the server's answers that pass by themselves:
// shutting down, too many connections, this connection killed; and the
// driver's "connection was bad", which hides the network error under it (a
// server restarting under a query). Other failures of the network path are
// transient already (cdc.IsTransient); any other answer, such as a purged
// binlog or missing privileges, needs the operator.
func classify(err error) error {
	if errors.Is(err, mysql.ErrBadConn) {
		return cdc.Transient(err)
	}
	var myErr *mysql.MyError
	if errors.As(err, &myErr) {
		switch myErr.Code {
		case mysql.ER_SERVER_SHUTDOWN:
			return cdc.Restarting(err)
		case mysql.ER_CON_COUNT_ERROR, erConnectionKilled:
			return cdc.Transient(err)
		}
	}
	return err
}

// Run implements cdc.Source. Its errors are classified (see classify).
func (s *Source) Run(ctx context.Context, from cdc.Position, out chan<- cdc.Batch) error {
	return classify(s.run(ctx, from, out))
}

func (s *Source) run(ctx context.Context, from cdc.Position, out chan<- cdc.Batch) error {
	for _, name := range s.cfg.Tables {
		if _, ok := s.tables[name]; !ok {
			if _, err := s.Describe(ctx, []cdc.TableName{name}); err != nil {
				return err
			}
		}
	}
	if s.cfg.Snapshot == cdc.SnapshotOnly && from != "" {
		if pos, err := ParsePosition(string(from)); err == nil && !pos.Snapshot {
			return fmt.Errorf("the connector's snapshot is done and it has streamed since (stored position %s): cdc run goes on from there. To fill entities again while it streams, run cdc snapshot --online --entity NAME; to rebuild from scratch, stop cdc run and delete the checkpoint (a tombstone for the connector's key in the checkpoint topic), then run cdc snapshot", from)
		}
	}
	start, err := s.prepare(ctx, from, out)
	if err == nil && s.cfg.Snapshot == cdc.SnapshotOnly {
		s.log.Info("snapshot stored; streaming starts from its position on the next run", "position", start.String())
		return nil
	}
	if err == nil {
		// With GTIDs the server is the one to find a stored position gone,
		// when the stream starts: nothing was read from it then.
		err = s.stream(ctx, start, out)
	}
	if from != "" && s.snapshotAgain(err) {
		return s.run(ctx, "", out)
	}
	return err
}

// prepare decides where streaming starts, taking the snapshot first if one is due.
func (s *Source) prepare(ctx context.Context, from cdc.Position, out chan<- cdc.Batch) (Position, error) {
	var pos Position
	var err error
	switch {
	case from != "":
		if pos, err = ParsePosition(string(from)); err != nil {
			return Position{}, fmt.Errorf("stored checkpoint: %w", err)
		}
		if err := s.checkAvailable(pos); err != nil {
			return Position{}, err
		}
		if p := pos.Prepared; p != nil { // where streaming starts
			if err := s.checkAvailable(Position{File: p.File, Offset: p.Offset, GTIDSet: p.GTIDSet}); err != nil {
				return Position{}, err
			}
		}
		if !pos.Snapshot {
			s.log.Info("resuming", "position", pos.String())
			if s.fill == nil {
				return s.resumeBackfill(pos), nil
			}
			// Stored at once: the entities it fills are stored with it (the
			// checkpoint's entity list), so a restart knows it is under way.
			pos = s.resumeBackfill(pos)
			return pos, s.mark(ctx, pos, out)
		}
		// The first snapshot was interrupted. Its consistent read is gone: read
		// the chunks it had not read as the tables are now, then replay the
		// binlog from where the first snapshot started, which holds the
		// changes of rows it had already sent. Every key ends with its latest
		// value, but may show older values once more on the way.
		s.log.Warn("resuming an interrupted snapshot with the chunks it had not read, then replaying the binlog from where it started",
			"position", pos.String())
		if _, err := s.snapshot(ctx, &pos, out); err != nil {
			return Position{}, err
		}
		pos.Snapshot, pos.Cursor = false, nil
		// An entity added meanwhile missed the chunks read before: it is
		// backfilled while streaming.
		pos = s.resumeBackfill(pos)
	case s.cfg.Snapshot == cdc.SnapshotNever:
		if err := s.waitPreparedXA(ctx, s.conn); err != nil {
			return Position{}, err
		}
		if pos, err = s.currentPosition(s.conn); err != nil {
			return Position{}, err
		}
		s.log.Info("streaming without snapshot from the binlog's end", "position", pos.String())
	default:
		if pos, err = s.snapshot(ctx, &Position{}, out); err != nil {
			return Position{}, err
		}
	}
	// Passed down as a marker, the start is stored once everything before it
	// (the snapshot) is acknowledged.
	return pos, s.mark(ctx, pos, out)
}

func (s *Source) mark(ctx context.Context, pos Position, out chan<- cdc.Batch) error {
	select {
	case out <- cdc.Batch{Position: pos.cdc(), StoreNow: true}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkAvailable refuses to resume from a binlog the server no longer has,
// or from a position the server has not reached.
func (s *Source) checkAvailable(pos Position) error {
	if s.gtid && pos.GTIDSet != "" {
		// The server checks that it still has a GTID position when streaming
		// starts; that it has reached it, cdc does.
		return s.checkReached(pos)
	}
	res, err := s.conn.Execute("SHOW BINARY LOGS")
	if err != nil {
		return fmt.Errorf("list the server's binlogs (SHOW BINARY LOGS needs REPLICATION CLIENT / BINLOG MONITOR): %w", err)
	}
	var first, last string
	for i := range res.RowNumber() {
		name, _ := res.GetString(i, 0)
		size, _ := res.GetUint(i, 1)
		if name == pos.File {
			if uint64(pos.Offset) > size {
				return aheadError(pos, fmt.Sprintf("binlog %s holds %d bytes", name, size))
			}
			return nil
		}
		if first == "" {
			first = name
		}
		last = name
	}
	if last != "" && pos.File > last {
		return aheadError(pos, fmt.Sprintf("the server's newest binlog is %s", last))
	}
	return purgedError(pos, fmt.Sprintf("binlog %s is no longer on the server (its oldest is %s)", pos.File, first))
}

// checkReached refuses a GTID position with transactions the server has not
// executed.
func (s *Source) checkReached(pos Position) error {
	variable, flavor := "gtid_executed", mysql.MySQLFlavor
	if s.mariadb {
		variable, flavor = "gtid_binlog_pos", mysql.MariaDBFlavor
	}
	res, err := s.conn.Execute("SELECT @@GLOBAL." + variable)
	if err != nil {
		return fmt.Errorf("read @@%s: %w", variable, err)
	}
	text, _ := res.GetString(0, 0)
	executed, err := mysql.ParseGTIDSet(flavor, strings.Join(strings.Fields(text), ""))
	if err != nil {
		return fmt.Errorf("read @@%s %q: %w", variable, text, err)
	}
	stored, err := mysql.ParseGTIDSet(flavor, pos.GTIDSet)
	if err != nil {
		return fmt.Errorf("stored GTID set %q: %w", pos.GTIDSet, err)
	}
	if executed.Contain(stored) {
		return nil
	}
	return aheadError(pos, fmt.Sprintf("the server's @@%s is %s", variable, executed))
}

// aheadError refuses a stored position the server has not reached.
func aheadError(pos Position, why string) error {
	return positionLostError{fmt.Errorf("the stored position %s is ahead of the server's binlog (%s): the database was restored from a backup or failed over to a replica that was behind, or the checkpoint belongs to another server. What cdc published past the server's position may be gone from the database, and what the server writes next would be taken for it. %s; or set snapshot.mode: when_needed to let cdc take the new snapshot",
		pos, why, startOver)}
}

func purgedError(pos Position, why string) error {
	return positionLostError{fmt.Errorf("cannot resume from the stored position %s: %s, so the changes since are lost to cdc. Keep binlogs longer (binlog_expire_logs_seconds / expire_logs_days) than cdc may be stopped; to start over, delete the checkpoint (a tombstone for the connector's key in the checkpoint topic) so that cdc takes a new snapshot, or set snapshot.mode: when_needed to let cdc do it",
		pos, why)}
}

// positionLostError is a failure to resume because the server no longer has
// the binlog from the stored position on.
type positionLostError struct{ error }

func (e positionLostError) Unwrap() error { return e.error }

// snapshotAgain says whether a failure to resume is one snapshot.mode
// when_needed answers with a new snapshot, and logs it if so.
func (s *Source) snapshotAgain(err error) bool {
	if !errors.As(err, new(positionLostError)) || s.cfg.Snapshot != cdc.SnapshotWhenNeeded {
		return false
	}
	s.log.Warn("the stored position is no longer in the binlog, so the changes after it are lost: taking a new snapshot (snapshot.mode when_needed); keys deleted meanwhile stay in the topics",
		"err", err)
	return true
}

// currentPosition reads the binlog's end, in the mode positions are kept in.
func (s *Source) currentPosition(conn *client.Conn) (Position, error) {
	res, err := conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		// MySQL 8.4 renamed it.
		if res, err = conn.Execute("SHOW BINARY LOG STATUS"); err != nil {
			return Position{}, fmt.Errorf("read the binlog position: %w", err)
		}
	}
	if res.RowNumber() == 0 {
		return Position{}, fmt.Errorf("the server has no binlog (SHOW MASTER STATUS is empty): start it with log_bin")
	}
	file, _ := res.GetString(0, 0)
	offset, _ := res.GetUint(0, 1)
	pos := Position{File: file, Offset: uint32(offset)}
	if s.gtid {
		if s.mariadb {
			pos.GTIDSet, err = mariadbGTIDAt(conn, pos)
		} else {
			pos.GTIDSet, err = res.GetStringByName(0, "Executed_Gtid_Set")
			pos.GTIDSet = normalizeMySQLGTIDSet(pos.GTIDSet)
		}
	}
	return pos, err
}

// mariadbGTIDAt reads the GTID position at binlog coordinates.
func mariadbGTIDAt(conn *client.Conn, pos Position) (string, error) {
	res, err := conn.Execute(fmt.Sprintf("SELECT BINLOG_GTID_POS('%s', %d)", strings.ReplaceAll(pos.File, "'", "''"), pos.Offset))
	if err != nil {
		return "", fmt.Errorf("read the GTID position at %s:%d: %w", pos.File, pos.Offset, err)
	}
	gtid, _ := res.GetString(0, 0)
	return gtid, nil
}

func normalizeMySQLGTIDSet(s string) string {
	set, err := mysql.ParseMysqlGTIDSet(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return s
	}
	return set.String()
}

// ReadBack implements cdc.ReadBackReporter.
func (s *Source) ReadBack() (queries, rows int64) { return s.readBack.ReadBack() }
