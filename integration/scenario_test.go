package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/big"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdc-dev/cdc/integration/harness"
)

// scenario is one connector's world: its own database, broker and config.
type scenario struct {
	t       *testing.T
	ctx     context.Context
	name    string
	mysql   bool // the database is the private MariaDB, not PostgreSQL
	dsn     string
	kafka   *kfake.Cluster
	brokers []string
	config  string
	daemons []*harness.Daemon
	env     []string // more environment of the daemons, VAR=value
	// rowImage, if set, is the binlog_row_image of the scenario's MySQL sessions.
	rowImage string
	// largeValues has the chaos workload also write values of 19 KB, which
	// PostgreSQL stores out of line (TOAST).
	largeValues bool
	// standby has the chaos test run two instances of the connector.
	standby bool
	// aggregate has the chaos test map an aggregate entity and write its
	// child table (see addChaosAggregate).
	aggregate bool
	customer  *harness.Codec
	order     *harness.Codec
}

// Keys as the README documents them: a record named <Value>Key with the key fields.
const (
	customerKeySchema = `{"type":"record","name":"CustomerKey","namespace":"shop.v1","fields":[{"name":"id","type":"long"}]}`
	orderKeySchema    = `{"type":"record","name":"OrderKey","namespace":"shop.v1","fields":[{"name":"id","type":{"type":"string","logicalType":"uuid"}}]}`
)

var (
	nonWord   = regexp.MustCompile(`[^a-z0-9]+`)
	scenarios atomic.Int64
)

// newScenario starts a scenario on the sample shop schema, configured with
// config.example.yaml as users get it.
func newScenario(t *testing.T) *scenario {
	t.Helper()
	s := newEmptyScenario(t)
	if err := harness.Exec(s.ctx, s.dsn, harness.ShopSQL); err != nil {
		t.Fatal(err)
	}
	return s
}

// newMySQLScenario starts a scenario on the sample shop schema in MariaDB,
// configured with config.mysql.example.yaml.
func newMySQLScenario(t *testing.T) *scenario {
	t.Helper()
	s := newEmptyMySQLScenario(t)
	s.exec(harness.ShopMySQL)
	return s
}

// newEmptyMySQLScenario starts a scenario on an empty MariaDB database.
func newEmptyMySQLScenario(t *testing.T) *scenario {
	t.Helper()
	return startScenario(t, true)
}

// newEmptyScenario starts a scenario on an empty database.
func newEmptyScenario(t *testing.T) *scenario {
	t.Helper()
	return startScenario(t, false)
}

