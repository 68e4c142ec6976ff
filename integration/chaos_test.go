package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdc-dev/cdc/integration/harness"
)

// chaosDuration is how long the faults go on: short in make test, long in
// make chaos (CDC_CHAOS_DURATION=5m).
func chaosDuration(t *testing.T) time.Duration {
	d := 20 * time.Second
	if v := os.Getenv("CDC_CHAOS_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("CDC_CHAOS_DURATION=%q: %v", v, err)
		}
	}
	return d
}

// Under a mixed insert/update/delete workload the daemon is killed with
// SIGKILL at random moments, the broker is restarted (its data kept) and
// stalled, and the database is restarted under it; at the end cdc verify finds
// the topic equal to the table, and so does the test's own materialization.
// What was sent twice is counted by CloudEvents id: in exactly-once mode, read
// committed, nothing may be.
func TestChaosLosesNothing(t *testing.T) {
	for _, mode := range []string{"at_least_once", "exactly_once"} {
		t.Run(mode, func(t *testing.T) {
			forEachSource(t, func(t *testing.T, s *scenario) {
				s.addChaosAggregate()
				s.chaos(mode == "exactly_once")
			})
		})
	}
}

// The same, on the logging settings that leave values out of the log, which
// cdc reads back from the tables: REPLICA IDENTITY DEFAULT (PostgreSQL) and
// binlog_row_image MINIMAL (MySQL, set by the workload's sessions, which a
// server restart does not reset).
func TestChaosLosesNothingOnPartialRowImages(t *testing.T) {
	modes := []struct {
		name  string
		start func(*testing.T) *scenario
	}{
		{"postgres_replica_identity_default", func(t *testing.T) *scenario {
			s := newScenario(t)
			s.exec(`ALTER TABLE customer REPLICA IDENTITY DEFAULT`, `ALTER TABLE orders REPLICA IDENTITY DEFAULT`)
			return s
		}},
		{"mysql_minimal", func(t *testing.T) *scenario {
			s := newMySQLScenario(t)
			s.rowImage = "MINIMAL"
			return s
		}},
	}
	for _, delivery := range []string{"at_least_once", "exactly_once"} {
		t.Run(delivery, func(t *testing.T) {
			for _, m := range modes {
				t.Run(m.name, func(t *testing.T) { m.start(t).chaos(delivery == "exactly_once") })
			}
		})
	}
}

// The same with two instances of the connector, one standing by: a kill is
// the leader's, and the standby takes over (its producer transactional, so
// read-committed consumers see nothing twice).
func TestChaosLosesNothingWithAStandby(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.standby = true
		s.addChaosAggregate()
		s.chaos(true)
	})
}

