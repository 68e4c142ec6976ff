package integration

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdc-dev/cdc/integration/harness"
)

// scenario is one connector's world: its own database, broker and config.
type scenario struct {
	t        *testing.T
	ctx      context.Context
	name     string
	dsn      string
	kafka    *kfake.Cluster
	brokers  []string
	config   string
	daemons  []*harness.Daemon
	customer *harness.Codec
	order    *harness.Codec
}

// Keys as the README documents them: a record named <Value>Key with the key fields.
const (
	customerKeySchema = `{"type":"record","name":"CustomerKey","namespace":"shop.v1","fields":[{"name":"id","type":"long"}]}`
	orderKeySchema    = `{"type":"record","name":"OrderKey","namespace":"shop.v1","fields":[{"name":"id","type":{"type":"string","logicalType":"uuid"}}]}`
)

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

func newScenario(t *testing.T) *scenario {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	name := strings.Trim(nonWord.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	s := &scenario{t: t, ctx: ctx, name: name}
	var err error
	if s.dsn, err = pg.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := harness.Exec(ctx, s.dsn, harness.ShopSQL); err != nil {
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
	example, err := os.ReadFile(filepath.Join(root, "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	config := strings.NewReplacer("name: shop", "name: "+name, "cdc_shop", "cdc_"+name,
		"schemas/", filepath.Join(root, "schemas")+"/").Replace(string(example))
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
	})
	return s
}

// start runs `cdc run` on the scenario's config.
func (s *scenario) start() *harness.Daemon {
	s.t.Helper()
	d, err := harness.StartDaemon(cdcBin, []string{"SHOP_DSN=" + s.dsn, "KAFKA_BROKERS=" + strings.Join(s.brokers, ",")},
		"run", "--config", s.config)
	if err != nil {
		s.t.Fatal(err)
	}
	s.daemons = append(s.daemons, d)
	return d
}

// daemonsAlive fails the wait at once when the last daemon started has exited.
func (s *scenario) daemonsAlive() error {
	if n := len(s.daemons); n > 0 && s.daemons[n-1].Exited() {
		s.t.Fatalf("the daemon exited: %v\n%s", s.daemons[n-1].Wait(0), s.daemons[n-1].Logs())
	}
	return nil
}

func (s *scenario) exec(sql ...string) {
	s.t.Helper()
	if err := harness.Exec(s.ctx, s.dsn, sql...); err != nil {
		s.t.Fatal(err)
	}
}

// customerProjection is the customer entity computed by PostgreSQL from the
// table: the expected content of the topic, in the text forms that normalize()
// gives decoded records.
func (s *scenario) customerProjection() map[string]map[string]string {
	s.t.Helper()
	conn, err := pgx.Connect(s.ctx, s.dsn)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(s.ctx)
	rows, err := conn.Query(s.ctx, `SELECT customer_id, email, first_name, last_name, balance::text,
		coalesce(to_char(birth_date, 'YYYY-MM-DD'), 'null'),
		(extract(epoch FROM created_at) * 1000000)::bigint::text FROM public.customer`)
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for rows.Next() {
		var id int64
		var email, first, last, balance, birth, created string
		if err := rows.Scan(&id, &email, &first, &last, &balance, &birth, &created); err != nil {
			s.t.Fatal(err)
		}
		out[fmt.Sprintf(`{"id":%d}`, id)] = map[string]string{"id": fmt.Sprint(id), "email": email, "first_name": first,
			"last_name": last, "balance": balance, "birth_date": birth, "created_at": created}
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
		if v.Hour() == 0 && v.Minute() == 0 && v.Second() == 0 && v.Nanosecond() == 0 && v.Location() == time.UTC {
			return v.Format("2006-01-02")
		}
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
	out := map[string]map[string]string{}
	for k, v := range state {
		fields := map[string]string{}
		for name, value := range v {
			fields[name] = normalize(value)
		}
		out[k] = fields
	}
	return out, records, nil
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

// waitCustomersMatch waits until the customer topic equals the table's projection.
func (s *scenario) waitCustomersMatch() []harness.Record {
	s.t.Helper()
	var records []harness.Record
	var last string
	err := harness.Eventually(60*time.Second, func() (bool, error) {
		if err := s.daemonsAlive(); err != nil {
			return false, err
		}
		state, recs, err := s.topicState("shop.customer.v1", s.customer)
		if err != nil {
			return false, err
		}
		records = recs
		last = diff(state, s.customerProjection())
		return last == "", nil
	})
	if err != nil {
		s.t.Fatalf("customer topic never matched the table: %v\n%s", err, last)
	}
	return records
}