func startScenario(t *testing.T, mysql bool) *scenario {
	t.Helper()
	if mysql && os.Getenv("CDC_TEST_POSTGRES_OPTIONS") != "" {
		t.Skip("this run tests the PostgreSQL source in another mode (CDC_TEST_POSTGRES_OPTIONS); make test runs the MySQL scenarios")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	// Database, slot and connector names: readable, unique, within PostgreSQL's 63 bytes.
	name := strings.Trim(nonWord.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(name) > 40 {
		name = fmt.Sprintf("%s_%08x", name[:31], crc32.ChecksumIEEE([]byte(t.Name())))
	}
	name = fmt.Sprintf("%s_%d", name, scenarios.Add(1)) // -count=N runs a test again
	s := &scenario{t: t, ctx: ctx, name: name, mysql: mysql}
	var err error
	exampleFile := "config.example.yaml"
	if mysql {
		s.dsn, err = maria.CreateDatabase(name)
		exampleFile = "config.mysql.example.yaml"
	} else {
		s.dsn, err = pg.CreateDatabase(ctx, name)
	}
	if err != nil {
		t.Fatal(err)
	}
	if s.kafka, err = harness.StartKafka(0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.kafka.Close)
	s.brokers = s.kafka.ListenAddrs()
	root, _ := filepath.Abs("..")
	if s.customer, err = harness.NewCodec(filepath.Join(root, "schemas/customer.v1.avsc"), customerKeySchema); err != nil {
		t.Fatal(err)
	}
	if s.order, err = harness.NewCodec(filepath.Join(root, "schemas/order.v1.avsc"), orderKeySchema); err != nil {
		t.Fatal(err)
	}
	// The example configuration, as users get it, with this scenario's names.
	example, err := os.ReadFile(filepath.Join(root, exampleFile))
	if err != nil {
		t.Fatal(err)
	}
	config := strings.NewReplacer("name: shop", "name: "+name, "cdc_shop", "cdc_"+name, "table: shop.", "table: "+name+".",
		"schemas/", filepath.Join(root, "schemas")+"/").Replace(string(example))
	if options := os.Getenv("CDC_TEST_POSTGRES_OPTIONS"); options != "" && !mysql {
		// The whole suite in another mode of the PostgreSQL source (make
		// test-postgres-modes): "streaming: false, binary: false".
		config = strings.Replace(config, "    slot: ", "    "+strings.ReplaceAll(options, ", ", "\n    ")+"\n    slot: ", 1)
	}
	s.config = filepath.Join(t.TempDir(), "cdc.yaml")
	if err := os.WriteFile(s.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, d := range s.daemons {
			if !d.Exited() {
				d.Kill()
			}
			if t.Failed() {
				t.Logf("daemon log:\n%s", d.Logs())
			}
		}
		drop := func() error { return pg.DropDatabase(context.Background(), name) }
		if mysql {
			drop = func() error { return maria.DropDatabase(name) }
		}
		if err := drop(); err != nil {
			t.Errorf("drop the scenario's database: %v", err)
		}
	})
	return s
}

// start runs `cdc run` on the scenario's config.
func (s *scenario) start() *harness.Daemon {
	s.t.Helper()
	return s.startCommand("run", "--config", s.config)
}

// startCommand runs cdc with the scenario's environment; the daemon is the
// one daemonsAlive watches.
func (s *scenario) startCommand(args ...string) *harness.Daemon {
	s.t.Helper()
	d := s.launch(args...)
	s.daemons = append(s.daemons, d)
	return d
}

// runToEnd runs a cdc command that ends by itself and returns its output.
func (s *scenario) runToEnd(timeout time.Duration, args ...string) (string, error) {
	s.t.Helper()
	d := s.launch(args...)
	err := d.Wait(timeout)
	if !d.Exited() {
		d.Dump()
		s.t.Fatalf("cdc %s did not end within %s:\n%s", strings.Join(args, " "), timeout, d.Logs())
	}
	return d.Logs(), err
}

func (s *scenario) launch(args ...string) *harness.Daemon {
	s.t.Helper()
	d, err := harness.StartDaemon(cdcBin, append([]string{"SHOP_DSN=" + s.dsn, "SHOP_MYSQL_DSN=" + s.dsn, "KAFKA_BROKERS=" + strings.Join(s.brokers, ",")}, s.env...),
		args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

// command runs a cdc command to its end with the scenario's environment, the
// database at dsn, and returns what it printed on stdout and stderr.
func (s *scenario) command(dsn string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(cdcBin, args...)
	cmd.Env = append(cmd.Environ(), "SHOP_DSN="+dsn, "SHOP_MYSQL_DSN="+dsn, "KAFKA_BROKERS="+strings.Join(s.brokers, ","))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// daemonsAlive fails the wait at once when the last daemon started has exited.
func (s *scenario) daemonsAlive() error {
	if n := len(s.daemons); n > 0 && s.daemons[n-1].Exited() {
		s.t.Fatalf("the daemon exited: %v\n%s", s.daemons[n-1].Wait(0), s.daemons[n-1].Logs())
	}
	return nil
}

// bulk is a statement inserting n customers, in the scenario database's dialect.
func (s *scenario) bulk(n int) string {
	if s.mysql {
		return fmt.Sprintf(`INSERT INTO customer (email, first_name, last_name) SELECT CONCAT('bulk', seq, '@example.com'), 'Bulk', 'Row' FROM seq_1_to_%d`, n)
	}
	return fmt.Sprintf(`INSERT INTO customer (email, first_name, last_name) SELECT 'bulk' || g || '@example.com', 'Bulk', 'Row' FROM generate_series(1, %d) g`, n)
}

func (s *scenario) exec(sql ...string) {
	s.t.Helper()
	var err error
	if s.mysql {
		err = maria.Exec(s.name, append(s.sessionSettings(), sql...)...)
	} else {
		err = harness.Exec(s.ctx, s.dsn, sql...)
	}
	if err != nil {
		s.t.Fatal(err)
	}
}

// sessionSettings are the statements that start each of the scenario's
// MySQL sessions.
func (s *scenario) sessionSettings() []string {
	if s.rowImage == "" {
		return nil
	}
	return []string{"SET SESSION binlog_row_image = '" + s.rowImage + "'"}
}

// Projections of the entities, computed by PostgreSQL from the tables: the
// expected content of the topics. The first column is the key as JSON; the others
// are named after the Avro fields, in the text forms normalize gives decoded
// values (decimals with two digits, times in microseconds since the epoch).
const (
	customerProjection = `SELECT format('{"id":%s}', customer_id) AS key, customer_id::text AS id, email, first_name, last_name,
		balance::text AS balance, coalesce((extract(epoch FROM birth_date) * 1000000)::bigint::text, 'null') AS birth_date,
		(extract(epoch FROM created_at) * 1000000)::bigint::text AS created_at FROM public.customer`
	orderProjection = `SELECT format('{"id":"%s"}', order_id) AS key, order_id::text AS id, customer_id::text AS customer_id,
		status_code::text AS status, total::text AS total, coalesce(note, 'null') AS note,
		(extract(epoch FROM placed_at) * 1000000)::bigint::text AS placed_at, coalesce(details::text, 'null') AS details FROM public.orders`
	customerProjectionMySQL = "SELECT CONCAT('{\"id\":', customer_id, '}') AS `key`, CAST(customer_id AS CHAR) AS id, email, first_name, last_name," +
		" CAST(balance AS CHAR) AS balance, COALESCE(CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', birth_date) AS CHAR), 'null') AS birth_date," +
		" CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', created_at) AS CHAR) AS created_at FROM customer"
)

// project runs a projection query.
func (s *scenario) project(query string) map[string]map[string]string {
	s.t.Helper()
	if s.mysql {
		names, rows, err := maria.Query(s.name, query)
		if err != nil {
			s.t.Fatal(err)
		}
		out := map[string]map[string]string{}
		for _, row := range rows {
			fields := map[string]string{}
			for i, name := range names[1:] {
				fields[name] = row[i+1]
			}
			out[row[0]] = fields
		}
		return out
	}
	conn, err := pgx.Connect(s.ctx, s.dsn)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(s.ctx)
	rows, err := conn.Query(s.ctx, query)
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for rows.Next() {
		values, err := rows.Values()
		if err != nil {
			s.t.Fatal(err)
		}
		fields := map[string]string{}
		for i, f := range rows.FieldDescriptions()[1:] {
			fields[f.Name] = fmt.Sprint(values[i+1])
		}
		out[values[0].(string)] = fields
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	return out
}

// normalize renders a value goavro decoded in the text forms of the projection.
func normalize(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case map[string]any: // a union branch
		for _, inner := range v {
			return normalize(inner)
		}
	case *big.Rat:
		return v.FloatString(2)
	case time.Time:
		return fmt.Sprint(v.UnixMicro())
	}
	return fmt.Sprint(v)
}

// topicState materializes a topic and renders it like the projection.
func (s *scenario) topicState(topic string, codec *harness.Codec) (map[string]map[string]string, []harness.Record, error) {
	records, err := harness.ReadTopic(s.ctx, s.brokers, topic)
	if err != nil {
		return nil, nil, err
	}
	state, err := codec.Materialize(records)
	if err != nil {
		return nil, nil, err
	}
	return normalizeState(state), records, nil
}

// normalizeState renders a materialized topic like a projection.
func normalizeState(state map[string]map[string]any) map[string]map[string]string {
	out := map[string]map[string]string{}
	for k, v := range state {
		fields := map[string]string{}
		for name, value := range v {
			fields[name] = normalize(value)
		}
		out[k] = fields
	}
	return out
}

// diff describes how a topic's state differs from the projection ("" if equal).
func diff(topic, want map[string]map[string]string) string {
	var b strings.Builder
	for k, w := range want {
		got, ok := topic[k]
		if !ok {
			fmt.Fprintf(&b, "missing key %s\n", k)
			continue
		}
		for field, value := range w {
			if got[field] != value {
				fmt.Fprintf(&b, "key %s field %s: topic %q, table %q\n", k, field, got[field], value)
			}
		}
		if len(got) != len(w) {
			fmt.Fprintf(&b, "key %s: topic has fields %v, entity has %d\n", k, got, len(w))
		}
	}
	for k := range topic {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "extra key %s\n", k)
		}
	}
	return b.String()
}

// waitMatch waits until a topic, materialized, equals the projection, and
// returns the topic's records.
func (s *scenario) waitMatch(topic string, codec *harness.Codec, projection string) []harness.Record {
	s.t.Helper()
	var records []harness.Record
	var last string
	err := harness.Eventually(90*time.Second, func() (bool, error) {
		if err := s.daemonsAlive(); err != nil {
			return false, err
		}
		state, recs, err := s.topicState(topic, codec)
		if err != nil {
			return false, err
		}
		records = recs
		last = diff(state, s.project(projection))
		return last == "", nil
	})
	if err != nil {
		s.t.Fatalf("topic %s never matched the table: %v\n%s", topic, err, truncate(last, 3000))
	}
	return records
}

func (s *scenario) waitCustomersMatch() []harness.Record {
	s.t.Helper()
	return s.waitMatch("shop.customer.v1", s.customer, s.customerProjection())
}

// customerProjection is the customer entity's projection in the scenario's dialect.
func (s *scenario) customerProjection() string {
	if s.mysql {
		return customerProjectionMySQL
	}
	return customerProjection
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// writer runs small transactions against the customer table until stopped:
// updates that raise a balance by one (so every key's values must rise), inserts
// and deletes. It counts committed transactions.
type writer struct {
	committed atomic.Int64
	stop      chan struct{}
	done      chan error
}

func (s *scenario) startWriter(maxID int) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan error, 1)}
	update, insert, remove := `UPDATE customer SET balance = balance + 1 WHERE customer_id = $1`,
		`INSERT INTO customer (email, first_name, last_name) VALUES ($1, 'New', 'Customer')`,
		`DELETE FROM customer WHERE customer_id = $1`
	var exec func(query string, arg any) error
	var closeConn func()
	if s.mysql {
		conn, err := maria.Conn(s.name)
		if err != nil {
			s.t.Fatal(err)
		}
		exec = func(query string, arg any) error {
			_, err := conn.Execute(strings.ReplaceAll(query, "$1", "?"), arg)
			return err
		}
		closeConn = func() { conn.Close() }
	} else {
		conn := s.conn()
		exec = func(query string, arg any) error { _, err := conn.Exec(s.ctx, query, arg); return err }
		closeConn = func() { conn.Close(context.Background()) }
	}
	go func() {
		defer closeConn()
		rng := rand.New(rand.NewSource(int64(maxID)))
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				w.done <- nil
				return
			default:
			}
			var err error
			switch r := rng.Intn(100); {
			case r < 80:
				err = exec(update, 1+rng.Intn(maxID))
			case r < 95:
				err = exec(insert, fmt.Sprintf("w%d@example.com", i))
			default:
				err = exec(remove, 1+rng.Intn(maxID))
			}
			if err != nil {
				w.done <- err
				return
			}
			w.committed.Add(1)
		}
	}()
	return w
}

