package integration

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/cdc-dev/cdc/integration/harness"
	mysqlsource "github.com/cdc-dev/cdc/sources/mysql"
)

// The MySQL source runs the same scenarios as the PostgreSQL one, on the same
// entity, against a private MariaDB.

func TestMySQLSnapshotThenStreamMatchesTheTable(t *testing.T) {
	s := newMySQLScenario(t)
	d := s.start()
	s.waitCustomersMatch()
	s.exec(
		`INSERT INTO customer (email, first_name, last_name, balance, birth_date) VALUES ('edsger@example.com', 'Edsger', 'Dijkstra', 1e9, '1930-05-11')`,
		`UPDATE customer SET email = 'ada@lovelace.org', balance = balance + 0.01 WHERE customer_id = 1`,
		`DELETE FROM customer WHERE customer_id = 3`,
		`UPDATE customer SET birth_date = NULL WHERE customer_id = 2`,
	)
	s.waitCustomersMatch()
	if err := d.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, d.Logs())
	}
}

func TestMySQLKillNineMidStreamLosesNothing(t *testing.T) {
	for _, gtid := range []bool{true, false} {
		t.Run(fmt.Sprintf("gtid=%v", gtid), func(t *testing.T) {
			s := newMySQLScenario(t)
			if !gtid {
				s.editConfig("gtid: true", "gtid: false")
			}
			s.exec(s.bulk(1000))
			s.start()
			s.waitCustomersMatch()
			s.crashWhileWriting()
			if cp := s.checkpoint(); gtid != strings.Contains(cp, "gtid=") {
				t.Errorf("checkpoint %q: GTID mode %v", cp, gtid)
			}
		})
	}
}

// A crash inside a large transaction resumes inside it, in GTID and in file mode:
// the rows checkpointed before the crash are not sent again.
func TestMySQLKillNineInsideALargeTransactionResumesInsideIt(t *testing.T) {
	const rows = 200_000
	for _, gtid := range []bool{true, false} {
		t.Run(fmt.Sprintf("gtid=%v", gtid), func(t *testing.T) {
			s := newMySQLScenario(t)
			if !gtid {
				s.editConfig("gtid: true", "gtid: false")
			}
			s.exec(s.bulk(rows))
			s.crashInsideALargeTransaction(rows, func(checkpoint string) (int, error) {
				pos, err := mysqlsource.ParsePosition(checkpoint)
				return pos.Row, err
			})
		})
	}
}

// A network path to MariaDB that silently drops everything (no reset, no
// close) is noticed from the missing binlog heartbeats: the daemon says so
// instead of waiting forever, and restarts the connector, which resumes from
// the checkpoint with nothing lost once the path works again.
func TestMySQLSilentConnectionIsNoticedByHeartbeats(t *testing.T) {
	newMySQLScenario(t).silentDatabasePath(fmt.Sprintf("127.0.0.1:%d", maria.Port), "the binlog stream sent nothing, not even a heartbeat, for 15s", 15*time.Second)
}

// DDL on a column the mapping does not use passes; dropping a mapped column
// stops the daemon before it emits a record of the new shape.
func TestMySQLDDLOnUnmappedColumnPassesOnMappedColumnStops(t *testing.T) {
	s := newMySQLScenario(t)
	d := s.start()
	s.waitCustomersMatch()
	s.exec(`ALTER TABLE customer DROP COLUMN internal_flags, ADD COLUMN loyalty_tier int NOT NULL DEFAULT 1`,
		`UPDATE customer SET email = 'after-ddl@example.com', loyalty_tier = 2 WHERE customer_id = 1`)
	s.waitCustomersMatch()
	if !strings.Contains(d.Logs(), `msg="table definition changed"`) {
		t.Errorf("the new shape was not noticed:\n%s", d.Logs())
	}
	count := s.recordCount("shop.customer.v1")
	s.exec(`ALTER TABLE customer DROP COLUMN birth_date`,
		`UPDATE customer SET email = 'not-sent@example.com' WHERE customer_id = 2`)
	s.mustExit("birth_date", "no longer fits its mapping")
	if got := s.recordCount("shop.customer.v1"); got != count {
		t.Fatalf("%d records after the mapped column was dropped, want %d: nothing of the new shape may be sent", got, count)
	}
}

