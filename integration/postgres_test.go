package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdc-dev/cdc/integration/harness"
)

func TestSnapshotThenStreamMatchesTheTable(t *testing.T) {
	s := newScenario(t)
	d := s.start()
	s.waitCustomersMatch()
	s.exec(
		`INSERT INTO customer (email, first_name, last_name, balance, birth_date) VALUES ('edsger@example.com', 'Edsger', 'Dijkstra', 1e9, '1930-05-11')`,
		`UPDATE customer SET email = 'ada@lovelace.org', balance = balance + 0.01 WHERE customer_id = 1`,
		`DELETE FROM customer WHERE customer_id = 3`,
		`UPDATE customer SET birth_date = NULL WHERE customer_id = 2`,
		`INSERT INTO orders (order_id, customer_id, status_code, total, details) VALUES ('c2aade77-7e2b-4ef8-bb6d-6bb9bd380a33', 4, 3, 0.01, '{"rush": true}')`,
		`UPDATE orders SET note = 'fragile' WHERE order_id = 'b1ffcd88-8d1a-4ef8-bb6d-6bb9bd380a22'`,
	)
	s.waitCustomersMatch()
	s.waitMatch("shop.order.v1", s.order, orderProjection)
	if err := d.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, d.Logs())
	}
}

// Crashes at random points of a stream of small transactions lose nothing; what
// was not yet checkpointed is sent again.
func TestKillNineMidStreamLosesNothing(t *testing.T) {
	s := newScenario(t)
	s.exec(s.bulk(1000))
	s.start()
	s.waitCustomersMatch()
	s.crashWhileWriting()
}

// A crash inside a large transaction resumes inside it: the rows acknowledged and
// checkpointed before the crash are not sent again.
func TestKillNineInsideALargeTransactionResumesInsideIt(t *testing.T) {
	const rows = 200_000
	s := newScenario(t)
	s.exec(s.bulk(rows))
	s.crashInsideALargeTransaction(rows, func(checkpoint string) (int, error) {
		return strconv.Atoi(checkpoint[strings.LastIndex(checkpoint, ":")+1:])
	})
	// Streamed before its commit to the first run: the crash came while the
	// held transaction was being published. The second run gets it whole:
	// the server streams nothing it reads again before the slot's position.
	if n, want := s.slotStat("cdc_"+s.name, "stream_txns"), map[bool]int64{false: 1, true: 0}[optionOff("streaming")]; n != want {
		t.Fatalf("the server streamed the transaction %d times, want %d", n, want)
	}
}

// A network path to PostgreSQL that silently drops everything (no reset, no
// close) is noticed from the keepalives cdc asks for and does not get: the
// daemon says so instead of waiting forever, and restarts the connector, which
// resumes from the checkpoint with nothing lost once the path works again.
// The server still counts the stalled walsender as the slot's user until
// wal_sender_timeout: the restarts wait for it.
func TestSilentReplicationConnectionIsNoticed(t *testing.T) {
	newScenario(t).silentDatabasePath(fmt.Sprintf("127.0.0.1:%d", pg.Port), "sent nothing, not even the keepalives cdc asks for, for 30s", 30*time.Second)
}

// A large value stored out of line (TOAST) that an update leaves alone arrives
// as "unchanged" in the new row; the record must still carry it whole, taken from
// the old row (REPLICA IDENTITY FULL), never a placeholder or a partial record.
func TestUnchangedToastedValueIsCarriedWhole(t *testing.T) {
	s := newScenario(t)
	s.start()
	s.waitCustomersMatch()
	// 16 KB of random hex: too large to stay inline even compressed.
	s.exec(`UPDATE customer SET last_name = (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 500)) WHERE customer_id = 1`)
	s.waitCustomersMatch()
	// Check that the server really logs the value as unchanged (else this test
	// would not test anything): test_decoding prints it as unchanged-toast-datum.
	s.exec(fmt.Sprintf(`SELECT pg_create_logical_replication_slot('%s_probe', 'test_decoding')`, s.name))
	// Committed synchronously: the probe reads only flushed WAL.
	s.exec(`SET synchronous_commit = on`, `UPDATE customer SET balance = balance + 1 WHERE customer_id = 1`)
	conn := s.conn()
	defer conn.Close(s.ctx)
	var logged string
	if err := conn.QueryRow(s.ctx, fmt.Sprintf(`SELECT string_agg(data, ' ') FROM pg_logical_slot_get_changes('%s_probe', NULL, NULL)`, s.name)).Scan(&logged); err != nil {
		t.Fatal(err)
	}
	s.exec(fmt.Sprintf(`SELECT pg_drop_replication_slot('%s_probe')`, s.name))
	if !strings.Contains(logged, "last_name[text]:unchanged-toast-datum") {
		t.Fatalf("the update did not log last_name as unchanged TOAST: %.300s", logged)
	}
	s.waitCustomersMatch()
}