// chaos runs the faults against the scenario's connector (see TestChaosLosesNothing).
func (s *scenario) chaos(exactlyOnce bool) {
	t := s.t
	if exactlyOnce {
		s.editConfig("exactly_once: false", "exactly_once: true")
	}
	ctx, cancel := context.WithTimeout(context.Background(), chaosDuration(t)+5*time.Minute)
	t.Cleanup(cancel)
	s.ctx = ctx
	broker := s.useRestartableBroker()

	s.exec(s.bulk(2000))
	if s.standby {
		s.enableStandby()
	}
	instances := []*harness.Daemon{s.start()}
	s.waitCustomersMatch()
	if s.standby {
		instances = append(instances, s.start())
	}
	s.largeValues = true
	w := s.startWorkload(2000)

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	const (
		kill = iota
		restartBroker
		restartDatabase
		stallBroker
		kinds
	)
	// Every kind of fault once, then kills six times in ten.
	pick := func(i int) int {
		if i < kinds {
			return i
		}
		switch r := rng.Intn(10); {
		case r < 6:
			return kill
		case r < 7:
			return restartBroker
		case r < 8:
			return restartDatabase
		}
		return stallBroker
	}
	var count [kinds]int
	deadline := time.Now().Add(chaosDuration(t))
	for i := 0; time.Now().Before(deadline) || i < kinds; i++ {
		time.Sleep(time.Duration(300+rng.Intn(1500)) * time.Millisecond)
		fault := pick(i)
		count[fault]++
		switch fault {
		case kill: // at a random moment, and start again
			victim := instances[len(instances)-1]
			if s.standby { // the leader: a standby takes over
				victim = s.leader(instances...)
			}
			victim.Kill()
			time.Sleep(time.Duration(rng.Intn(500)) * time.Millisecond)
			instances = append(without(instances, victim), s.start())
		case restartBroker: // keeping its data
			broker.restart(time.Duration(rng.Intn(1000)) * time.Millisecond)
		case restartDatabase: // under the connector
			var err error
			if s.mysql {
				err = maria.Restart()
			} else {
				err = pg.Restart()
			}
			if err != nil {
				t.Fatalf("restart the database: %v", err)
			}
		case stallBroker: // it answers nothing for a few seconds
			broker.stallUntil.Store(time.Now().Add(time.Duration(2000+rng.Intn(4000)) * time.Millisecond).UnixNano())
		}
		if err := s.daemonsAlive(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("chaos (seed %d): %d kills, %d broker restarts, %d database restarts, %d broker stalls; %s",
		seed, count[kill], count[restartBroker], count[restartDatabase], count[stallBroker], s.nothingLost(w, exactlyOnce))
}

// nothingLost ends the workload, waits until cdc verify finds the topic equal
// to the table, counts the records sent twice (in exactly-once mode, read
// committed, none may be) and returns the figures.
func (s *scenario) nothingLost(w *workload, exactlyOnce bool) string {
	committed, failed := w.finish(s.t)
	verified := s.waitVerified(3*time.Minute, w)
	records := s.waitCustomersMatch()
	duplicates := sentTwice(records)
	if exactlyOnce && duplicates > 0 {
		s.t.Errorf("%d records sent twice in exactly-once mode, read committed", duplicates)
	}
	s.checkTransactions(map[string]bool{"shop.customer_events.v1": true})
	streamed := ""
	if !s.mysql {
		n := s.slotStat("cdc_"+s.name, "stream_txns")
		if n == 0 && !optionOff("streaming") {
			s.t.Errorf("the server streamed no transaction before its commit: the chaos test did not take that path")
		}
		streamed = fmt.Sprintf("; %d transactions streamed before their commit", n)
	}
	return fmt.Sprintf("%d transactions committed (%d failed with the database); %d records, %d sent twice; lost: 0 (%s)%s",
		committed, failed, len(records), duplicates, verified, streamed)
}

// Under the same workload, partition leaders move among three brokers (an
// election every 300 ms): the producer follows them, and nothing is lost or,
// in exactly-once mode, sent twice.
func TestLeaderChangesLoseNothing(t *testing.T) {
	for _, mode := range []string{"at_least_once", "exactly_once"} {
		t.Run(mode, func(t *testing.T) {
			forEachSource(t, func(t *testing.T, s *scenario) { s.leaderChanges(mode == "exactly_once") })
		})
	}
}

func (s *scenario) leaderChanges(exactlyOnce bool) {
	t := s.t
	if exactlyOnce {
		s.editConfig("exactly_once: false", "exactly_once: true")
	}
	s.kafka.Close()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	s.kafka, s.brokers = cluster, cluster.ListenAddrs()

	s.exec(s.bulk(2000))
	s.start()
	s.waitCustomersMatch()
	w := s.startWorkload(2000)
	elections, moves := 0, 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); elections++ {
		time.Sleep(300 * time.Millisecond)
		before := cluster.LeaderFor("shop.customer.v1", 0)
		cluster.ShufflePartitionLeaders()
		if cluster.LeaderFor("shop.customer.v1", 0) != before {
			moves++
		}
		if err := s.daemonsAlive(); err != nil {
			t.Fatal(err)
		}
	}
	if moves == 0 {
		t.Fatalf("%d elections never moved the leader of shop.customer.v1 partition 0", elections)
	}
	t.Logf("%d leader elections (%d moved shop.customer.v1 partition 0); %s", elections, moves, s.nothingLost(w, exactlyOnce))
}

// restartableBroker is a scenario's broker that keeps its data across
// restarts, on the same port, and can be stalled.
type restartableBroker struct {
	s          *scenario
	current    *chaosBroker
	dataDir    string
	port       int
	stallUntil *atomic.Int64
}

// useRestartableBroker replaces the scenario's broker with a restartable one.
func (s *scenario) useRestartableBroker() *restartableBroker {
	s.t.Helper()
	b := &restartableBroker{s: s, dataDir: filepath.Join(s.t.TempDir(), "kafka"), stallUntil: &atomic.Int64{}}
	s.kafka.Close()
	var err error
	if b.current, err = startChaosBroker(0, b.dataDir, b.stallUntil); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { b.current.close() })
	s.kafka, s.brokers = b.current.Cluster, b.current.ListenAddrs()
	_, port, _ := net.SplitHostPort(s.brokers[0])
	b.port, _ = strconv.Atoi(port)
	return b
}

