// Package harness starts the real components the integration tests and the demo
// run against: a private PostgreSQL cluster, an in-process Kafka-protocol broker,
// and the cdc daemon as a separate process. Nothing here is a mock.
package harness

import (
	"compress/gzip"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ShopSQL creates the sample legacy schema used by the demo and the tests.
//
//go:embed shop.sql
var ShopSQL string

// Postgres is a private PostgreSQL cluster in a temporary directory, on its own
// port, with wal_level=logical. Its wal_sender_timeout is 5 s (60 s by default),
// so that a replication client that stops reporting is caught quickly.
type Postgres struct {
	Port int
	// CA signed the server's certificate: TLS is on. The role TLSUser
	// (password TLSPassword) may connect only over TLS: pg_hba.conf refuses
	// it otherwise.
	CA  *CA
	dir string
	bin string
	// runAs is "postgres" when running as root: initdb refuses to run as root.
	runAs string
}

// PostgresBinDir finds the server binaries of the newest installed PostgreSQL.
func PostgresBinDir() (string, error) {
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		return dir, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: run `make deps` (apt-get install postgresql) or set PG_BINDIR")
}

func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// StreamEveryLargeTransaction is the setting that has the server stream
// before its commit every transaction past 64 kB of changes, or the largest
// of concurrent ones past it (the least logical_decoding_work_mem allowed;
// 64 MB by default): the integration tests take that path as well as the
// whole one.
const StreamEveryLargeTransaction = "logical_decoding_work_mem=64kB"

// StartPostgres initialises and starts a cluster, with the given settings
// (name=value) beside its own. Stop removes it.
func StartPostgres(settings ...string) (*Postgres, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	// Short and world-traversable: the server runs as another user, and the
	// socket path must stay under ~107 bytes.
	dir, err := os.MkdirTemp("/tmp", "cdcpg")
	if err != nil {
		return nil, err
	}
	p := &Postgres{Port: port, dir: dir, bin: bin}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		p.runAs = "postgres"
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user to run the server: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := p.command("initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8").CombinedOutput(); err != nil {
		p.Stop()
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	cert, key, err := p.enableTLS(data)
	if err != nil {
		p.Stop()
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_replication_slots=100 -c max_wal_senders=100 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c wal_sender_timeout=5s -c ssl=on -c ssl_cert_file=%s -c ssl_key_file=%s",
		port, dir, cert, key)
	for _, setting := range settings {
		opts += " -c " + setting
	}
	if out, err := p.command("pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-w", "-o", opts, "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		p.Stop()
		return nil, fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return p, nil
}

// The role that may connect only over TLS (see Postgres.CA).
const (
	TLSUser     = "cdc_tls"
	TLSPassword = "tls-only-secret"
)

// enableTLS issues the server's certificate and has pg_hba.conf take
// TLSUser over TLS only, with its password.
func (p *Postgres) enableTLS(data string) (cert, key string, err error) {
	if p.CA, err = NewCA(p.dir, "postgres"); err != nil {
		return "", "", err
	}
	if cert, key, err = p.CA.Issue("postgres-server", false, "127.0.0.1", "localhost"); err != nil {
		return "", "", err
	}
	hba := filepath.Join(data, "pg_hba.conf")
	rules, err := os.ReadFile(hba)
	if err != nil {
		return "", "", err
	}
	first := fmt.Sprintf("hostssl all %[1]s 127.0.0.1/32 scram-sha-256\nhostssl replication %[1]s 127.0.0.1/32 scram-sha-256\n"+
		"host all %[1]s 127.0.0.1/32 reject\nhost replication %[1]s 127.0.0.1/32 reject\n", TLSUser)
	if err := os.WriteFile(hba, append([]byte(first), rules...), 0o600); err != nil {
		return "", "", err
	}
	if p.runAs != "" {
		u, err := user.Lookup(p.runAs)
		if err != nil {
			return "", "", err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, f := range []string{cert, key, hba} {
			if err := os.Chown(f, uid, gid); err != nil {
				return "", "", err
			}
		}
	}
	return cert, key, nil
}

// TLSDSN is the URL of a database as TLSUser, with the given parameters
// (sslmode and the like).
func (p *Postgres) TLSDSN(database, params string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?%s", TLSUser, TLSPassword, p.Port, database, params)
}

func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(p.bin, name)
	if p.runAs != "" {
		return exec.Command("runuser", append([]string{"-u", p.runAs, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// DSN is the connection URL of a database of the cluster, as the superuser.
func (p *Postgres) DSN(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, database)
}

// CreateDatabase creates an empty database and returns its DSN.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return p.DSN(name), nil
}

// DropDatabase drops a database and the replication slots on it (which would
// otherwise keep WAL, and make DROP DATABASE fail).
func (p *Postgres) DropDatabase(ctx context.Context, name string) error {
	// A daemon killed a moment ago may leave its walsender holding a slot
	// until the server notices: end it, and drop the slot once it is free.
	conn, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active`, name); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, name); err != nil {
			return err
		}
		var left int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE database = $1`, name).Scan(&left); err != nil {
			return err
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("drop database %s: replication slots still held after 10 s", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return Exec(ctx, p.DSN("postgres"), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// Exec runs SQL statements in a database.
func Exec(ctx context.Context, dsn string, sql ...string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%w\nin: %s", err, abbreviate(s))
		}
	}
	return nil
}

func abbreviate(s string) string {
	if s = strings.TrimSpace(s); len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// Restart stops the cluster as an operator's fast shutdown does (every
// session ended, replication connections included) and starts it again with
// the same settings.
func (p *Postgres) Restart() error {
	data := filepath.Join(p.dir, "data")
	if out, err := p.command("pg_ctl", "-D", data, "-l", filepath.Join(p.dir, "server.log"), "-m", "fast", "-w", "restart").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl restart: %v: %s", err, out)
	}
	return nil
}

// Stop stops the cluster and removes its files.
func (p *Postgres) Stop() {
	data := filepath.Join(p.dir, "data")
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
		_ = p.command("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop").Run()
	}
	os.RemoveAll(p.dir)
}

// FreePort asks the kernel for a port nobody listens on.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Eventually polls cond until it holds or the timeout passes.
func Eventually(timeout time.Duration, cond func() (bool, error)) error {
	return Poll(50*time.Millisecond, timeout, cond)
}

// Poll is Eventually, checking every interval: for a moment that passes
// quickly, such as the middle of a snapshot that lasts a tenth of a second.
func Poll(every, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("condition not met")
			}
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		time.Sleep(every)
	}
}

// Psql runs an SQL file (gzipped if its name ends in .gz) with psql against a
// database, stopping at the first error.
func (p *Postgres) Psql(database, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var input io.Reader = f
	if strings.HasSuffix(file, ".gz") {
		if input, err = gzip.NewReader(f); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	cmd := exec.Command(filepath.Join(p.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", p.DSN(database), "-f", "-")
	cmd.Stdin = input
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("psql < %s: %v\n%s", file, err, out)
	}
	return nil
}