// A broker that stops answering slows the source down (bounded memory) without
// the server dropping the replication connection, even when the stall lasts
// longer than wal_sender_timeout (5 s on the test cluster): status reports go on
// while the source waits. Nothing is lost or sent twice.
func TestStalledBrokerSlowsTheSourceWithoutLosingTheSlot(t *testing.T) {
	s := newScenario(t)
	d := s.start()
	s.waitCustomersMatch()
	release := make(chan struct{})
	s.kafka.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		select {
		case <-release:
			s.kafka.DropControl()
		default:
			s.kafka.KeepControl()
			s.kafka.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	s.exec(`INSERT INTO customer (email, first_name, last_name) SELECT 'stall' || g || '@example.com', 'Stalled', 'Row' FROM generate_series(1, 100000) g`)
	time.Sleep(12 * time.Second)
	if d.Exited() {
		t.Fatalf("the daemon exited during the stall:\n%s", d.Logs())
	}
	close(release)
	records := s.waitCustomersMatch()
	if len(records) != 3+100000 {
		t.Fatalf("%d records, want %d: each change exactly once without a crash", len(records), 3+100000)
	}
	if strings.Contains(d.Logs(), "lost") {
		t.Fatalf("the replication connection was lost:\n%s", d.Logs())
	}
}

// A slot whose WAL the server removed (max_slot_wal_keep_size exceeded while
// cdc was stopped) is found before streaming: snapshot.mode initial stops
// with what to do, when_needed drops the slot and snapshots again.
func TestSlotThatLostItsWALIsFoundBeforeStreaming(t *testing.T) {
	s := newScenario(t)
	d := s.start()
	s.waitCustomersMatch()
	s.stopOnceStreamingIsStored(d)
	s.exec(`UPDATE customer SET email = 'while-the-wal-was-lost@example.com' WHERE customer_id = 1`)
	// The setting is the server's: put it back for the tests after this one.
	reset := func() {
		_ = harness.Exec(s.ctx, s.dsn, "ALTER SYSTEM RESET max_slot_wal_keep_size", "SELECT pg_reload_conf()")
	}
	t.Cleanup(reset)
	s.exec("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'", "SELECT pg_reload_conf()")
	conn := s.conn()
	defer conn.Close(s.ctx)
	if err := harness.Eventually(30*time.Second, func() (bool, error) {
		s.exec(s.bulk(10), "SELECT pg_switch_wal()", s.bulk(10), "SELECT pg_switch_wal()", "CHECKPOINT")
		var status string
		err := conn.QueryRow(s.ctx, `SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1`, "cdc_"+s.name).Scan(&status)
		return status == "lost", err
	}); err != nil {
		t.Fatalf("the slot never lost its WAL: %v", err)
	}
	reset()

	s.start()
	s.mustExit("wal_status=lost", "snapshot.mode: when_needed")
	s.editConfig("  mode: initial", "  mode: when_needed")
	d = s.start()
	s.waitCustomersMatch()
	if !strings.Contains(d.Logs(), "dropping it and taking a new snapshot (snapshot.mode when_needed)") {
		t.Errorf("the daemon did not say it snapshots again:\n%s", d.Logs())
	}
}