// restart closes the broker and, after pause, starts it again with its data.
func (b *restartableBroker) restart(pause time.Duration) {
	b.s.t.Helper()
	b.current.close()
	time.Sleep(pause)
	var err error
	if b.current, err = startChaosBroker(b.port, b.dataDir, b.stallUntil); err != nil {
		b.s.t.Fatalf("restart the broker: %v", err)
	}
	b.s.kafka = b.current.Cluster
}

// chaosBroker is the chaos test's broker: kfake on a data directory, which
// stops answering while stallUntil (unix nanoseconds, shared by the broker's
// successive incarnations) is in the future, as a broker in a long pause does.
type chaosBroker struct {
	*kfake.Cluster
	closing  atomic.Bool
	wake     chan struct{} // closed by close: a held request goes on at once
	inFlight atomic.Int32  // control functions running
}

// startChaosBroker starts the broker. The first produce request in a stall
// holds the broker's whole request loop. (kfake's SleepControl, which holds
// one request and serves others meanwhile, lets a held produce request be
// appended after later ones of the same producer: a Kafka broker serves one
// connection's requests one at a time.)
func startChaosBroker(port int, dataDir string, stallUntil *atomic.Int64) (*chaosBroker, error) {
	cluster, err := harness.StartKafka(port, dataDir)
	if err != nil {
		return nil, err
	}
	b := &chaosBroker{Cluster: cluster, wake: make(chan struct{})}
	cluster.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.inFlight.Add(1)
		defer b.inFlight.Add(-1)
		if b.closing.Load() {
			cluster.KeepControl()
			return nil, errors.New("the broker is restarting"), true // the client's connection is closed
		}
		if wait := time.Until(time.Unix(0, stallUntil.Load())); wait > 0 && req.Key() == int16(kmsg.Produce) {
			select {
			case <-time.After(wait):
			case <-b.wake:
			}
		}
		return nil, nil, false // then handled as usual
	})
	return b, nil
}

// close closes the broker once no request is held, and no request reaches it
// meanwhile. A Close while a control function runs lets kfake's request loop
// go on after the shutdown has saved its state: the held produce request was
// then appended by the closed cluster to the partition files of the restarted
// one, at an offset the restarted one had already given another batch, and
// every reader of that partition stalled before it.
func (b *chaosBroker) close() {
	b.closing.Store(true)
	close(b.wake)
	for b.inFlight.Load() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	// The request loop finishes the request it was given back before it
	// takes the next one, Close's included.
	time.Sleep(100 * time.Millisecond)
	b.Cluster.Close()
}

// waitVerified runs cdc verify until it finds no difference (the daemon may
// still be catching up) and returns its summary of the customers.
func (s *scenario) waitVerified(timeout time.Duration, w *workload) string {
	s.t.Helper()
	var out string
	err := harness.Eventually(timeout, func() (bool, error) {
		var err error
		out, err = s.runToEnd(2*time.Minute, "verify", "--config", s.config)
		return err == nil, s.daemonsAlive()
	})
	if err != nil {
		// What the test's own reading of the topic says, to tell the reader from the data.
		state, _, rerr := s.topicState("shop.customer.v1", s.customer)
		differences := diff(state, s.project(s.customerProjection()))
		s.t.Fatalf("cdc verify kept finding differences: %v\n%s\nthe test's own materialization (read error %v):\n%s\n%s", err, out, rerr, truncate(differences, 3000), s.history(differences, w))
	}
	var summary []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "entity customer:") || strings.HasPrefix(line, "entity customer_orders:") {
			summary = append(summary, line)
		}
	}
	if summary == nil {
		return out
	}
	return strings.Join(summary, "; ")
}

