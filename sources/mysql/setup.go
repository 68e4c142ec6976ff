package mysql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// Check implements cdc.Source: binlog settings, cdc's replica identity, the
// user's privileges and the mapped tables, each problem with its fix. Its
// errors are classified (see classify): a restart of the connector after a
// transient failure checks again, and the server may be restarting still.
func (s *Source) Check(ctx context.Context) error {
	return classify(s.check())
}

func (s *Source) check() error {
	var problems []error
	problem := func(what, fix string) { problems = append(problems, &cdc.Problem{What: what, Fix: fix}) }

	settings := map[string]string{}
	for _, name := range []string{"log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata", "server_id", "binlog_row_value_options", "binlog_legacy_event_pos"} {
		v, err := s.variable(name)
		if err != nil {
			return err
		}
		settings[name] = strings.ToUpper(v)
	}
	if settings["log_bin"] != "ON" {
		problem("the binlog is off (log_bin = "+settings["log_bin"]+")", "start the server with log-bin and a server-id in [mysqld] (this needs a restart)")
	}
	if settings["binlog_format"] != "ROW" {
		problem("binlog_format is "+settings["binlog_format"], "run SET GLOBAL binlog_format = 'ROW' and set binlog_format = ROW in the server's configuration")
	}
	switch settings["binlog_row_metadata"] {
	case "FULL":
	case "":
		problem("the server ("+s.conn.GetServerVersion()+") has no binlog_row_metadata, so its binlog does not name the columns", "upgrade: cdc needs MySQL 8.0.1 or MariaDB 10.5 or later")
	default:
		problem("binlog_row_metadata is "+settings["binlog_row_metadata"]+": the binlog must name each row's columns", "run SET GLOBAL binlog_row_metadata = 'FULL' and set it in the server's configuration")
	}
	if v := settings["binlog_row_value_options"]; v != "" {
		problem("binlog_row_value_options is "+v+": partial JSON updates do not carry whole values", "run SET GLOBAL binlog_row_value_options = ''")
	}
	if settings["binlog_legacy_event_pos"] == "OFF" && !s.gtid {
		problem("binlog_legacy_event_pos is OFF, so the server sends events without their binlog offsets, and positions in binlog files cannot be kept", "use GTID positions (source.mysql.gtid: true), or SET GLOBAL binlog_legacy_event_pos = ON")
	}
	if settings["server_id"] == fmt.Sprint(s.cfg.ServerID) {
		problem(fmt.Sprintf("source.mysql.server_id %d is the server's own server_id", s.cfg.ServerID), "choose another")
	}
	if err := s.checkReplicaID(); err != nil {
		problems = append(problems, err)
	}
	problems = append(problems, s.checkGrants()...)
	for _, name := range s.cfg.Tables {
		problems = append(problems, s.checkTable(name)...)
	}
	cascades, err := s.checkCascades()
	if err != nil {
		return err
	}
	return errors.Join(append(problems, cascades...)...)
}

// cascadingKey is a foreign key whose actions change its table's rows.
type cascadingKey struct{ constraint, parent, onDelete, onUpdate string }

// cascadingKeys lists a table's foreign keys whose ON DELETE or ON UPDATE
// action is CASCADE, SET NULL or SET DEFAULT.
func (s *Source) cascadingKeys(name cdc.TableName) ([]cascadingKey, error) {
	res, err := s.conn.Execute(`SELECT CONSTRAINT_NAME, REFERENCED_TABLE_NAME, DELETE_RULE, UPDATE_RULE
		FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?
			AND (DELETE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT') OR UPDATE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT'))
		ORDER BY CONSTRAINT_NAME`, name.Schema, name.Name)
	if err != nil {
		return nil, fmt.Errorf("read the foreign keys of %s: %w", name, err)
	}
	keys := make([]cascadingKey, res.RowNumber())
	for i := range keys {
		str := func(col int) string { v, _ := res.GetString(i, col); return v }
		keys[i] = cascadingKey{constraint: str(0), parent: str(1), onDelete: str(2), onUpdate: str(3)}
	}
	return keys, nil
}