func (w *writer) finish(t *testing.T) int64 {
	t.Helper()
	close(w.stop)
	if err := <-w.done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	return w.committed.Load()
}

// checkValuesRise checks that, key by key, a field only grows and that nothing
// follows a tombstone: what the topic shows when every change is sent once, in
// commit order. With repeatsAllowed a value may come again (a backfill read
// of a value streamed before it), but an older one never.
func checkValuesRise(t *testing.T, codec *harness.Codec, records []harness.Record, field string, repeats valueRepeats) {
	t.Helper()
	last := map[string]*big.Rat{}
	deleted := map[string]bool{}
	for _, r := range records {
		key, err := codec.Key(r.Key)
		if err != nil {
			t.Fatal(err)
		}
		value, err := codec.Value(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if deleted[key] {
			t.Fatalf("key %s: a record after its tombstone (offset %d, cdc_op %s)", key, r.Offset, r.Headers["cdc_op"])
		}
		if value == nil {
			deleted[key] = true
			continue
		}
		v := value[field].(*big.Rat)
		if prev, ok := last[key]; ok && (v.Cmp(prev) < 0 || v.Cmp(prev) == 0 && repeats == repeatsRefused) {
			t.Fatalf("key %s: %s %s after %s (partition %d offset %d, cdc_op %s): a change sent twice or out of commit order",
				key, field, v.FloatString(2), prev.FloatString(2), r.Partition, r.Offset, r.Headers["cdc_op"])
		}
		last[key] = v
	}
}

// valueRepeats says whether checkValuesRise accepts a value twice in a row.
type valueRepeats bool

const (
	repeatsRefused valueRepeats = false
	repeatsAllowed valueRepeats = true
)

// readTopic reads every record of a topic.
func (s *scenario) readTopic(topic string) []harness.Record {
	s.t.Helper()
	records, err := harness.ReadTopic(s.ctx, s.brokers, topic)
	if err != nil {
		s.t.Fatal(err)
	}
	return records
}

// checkpoint reads the connector's stored position from the checkpoint topic.
func (s *scenario) checkpoint() string {
	s.t.Helper()
	pos := ""
	for _, r := range s.readTopic("_cdc_checkpoints") {
		if string(r.Key) != s.name {
			continue
		}
		var cp struct{ Position string }
		if err := json.Unmarshal(r.Value, &cp); err != nil {
			s.t.Fatal(err)
		}
		pos = cp.Position
	}
	return pos
}

// crashWhileWriting kills the daemon three times at different moments of a
// stream of small transactions, restarting it each time, then checks that the
// topic ends equal to the table: what was not checkpointed is sent again,
// nothing is lost. It returns the topic's records.
func (s *scenario) crashWhileWriting() []harness.Record {
	s.t.Helper()
	w := s.startWriter(1000)
	for i := 0; i < 3; i++ {
		time.Sleep(time.Duration(700+300*i) * time.Millisecond)
		s.daemons[len(s.daemons)-1].Kill()
		time.Sleep(200 * time.Millisecond)
		s.start()
	}
	time.Sleep(time.Second)
	total := w.finish(s.t)
	records := s.waitCustomersMatch()
	s.t.Logf("3 kills, %d transactions, %d records in the topic", total, len(records))
	return records
}

// silentDatabasePath puts a proxy between the daemon and the database at
// server, stalls it once the daemon streams (bytes stop flowing, connections
// stay open), waits for the daemon to log notice within about deadAfter, and
// lets the path work again: the connector must recover by itself with the
// change made during the stall.
func (s *scenario) silentDatabasePath(server, notice string, deadAfter time.Duration) {
	s.t.Helper()
	proxy, err := harness.StartProxy(server)
	if err != nil {
		s.t.Fatal(err)
	}
	defer proxy.Close()
	direct := s.dsn
	s.dsn = strings.Replace(direct, server, proxy.Addr(), 1)
	d := s.start()
	s.waitCustomersMatch()
	proxy.Stall(true)
	stalled := time.Now()
	s.dsn = direct // the test's own statements go straight
	s.exec(`UPDATE customer SET email = 'during-the-stall@example.com' WHERE customer_id = 1`)
	s.waitLog(d, notice)
	if waited := time.Since(stalled); waited > 2*deadAfter {
		s.t.Errorf("the dead connection was noticed after %s, want about %s", waited, deadAfter)
	}
	if s.ready(d) {
		s.t.Fatalf("the connector is ready on a stalled path:\n%s", d.Logs())
	}
	proxy.Stall(false)
	s.waitCustomersMatch()
	s.waitRunningAgain(d)
}

// crashInsideALargeTransaction updates every customer (rows bulk rows and the
// three of the shop) in one transaction, kills the daemon once a checkpoint
// inside that transaction is stored, restarts it, and checks that exactly the
// changes after the checkpoint are sent again. index reads a checkpoint's
// change index inside its transaction (0 at a transaction boundary).
func (s *scenario) crashInsideALargeTransaction(rows int, index func(checkpoint string) (int, error)) {
	s.t.Helper()
	d := s.start()
	base := len(s.waitCustomersMatch())
	start := s.checkpoint()
	// A slightly slow broker (20 ms a produce request) makes the
	// transaction's records take several checkpoint intervals: otherwise a
	// fast run acknowledges all of them between two checkpoints, and no
	// checkpoint lands inside the transaction.
	var slow atomic.Bool
	slow.Store(true)
	s.kafka.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if slow.Load() {
			time.Sleep(20 * time.Millisecond)
		}
		return nil, nil, false
	})
	s.exec(`UPDATE customer SET balance = balance + 1`)
	var stored string
	if err := harness.Eventually(60*time.Second, func() (bool, error) {
		stored = s.checkpoint()
		at, err := index(stored)
		return stored != start && err == nil && at > 0, s.daemonsAlive()
	}); err != nil {
		s.t.Fatalf("no checkpoint inside the transaction was stored: %v", err)
	}
	d.Kill()
	slow.Store(false)
	stored = s.checkpoint() // the last one before the crash
	at, err := index(stored)
	if err != nil || at == 0 || at >= rows+3 {
		s.t.Fatalf("checkpoint %q is not inside the transaction (%v)", stored, err)
	}
	produced := len(s.readTopic("shop.customer.v1")) - base
	s.start()
	// The first run may have sent the whole transaction before the kill, so the
	// topic can match the table before the second run has sent anything: count
	// only once the second run has stored a checkpoint past the transaction.
	if err := harness.Eventually(60*time.Second, func() (bool, error) {
		cp := s.checkpoint()
		at, err := index(cp)
		return cp != stored && cp != start && err == nil && at == 0, s.daemonsAlive()
	}); err != nil {
		s.t.Fatalf("the second run stored no checkpoint past the transaction: %v", err)
	}
	records := s.waitCustomersMatch()
	// Every row of the transaction after the checkpoint is sent by the second
	// run; the ones before it only by the first.
	if got, want := len(records)-base, produced+(rows+3-at); got != want {
		s.t.Fatalf("%d records for the transaction, want %d = %d before the crash + %d after the checkpoint at change %d",
			got, want, produced, rows+3-at, at)
	}
	s.t.Logf("crashed after %d of %d rows; checkpoint %s; %d rows sent twice", produced, rows+3, stored, produced-at)
}