// validate runs `cdc validate` on the scenario's config with a DSN.
func (s *scenario) validate(dsn string) (string, error) {
	cmd := exec.Command(cdcBin, "validate", "--config", s.config)
	cmd.Env = append(cmd.Environ(), "SHOP_MYSQL_DSN="+dsn, "KAFKA_BROKERS="+strings.Join(s.brokers, ","))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// `cdc validate` checks the binlog settings and the user's privileges, and says
// for each problem the statement that fixes it.
func TestMySQLValidateChecksBinlogSettingsAndPrivileges(t *testing.T) {
	s := newMySQLScenario(t)
	if out, err := s.validate(s.dsn); err != nil || !strings.Contains(out, "ok: mappings of 2 tables") {
		t.Fatalf("a ready setup: %v\n%s", err, out)
	}
	user := "limited_" + fmt.Sprint(scenarios.Load())
	s.exec("ALTER TABLE customer ENGINE = MyISAM", "SET GLOBAL binlog_row_metadata = 'MINIMAL'", "SET GLOBAL binlog_row_image = 'MINIMAL'",
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'pw'", user), fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s'@'%%'", s.name, user))
	defer s.exec("SET GLOBAL binlog_row_metadata = 'FULL'", "SET GLOBAL binlog_row_image = 'FULL'", fmt.Sprintf("DROP USER '%s'@'%%'", user))
	out, err := s.validate(strings.Replace(s.dsn, "root@", user+":pw@", 1))
	for _, want := range []string{
		// Each problem's fix is on a line of its own, under it.
		"binlog_row_metadata is MINIMAL: the binlog must name each row's columns\n    fix: run SET GLOBAL binlog_row_metadata = 'FULL'",
		"lacks REPLICATION SLAVE (to read the binlog)\n    fix: GRANT REPLICATION SLAVE ON *.* TO '" + user + "'@'%'",
		"lacks BINLOG MONITOR (to read binlog positions)\n    fix: GRANT BINLOG MONITOR ON *.*",
		"table " + s.name + ".customer uses the MyISAM engine: a consistent snapshot needs a transactional engine\n    fix: ALTER TABLE",
		"problems (database",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1", err)
	}
	if strings.Contains(out, ":pw@") {
		t.Errorf("the output shows the password:\n%s", out)
	}
}

// A zero date stops the daemon, saying what to set, unless zero_dates: null.
func TestMySQLZeroDateStopsWithTheFix(t *testing.T) {
	s := newMySQLScenario(t)
	s.exec("SET SESSION sql_mode = ''", "UPDATE customer SET birth_date = '0000-00-00' WHERE customer_id = 2")
	s.start()
	s.mustExit("column birth_date", "zero date", "set source.mysql.zero_dates: null")
}

// A stored position whose binlog the server has purged stops the daemon with
// what to do, instead of streaming from wherever the server would start.
func TestMySQLPurgedBinlogIsReported(t *testing.T) {
	s := newMySQLScenario(t)
	s.editConfig("gtid: true", "gtid: false")
	d := s.start()
	s.waitCustomersMatch()
	if err := harness.Eventually(30*time.Second, func() (bool, error) {
		return strings.HasPrefix(s.checkpoint(), "file="), s.daemonsAlive()
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.purgeBinlogOf(s.checkpoint())
	s.start()
	s.mustExit("is no longer on the server", "binlog_expire_logs_seconds", "delete the checkpoint")
}

// purgeBinlogOf purges the binlogs up to the current one, the stored
// position's included.
func (s *scenario) purgeBinlogOf(stored string) {
	s.t.Helper()
	_, rows, err := maria.Query("", "SHOW MASTER STATUS")
	if err != nil {
		s.t.Fatal(err)
	}
	s.exec("FLUSH BINARY LOGS")
	// The server keeps, with a warning only, a binlog that another test's
	// reader still reads: purge until the stored position's file is gone.
	if err := harness.Eventually(30*time.Second, func() (bool, error) {
		if err := maria.Exec("", "PURGE BINARY LOGS TO '"+nextBinlog(rows[0][0])+"'"); err != nil {
			return false, err
		}
		_, logs, err := maria.Query("", "SHOW BINARY LOGS")
		if err != nil {
			return false, err
		}
		for _, l := range logs {
			if strings.Contains(stored, "file="+l[0]+" ") {
				return false, fmt.Errorf("%s still listed after PURGE", l[0])
			}
		}
		return true, nil
	}); err != nil {
		s.t.Fatal(err)
	}
}

// nextBinlog names the file after mysql-bin.000042.
func nextBinlog(name string) string {
	dot := strings.LastIndexByte(name, '.')
	n, _ := strconv.Atoi(name[dot+1:])
	return fmt.Sprintf("%s.%06d", name[:dot], n+1)
}

// Another replica registered with cdc's server id is reported: the server
// would keep disconnecting one of the two.
func TestMySQLServerIDInUseIsRefused(t *testing.T) {
	s := newMySQLScenario(t)
	id := mysqlsource.DefaultServerID(s.name)
	other := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: id, Flavor: "mariadb", Host: "127.0.0.1", Port: uint16(maria.Port), User: "root", Localhost: "other-replica",
	})
	defer other.Close()
	_, status, err := maria.Query("", "SHOW MASTER STATUS") // a file the server still has
	if err != nil {
		t.Fatal(err)
	}
	pos, _ := strconv.ParseUint(status[0][1], 10, 32)
	if _, err := other.StartSync(gomysql.Position{Name: status[0][0], Pos: uint32(pos)}); err != nil {
		t.Fatal(err)
	}
	out, err := s.validate(s.dsn)
	if want := fmt.Sprintf("server_id %d is already used by the replica other-replica\n    fix: set source.mysql.server_id", id); err == nil || !strings.Contains(out, want) {
		t.Fatalf("want %q: %v\n%s", want, err, out)
	}
}