// history shows, for the first keys of a diff, the workload's statements on
// them and the topic's records of them.
func (s *scenario) history(differences string, w *workload) string {
	records, err := harness.ReadTopic(s.ctx, s.brokers, "shop.customer.v1")
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for i, line := range strings.Split(differences, "\n") {
		start, end := strings.Index(line, `{"id":`), strings.Index(line, "}")
		if i >= 5 || start < 0 || end < start {
			break
		}
		key := line[start : end+1]
		id := key[len(`{"id":`) : len(key)-1]
		fmt.Fprintf(&b, "key %s:\n", key)
		for _, h := range w.history {
			if strings.HasSuffix(strings.SplitN(h, ": ", 2)[0], "customer_id = "+id) {
				fmt.Fprintf(&b, "  sql %s\n", h)
			}
		}
		if s.mysql {
			b.WriteString(maria.BinlogRows(id))
		}
		for _, r := range records {
			if k, _ := s.customer.Key(r.Key); k == key {
				fmt.Fprintf(&b, "  record p%d@%d null=%v op=%s position=%s time=%s\n", r.Partition, r.Offset, r.Value == nil, r.Headers["cdc_op"], r.Headers["cdc_position"], r.Headers["ce_time"])
			}
		}
	}
	return b.String()
}

// workload runs small transactions against the customer table until stopped,
// riding out database restarts: a statement that fails is abandoned (it may
// or may not have committed; the comparison is with the table as it ends).
type workload struct {
	committed, failed atomic.Int64
	stop              chan struct{}
	done              chan struct{}
	// history holds each statement run, with when and how it ended, for the
	// message of a failed comparison; read once the workload is finished.
	history []string
}

func (s *scenario) startWorkload(maxID int) *workload {
	w := &workload{stop: make(chan struct{}), done: make(chan struct{})}
	exec := s.reconnectingExec()
	go func() {
		defer close(w.done)
		rng := rand.New(rand.NewSource(int64(maxID)))
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			var stmt string
			switch r := rng.Intn(100); {
			case s.aggregate && rng.Intn(10) == 0:
				stmt = s.chaosOrderStatement(rng, i, maxID)
			case r < 2:
				// A transaction of several hundred changes, past PostgreSQL's
				// logical_decoding_work_mem on the test cluster (streamed
				// before its commit), one of its subtransactions rolled back.
				from := 1 + rng.Intn(maxID)
				stmt = fmt.Sprintf("BEGIN;\nUPDATE customer SET balance = balance + 1 WHERE customer_id BETWEEN %d AND %d;\nSAVEPOINT undone;\n"+
					"UPDATE customer SET first_name = 'Undone' WHERE customer_id BETWEEN %d AND %d;\nROLLBACK TO SAVEPOINT undone;\nCOMMIT", from, from+600, from, from+600)
			case r < 5 && s.largeValues && !s.mysql:
				// A value stored out of line (TOAST), which later updates of
				// other columns leave out of the log under REPLICA IDENTITY DEFAULT.
				stmt = fmt.Sprintf(`UPDATE customer SET last_name = (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 600)) WHERE customer_id = %d`, 1+rng.Intn(maxID))
			case r < 70:
				stmt = fmt.Sprintf(`UPDATE customer SET balance = balance + 1 WHERE customer_id = %d`, 1+rng.Intn(maxID))
			case r < 85:
				stmt = fmt.Sprintf(`INSERT INTO customer (email, first_name, last_name) VALUES ('chaos%d@example.com', 'Chaos', 'Monkey')`, i)
			case r < 95:
				stmt = fmt.Sprintf(`DELETE FROM customer WHERE customer_id = %d`, 1+rng.Intn(maxID))
			case r < 98:
				// A change and its event in the outbox, in one transaction.
				id := 1 + rng.Intn(maxID)
				stmt = fmt.Sprintf("BEGIN;\nUPDATE customer SET email = 'evented%d@example.com' WHERE customer_id = %d;\n%s;\nCOMMIT", i, id,
					outboxInsert("Customer", fmt.Sprintf("'%d'", id), "EmailChanged", fmt.Sprintf(`{"customer_id": %d, "email": "evented%d@example.com", "at": 0}`, id, i)))
			default:
				stmt = fmt.Sprintf(`UPDATE customer SET email = 'changed%d@example.com' WHERE customer_id = %d`, i, 1+rng.Intn(maxID))
			}
			err := exec(stmt)
			w.history = append(w.history, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), stmt, err))
			if err != nil {
				w.failed.Add(1)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			w.committed.Add(1)
		}
	}()
	return w
}