// TableSettings implements cdc.SettingsReader: each table's foreign keys
// whose actions InnoDB applies without logging them.
func (s *Source) TableSettings(_ context.Context, tables []cdc.TableName) (map[cdc.TableName]cdc.TableSettings, error) {
	out := map[cdc.TableName]cdc.TableSettings{}
	for _, name := range tables {
		keys, err := s.cascadingKeys(name)
		if err != nil {
			return nil, err
		}
		settings := cdc.TableSettings{RowImage: s.rowImage}
		for _, k := range keys {
			if settings.CascadingForeignKeys == nil {
				settings.CascadingForeignKeys = map[string]string{}
			}
			settings.CascadingForeignKeys[k.constraint] = fmt.Sprintf("to %s ON DELETE %s ON UPDATE %s", k.parent, k.onDelete, k.onUpdate)
		}
		out[name] = settings
	}
	return out, nil
}

// checkCascades finds the mapped tables that a foreign key's ON DELETE or ON
// UPDATE action (CASCADE, SET NULL, SET DEFAULT) can change. InnoDB applies
// those actions itself, and the server writes none of them to the binlog: the
// rows they change would never reach the topics. Each is refused, unless the
// operator listed it in accept_unlogged_cascades (then it is a warning).
func (s *Source) checkCascades() ([]error, error) {
	var problems []error
	for _, name := range s.cfg.Tables {
		keys, err := s.cascadingKeys(name)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			constraint, parent, onDelete, onUpdate := k.constraint, k.parent, k.onDelete, k.onUpdate
			what := fmt.Sprintf("table %s has foreign key %s to %s with ON DELETE %s ON UPDATE %s", name, constraint, parent, onDelete, onUpdate)
			if slices.Contains(s.cfg.AcceptUnloggedCascades, name) {
				s.log.Warn("a mapped table is changed by foreign-key cascades that the binlog does not show; accepted by source.mysql.accept_unlogged_cascades: its topics miss those changes (cdc verify finds them)",
					"table", name.String(), "constraint", constraint, "parent", parent, "on_delete", onDelete, "on_update", onUpdate)
				continue
			}
			problems = append(problems, &cdc.Problem{
				What: fmt.Sprintf("%s: the server applies such actions inside InnoDB and writes none of them to the binlog, so the rows they delete or change in %s would never reach its topics", what, name),
				Fix: fmt.Sprintf("have the application change the rows itself and make the key RESTRICT (ALTER TABLE %s DROP FOREIGN KEY %s, ADD CONSTRAINT %s FOREIGN KEY ... REFERENCES %s (...) ON DELETE RESTRICT ON UPDATE RESTRICT), or accept the gap knowingly: source.mysql.accept_unlogged_cascades: [%s], and run cdc verify on a schedule",
					quoteTable(name), quoteIdentifier(constraint), quoteIdentifier(constraint), quoteIdentifier(parent), name)})
		}
	}
	return problems, nil
}

// replicaHost is the host name cdc registers as a replica with: it tells a
// server id held by an earlier run of the same connector (whose dump thread the
// server has not yet noticed is gone) from one held by another replica.
func (s *Source) replicaHost() string { return "cdc-" + s.cfg.Name }

// checkReplicaID makes sure no other replica uses cdc's server id: the server
// would disconnect one of the two, over and over.
func (s *Source) checkReplicaID() error {
	// MariaDB and MySQL before 8.0.22 know SHOW SLAVE HOSTS; MySQL 8.4 only
	// SHOW REPLICAS. The first refusal is the one that says why.
	statements, privilege := []string{"SHOW REPLICAS", "SHOW SLAVE HOSTS"}, "REPLICATION SLAVE"
	if s.mariadb {
		statements, privilege = []string{"SHOW SLAVE HOSTS"}, "REPLICATION MASTER ADMIN"
	}
	var res *mysql.Result
	var err, first error
	for _, statement := range statements {
		if res, err = s.conn.Execute(statement); err == nil {
			break
		}
		if first == nil || (isSyntaxError(first) && !isSyntaxError(err)) {
			first = err
		}
	}
	if err != nil {
		s.log.Warn(fmt.Sprintf("cannot list the server's replicas to check that server_id %d is unique (needs %s: GRANT %s ON *.* TO '%s'@'%%')", s.cfg.ServerID, privilege, privilege, s.endpoint.user),
			"error", first)
		return nil
	}
	for i := range res.RowNumber() {
		id, _ := res.GetUint(i, 0)
		host, _ := res.GetString(i, 1)
		if uint32(id) == s.cfg.ServerID && host != s.replicaHost() {
			return &cdc.Problem{What: fmt.Sprintf("server_id %d is already used by the replica %s", s.cfg.ServerID, host), Fix: "set source.mysql.server_id to a number no server or replica uses"}
		}
	}
	return nil
}

