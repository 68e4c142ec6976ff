package harness

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// ShopMySQL is the sample legacy schema of ShopSQL, in MySQL's dialect.
//
//go:embed shop_mysql.sql
var ShopMySQL string

// MariaDB is a private MariaDB server in a temporary directory, on its own port,
// with the binlog as cdc needs it (ROW, FULL row image, FULL row metadata).
type MariaDB struct {
	Port int
	// CA signed the server's certificate: TLS is on (a user created with
	// REQUIRE SSL can connect only with it).
	CA     *CA
	dir    string
	server string
	args   []string
	cmd    *exec.Cmd
	done   chan struct{}
}

// StartMariaDB initialises a data directory and starts the server. Stop removes it.
func StartMariaDB(extraArgs ...string) (*MariaDB, error) {
	server, err := exec.LookPath("mariadbd")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/mariadbd"); statErr != nil {
			return nil, errors.New("no mariadbd: run `make deps` (apt-get install mariadb-server)")
		}
		server = "/usr/sbin/mariadbd"
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("/tmp", "cdcmy")
	if err != nil {
		return nil, err
	}
	m := &MariaDB{Port: port, dir: dir}
	if m.CA, err = NewCA(dir, "mariadb"); err != nil {
		return nil, err
	}
	cert, key, err := m.CA.Issue("mariadb-server", false, "127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	install := exec.Command("mariadb-install-db", "--no-defaults", "--user=root", "--datadir="+data,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--innodb-log-file-size=8M", "--innodb-buffer-pool-size=64M")
	if out, err := install.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %v: %s", err, out)
	}
	args := append([]string{"--no-defaults", "--user=root", "--datadir=" + data, "--socket=" + filepath.Join(dir, "sock"),
		"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--server-id=1", "--log-bin=" + filepath.Join(data, "mysql-bin"),
		"--binlog-format=ROW", "--binlog-row-image=FULL", "--binlog-row-metadata=FULL",
		"--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0", "--skip-name-resolve", "--innodb-buffer-pool-size=128M",
		"--log-error=" + filepath.Join(dir, "error.log"),
		"--ssl-ca=" + m.CA.File, "--ssl-cert=" + cert, "--ssl-key=" + key}, extraArgs...)
	m.server, m.args = server, args
	if err := m.start(); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// start starts the server on its data directory and waits until it answers.
func (m *MariaDB) start() error {
	m.done = make(chan struct{})
	m.cmd = exec.Command(m.server, m.args...)
	if err := m.cmd.Start(); err != nil {
		return err
	}
	done := m.done
	go func() { m.cmd.Wait(); close(done) }()
	return Eventually(30*time.Second, func() (bool, error) {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(m.dir, "error.log"))
			return false, fmt.Errorf("mariadbd exited:\n%s", log)
		default:
		}
		c, err := client.Connect(m.addr(), "root", "", "")
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
}

// BinlogRows decodes the server's binlog (mariadb-binlog -v) and returns the
// row events whose first column is value, for a failed test's message.
func (m *MariaDB) BinlogRows(value string) string {
	files, _ := filepath.Glob(filepath.Join(m.dir, "data", "mysql-bin.[0-9]*"))
	out, err := exec.Command("mariadb-binlog", append([]string{"--base64-output=decode-rows", "-v"}, files...)...).Output()
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "###   @1="+value && i >= 2 {
			fmt.Fprintf(&b, "    %s | %s | %s\n", lines[i-2], lines[i-1], l)
		}
	}
	return b.String()
}

// Restart shuts the server down as an operator would (SIGTERM: every
// connection closed) and starts it again on the same data.
func (m *MariaDB) Restart() error {
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		return errors.New("mariadbd did not shut down within 30 s")
	}
	return m.start()
}

func (m *MariaDB) addr() string { return fmt.Sprintf("127.0.0.1:%d", m.Port) }