// addChaosAggregate adds an aggregate entity to the scenario: each customer
// with its orders (a table the workload writes besides), checked by cdc
// verify at the end like the table entities.
func (s *scenario) addChaosAggregate() {
	s.t.Helper()
	s.aggregate = true
	schema := "public"
	if s.mysql {
		schema = s.name
		s.exec(`CREATE TABLE chaos_order (order_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, total BIGINT NOT NULL)`)
	} else {
		s.exec(`CREATE TABLE chaos_order (order_id bigint PRIMARY KEY, customer_id bigint NOT NULL, total bigint NOT NULL)`,
			`ALTER TABLE chaos_order REPLICA IDENTITY FULL`)
	}
	s.exec(`INSERT INTO chaos_order SELECT n, 1 + n % 50, 0 FROM ` + s.series(500))
	dir := writeSchemas(s.t, map[string]string{"customer_orders.avsc": `{"type": "record", "name": "CustomerOrders", "namespace": "shop.v1", "fields": [
  {"name": "id", "type": "long"}, {"name": "email", "type": "string"},
  {"name": "orders", "type": {"type": "array", "items": {"type": "record", "name": "CustomerOrder", "fields": [
    {"name": "id", "type": "long"}, {"name": "total", "type": "long"}]}}}]}`})
	data, err := os.ReadFile(s.config)
	if err != nil {
		s.t.Fatal(err)
	}
	entity := fmt.Sprintf(`
  - name: customer_orders
    table: %[1]s.customer
    topic: shop.customer_orders.v1
    schema: %[2]s
    key: [id]
    fields: {id: customer_id, email: email}
    children:
      orders: {table: %[1]s.chaos_order, join: {customer_id: customer_id}, fields: {id: order_id, total: total}}
`, schema, filepath.Join(dir, "customer_orders.avsc"))
	if err := os.WriteFile(s.config, append(data, entity...), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// chaosOrderStatement changes the aggregate's children: an order placed,
// changed, moved to another customer or deleted.
func (s *scenario) chaosOrderStatement(rng *rand.Rand, i, maxID int) string {
	order := 1 + rng.Intn(500)
	stmt := []string{
		fmt.Sprintf(`INSERT INTO chaos_order VALUES (%d, %d, 1) ON CONFLICT DO NOTHING`, 1000+i, 1+rng.Intn(maxID)),
		fmt.Sprintf(`UPDATE chaos_order SET total = total + 1 WHERE order_id = %d`, order),
		fmt.Sprintf(`UPDATE chaos_order SET customer_id = %d WHERE order_id = %d`, 1+rng.Intn(maxID), order),
		fmt.Sprintf(`DELETE FROM chaos_order WHERE order_id = %d`, 1000+rng.Intn(i+1)),
	}[rng.Intn(4)]
	if s.mysql {
		stmt = strings.Replace(strings.Replace(stmt, " ON CONFLICT DO NOTHING", "", 1), "INSERT INTO", "INSERT IGNORE INTO", 1)
	}
	return stmt
}

func (w *workload) finish(t *testing.T) (committed, failed int64) {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.committed.Load() == 0 {
		t.Fatal("the workload committed nothing")
	}
	return w.committed.Load(), w.failed.Load()
}

// reconnectingExec runs statements on one connection, opened again after a failure.
func (s *scenario) reconnectingExec() func(stmt string) error {
	if s.mysql {
		return func(stmt string) error { return maria.Exec(s.name, append(s.sessionSettings(), stmt)...) }
	}
	var conn *pgx.Conn
	return func(stmt string) error {
		if conn == nil || conn.IsClosed() {
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			defer cancel()
			c, err := pgx.Connect(ctx, s.dsn)
			if err != nil {
				return err
			}
			conn = c
		}
		if _, err := conn.Exec(s.ctx, stmt); err != nil {
			conn.Close(context.Background())
			conn = nil
			return err
		}
		return nil
	}
}