// checkGrants reads the user's global privileges. Privileges that come only
// through roles are not seen; the error says how to check by hand.
func (s *Source) checkGrants() []error {
	res, err := s.conn.Execute("SHOW GRANTS FOR CURRENT_USER()")
	if err != nil {
		return []error{fmt.Errorf("read the privileges of %s: %w", s.endpoint.user, err)}
	}
	var global []string
	for i := range res.RowNumber() {
		line, _ := res.GetString(i, 0)
		upper := strings.ToUpper(line)
		if on := strings.Index(upper, " ON *.* TO "); on > 0 && strings.HasPrefix(upper, "GRANT ") {
			global = append(global, upper[len("GRANT "):on])
		}
	}
	has := func(privilege string) bool {
		for _, g := range global {
			for _, p := range strings.Split(g, ",") {
				p = strings.TrimSpace(p)
				if p == privilege || p == "ALL PRIVILEGES" || p == "ALL" {
					return true
				}
			}
		}
		return false
	}
	user := s.endpoint.user
	var problems []error
	if !has("REPLICATION SLAVE") {
		problems = append(problems, &cdc.Problem{What: fmt.Sprintf("user %s lacks REPLICATION SLAVE (to read the binlog)", user), Fix: fmt.Sprintf("GRANT REPLICATION SLAVE ON *.* TO '%s'@'%%'", user)})
	}
	if !has("REPLICATION CLIENT") && !has("BINLOG MONITOR") {
		privilege := "REPLICATION CLIENT"
		if s.mariadb {
			privilege = "BINLOG MONITOR"
		}
		problems = append(problems, &cdc.Problem{What: fmt.Sprintf("user %s lacks %s (to read binlog positions)", user, privilege), Fix: fmt.Sprintf("GRANT %s ON *.* TO '%s'@'%%'", privilege, user)})
	}
	if !s.mariadb && s.cfg.Snapshot != cdc.SnapshotNever && !has("RELOAD") {
		problems = append(problems, &cdc.Problem{What: fmt.Sprintf("user %s lacks RELOAD (a MySQL snapshot holds FLUSH TABLES WITH READ LOCK while it reads the binlog position)", user), Fix: fmt.Sprintf("GRANT RELOAD ON *.* TO '%s'@'%%'", user)})
	}
	return problems
}