// DSN is the DSN of a database of the server, as root.
func (m *MariaDB) DSN(database string) string {
	return fmt.Sprintf("root@tcp(%s)/%s", m.addr(), database)
}

// Stop stops the server and removes its files.
func (m *MariaDB) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Signal(os.Interrupt)
		select {
		case <-m.done:
		case <-time.After(20 * time.Second):
			m.cmd.Process.Kill()
			<-m.done
		}
	}
	os.RemoveAll(m.dir)
}

// Conn connects as root to a database ("" for none).
func (m *MariaDB) Conn(database string) (*client.Conn, error) {
	c, err := client.Connect(m.addr(), "root", "", database)
	if err != nil {
		return nil, err
	}
	if _, err := c.Execute("SET NAMES utf8mb4, time_zone = '+00:00'"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Exec runs SQL statements in a database; each string may hold several
// statements separated by ";\n".
func (m *MariaDB) Exec(database string, sql ...string) error {
	c, err := m.Conn(database)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, s := range sql {
		for _, stmt := range splitStatements(s) {
			if _, err := c.Execute(stmt); err != nil {
				return fmt.Errorf("%s: %w", firstLine(stmt), err)
			}
		}
	}
	return nil
}

// Query runs a query and returns its rows as text (NULL as "null").
func (m *MariaDB) Query(database, query string, args ...any) ([]string, [][]string, error) {
	c, err := m.Conn(database)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	res, err := c.Execute(query, args...)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, f := range res.Fields {
		names = append(names, string(f.Name))
	}
	var rows [][]string
	for i := range res.RowNumber() {
		row := make([]string, res.ColumnNumber())
		for j := range row {
			if null, _ := res.IsNull(i, j); null {
				row[j] = "null"
				continue
			}
			row[j], _ = res.GetString(i, j)
		}
		rows = append(rows, row)
	}
	return names, rows, nil
}

// CreateDatabase creates an empty database and returns its DSN.
func (m *MariaDB) CreateDatabase(name string) (string, error) {
	if err := m.Exec("", "CREATE DATABASE `"+name+"`"); err != nil {
		return "", err
	}
	return m.DSN(name), nil
}

// DropDatabase drops a database.
func (m *MariaDB) DropDatabase(name string) error {
	return m.Exec("", "DROP DATABASE IF EXISTS `"+name+"`")
}

// IsMySQLError reports whether err is a server error with the code.
func IsMySQLError(err error, code uint16) bool {
	var e *mysql.MyError
	return errors.As(err, &e) && e.Code == code
}

func splitStatements(s string) []string {
	var out []string
	for _, stmt := range strings.Split(s, ";\n") {
		lines := strings.Split(stmt, "\n")
		var kept []string
		for _, l := range lines {
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				kept = append(kept, l)
			}
		}
		if stmt = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(strings.Join(kept, "\n")), ";")); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Source runs a SQL file with the mariadb client (it understands DELIMITER),
// in a database: the file's own USE and CREATE/DROP SCHEMA of fileDatabase are
// dropped and its qualified names renamed, so that it loads into this one.
func (m *MariaDB) Source(database, file, fileDatabase string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var kept []string
	for _, line := range strings.Split(string(data), "\n") {
		switch strings.TrimSpace(line) {
		case "DROP SCHEMA IF EXISTS " + fileDatabase + ";", "CREATE SCHEMA " + fileDatabase + ";", "USE " + fileDatabase + ";":
			continue
		}
		kept = append(kept, strings.ReplaceAll(line, fileDatabase+".", database+"."))
	}
	cmd := exec.Command("mariadb", "--no-defaults", "-h127.0.0.1", "-P"+strconv.Itoa(m.Port), "-uroot", "--default-character-set=utf8mb4", database)
	cmd.Stdin = strings.NewReader(strings.Join(kept, "\n"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb < %s: %v: %s", file, err, out)
	}
	return nil
}