// editConfig rewrites the scenario's configuration.
func (s *scenario) editConfig(oldNew ...string) {
	s.t.Helper()
	data, err := os.ReadFile(s.config)
	if err != nil {
		s.t.Fatal(err)
	}
	edited := strings.NewReplacer(oldNew...).Replace(string(data))
	if edited == string(data) {
		s.t.Fatalf("editConfig: nothing replaced")
	}
	if err := os.WriteFile(s.config, []byte(edited), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// mustExit waits for the last daemon to exit by itself and returns its output,
// failing unless it exited with an error whose output contains every want.
func (s *scenario) mustExit(want ...string) string {
	s.t.Helper()
	d := s.daemons[len(s.daemons)-1]
	err := d.Wait(60 * time.Second)
	if err == nil {
		s.t.Fatalf("the daemon exited with status 0; output:\n%s", d.Logs())
	}
	if !d.Exited() {
		s.t.Fatalf("the daemon did not exit: %v\n%s", err, d.Logs())
	}
	logs := d.Logs()
	for _, w := range want {
		if !strings.Contains(logs, w) {
			s.t.Errorf("output lacks %q:\n%s", w, logs)
		}
	}
	return logs
}

// tableName is the scenario's table of that name as the daemon names it.
func (s *scenario) tableName(name string) string {
	if s.mysql {
		return s.name + "." + name
	}
	return "public." + name
}

// waitMetrics waits until a running daemon's metrics show what holds wants.
func (s *scenario) waitMetrics(d *harness.Daemon, what string, holds func(metrics map[string]float64) bool) map[string]float64 {
	s.t.Helper()
	addr, err := d.MetricsAddress(30 * time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	var got map[string]float64
	if err := harness.Eventually(90*time.Second, func() (bool, error) {
		got = scrape(s.t, addr)
		return holds(got), s.daemonsAlive()
	}); err != nil {
		s.t.Fatalf("the daemon's metrics never showed %s: %v\n%s", what, err, d.Logs())
	}
	return got
}

// waitTableRead waits until the daemon has read the whole of a table, by a
// snapshot or a backfill (cdc_snapshot_finished).
func (s *scenario) waitTableRead(d *harness.Daemon, name string) {
	s.t.Helper()
	series := fmt.Sprintf("cdc_snapshot_finished{table=%q}", s.tableName(name))
	s.waitMetrics(d, series+" 1", func(m map[string]float64) bool { return m[series] == 1 })
}

// waitRunningAgain waits until the daemon restarted its connector after a
// failure and is ready again: cdc_restarts_total counted it, /readyz answers.
func (s *scenario) waitRunningAgain(d *harness.Daemon) {
	s.t.Helper()
	addr, _ := d.MetricsAddress(30 * time.Second)
	s.waitMetrics(d, "a restart, then readiness", func(m map[string]float64) bool {
		return m["cdc_restarts_total"] >= 1 && httpStatus(s.t, addr, "/readyz") == http.StatusOK
	})
}

// ready says whether the daemon's /readyz answers 200.
func (s *scenario) ready(d *harness.Daemon) bool {
	s.t.Helper()
	addr, err := d.MetricsAddress(30 * time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	return httpStatus(s.t, addr, "/readyz") == http.StatusOK
}

// waitLog waits until a running daemon's output contains want.
func (s *scenario) waitLog(d *harness.Daemon, want string) {
	s.t.Helper()
	err := harness.Eventually(90*time.Second, func() (bool, error) {
		return strings.Contains(d.Logs(), want), s.daemonsAlive()
	})
	if err != nil {
		s.t.Fatalf("the daemon never logged %q: %v\n%s", want, err, d.Logs())
	}
}

// recordsPerKey counts a topic's records by customer key.
func (s *scenario) recordsPerKey(records []harness.Record) map[string]int {
	s.t.Helper()
	return recordsPerKey(s.t, s.customer, records)
}

// recordsPerKey counts a topic's records by key.
func recordsPerKey(t *testing.T, codec *harness.Codec, records []harness.Record) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, r := range records {
		key, err := codec.Key(r.Key)
		if err != nil {
			t.Fatal(err)
		}
		counts[key]++
	}
	return counts
}

// admin returns an admin client of the scenario's broker, closed with the test.
func (s *scenario) admin() *kadm.Client {
	s.t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(s.brokers...))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(client.Close)
	return kadm.NewClient(client)
}

// recordCount is the number of records a topic has received (its end offsets).
func (s *scenario) recordCount(topic string) int64 {
	s.t.Helper()
	ends, err := s.admin().ListEndOffsets(s.ctx, topic)
	if err != nil {
		s.t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// topicExists reports whether the broker has the topic.
func (s *scenario) topicExists(topic string) bool {
	s.t.Helper()
	topics, err := s.admin().ListTopics(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return topics.Has(topic)
}

func (s *scenario) conn() *pgx.Conn {
	s.t.Helper()
	conn, err := pgx.Connect(s.ctx, s.dsn)
	if err != nil {
		s.t.Fatal(err)
	}
	return conn
}