// checkTable checks that the table can be read, and snapshotted consistently.
func (s *Source) checkTable(name cdc.TableName) []error {
	if _, err := s.conn.Execute("SELECT 1 FROM " + quoteTable(name) + " LIMIT 0"); err != nil {
		var myErr *mysql.MyError
		if errors.As(err, &myErr) && myErr.Code == mysql.ER_NO_SUCH_TABLE {
			return []error{s.missingTable(s.conn, name)}
		}
		return []error{&cdc.Problem{Where: "table " + name.String(), What: "cannot read it", Err: err, Fix: fmt.Sprintf("GRANT SELECT ON %s TO '%s'@'%%'", quoteTable(name), s.endpoint.user)}}
	}
	if s.cfg.Snapshot == cdc.SnapshotNever {
		return nil
	}
	res, err := s.conn.Execute(`SELECT COALESCE(ENGINE, '') FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, name.Schema, name.Name)
	if err != nil || res.RowNumber() == 0 {
		return nil
	}
	if engine, _ := res.GetString(0, 0); !strings.EqualFold(engine, "InnoDB") {
		return []error{&cdc.Problem{What: fmt.Sprintf("table %s uses the %s engine: a consistent snapshot needs a transactional engine", name, engine),
			Fix: fmt.Sprintf("ALTER TABLE %s ENGINE = InnoDB (or snapshot.mode: never)", quoteTable(name))}}
	}
	return nil
}

// isSyntaxError reports the server's ER_PARSE_ERROR: a statement this
// server does not know.
func isSyntaxError(err error) bool {
	var myErr *mysql.MyError
	return errors.As(err, &myErr) && myErr.Code == mysql.ER_PARSE_ERROR
}

func quoteIdentifier(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func quoteTable(n cdc.TableName) string {
	return quoteIdentifier(n.Schema) + "." + quoteIdentifier(n.Name)
}

// sampleMaxRows bounds the tables whose distinct values are listed: beyond it a
// DISTINCT scan would load the database for a validation.
const sampleMaxRows = 1_000_000

var (
	_ cdc.ValueSampler = (*Source)(nil)
	_ cdc.TableReader  = (*Source)(nil)
)

// estimateRows reads the catalog's estimate of a table's rows (0 where it has
// none: views, some engines); found is false if the table does not exist.
func estimateRows(conn *client.Conn, table cdc.TableName) (rows uint64, found bool, err error) {
	res, err := conn.Execute(`SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, table.Schema, table.Name)
	if err != nil {
		return 0, false, fmt.Errorf("estimate the rows of %s: %w", table, err)
	}
	if res.RowNumber() == 0 {
		return 0, false, nil
	}
	rows, _ = res.GetUint(0, 0) // NULL: no estimate
	return rows, true, nil
}

// DistinctValues lists a column's distinct values in their text form, on tables
// of at most a million rows (by the catalog's estimate), within 5 seconds.
func (s *Source) DistinctValues(_ context.Context, table cdc.TableName, column string, limit int) ([]string, bool, error) {
	rows, found, err := estimateRows(s.conn, table)
	if err != nil {
		return nil, false, err
	}
	if !found {
		return nil, false, s.missingTable(s.conn, table)
	}
	if rows > sampleMaxRows {
		return nil, false, nil
	}
	col := quoteIdentifier(column)
	res, err := s.conn.Execute(s.withinFiveSeconds(fmt.Sprintf("SELECT DISTINCT CAST(%s AS CHAR) FROM %s WHERE %s IS NOT NULL LIMIT %d", col, quoteTable(table), col, limit+1)))
	if err != nil {
		var me *mysql.MyError
		if errors.As(err, &me) && (me.Code == 1969 || me.Code == 3024) { // statement time exceeded
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("distinct values of %s.%s: %w", table, column, err)
	}
	values := make([]string, 0, res.RowNumber())
	for i := range res.RowNumber() {
		v, _ := res.GetString(i, 0)
		values = append(values, v)
	}
	if len(values) > limit {
		return values[:limit], false, nil
	}
	return values, true, nil
}

// withinFiveSeconds bounds a checking query's time: validate must not load
// the database.
func (s *Source) withinFiveSeconds(query string) string {
	if s.mariadb {
		return "SET STATEMENT max_statement_time=5 FOR " + query
	}
	return strings.Replace(query, "SELECT", "SELECT /*+ MAX_EXECUTION_TIME(5000) */", 1)
}

// SampleRows reads up to limit rows of a described table, within 5 seconds.
func (s *Source) SampleRows(_ context.Context, table cdc.TableName, limit int) (*cdc.Table, [][]cdc.Value, error) {
	d := s.tables[table]
	if d == nil {
		return nil, nil, fmt.Errorf("table %s is not described", table)
	}
	q := s.newTableQuery(d, nil)
	res, err := s.conn.Execute(s.withinFiveSeconds(fmt.Sprintf("%s LIMIT %d", q.base, limit)))
	if err != nil {
		return nil, nil, fmt.Errorf("sample rows of %s: %w", table, err)
	}
	var arena memory.Arena
	out := make([][]cdc.Value, 0, len(res.Values))
	for _, fields := range res.Values {
		row := make([]cdc.Value, len(fields))
		for i := range fields {
			if row[i], err = q.decoders[i].snapshot(&fields[i], &arena); err != nil {
				return nil, nil, fmt.Errorf("sample rows of %s: column %s: %w", table, d.table.Columns[i].Name, err)
			}
		}
		out = append(out, row)
	}
	return d.table, out, nil
}
