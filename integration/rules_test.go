package integration

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/cdc-dev/cdc/integration/harness"
)

// The member table of a club: two entities read it. "member" is the public view
// (store 1 only, soft-deleted rows gone, the name computed, the status an enum,
// the address nested, the email hashed, the phone redacted); "member_restricted"
// is an internal view of every row with the raw email.
const (
	memberTablePostgres = `CREATE TABLE public.member (
		member_id bigint PRIMARY KEY, first_name text NOT NULL, last_name text, email text NOT NULL, phone text,
		store_id integer NOT NULL, status_code smallint NOT NULL, street text, city text, deleted_at timestamptz);
		ALTER TABLE public.member REPLICA IDENTITY FULL`
	memberTableMySQL = `CREATE TABLE member (
		member_id BIGINT PRIMARY KEY, first_name VARCHAR(50) NOT NULL, last_name VARCHAR(50), email VARCHAR(100) NOT NULL,
		phone VARCHAR(30), store_id INT NOT NULL, status_code SMALLINT NOT NULL, street VARCHAR(100), city VARCHAR(50),
		deleted_at DATETIME(6)) ENGINE=InnoDB`
	memberRows = `INSERT INTO member (member_id, first_name, last_name, email, phone, store_id, status_code, street, city, deleted_at) VALUES
		(1, 'Ada', 'Lovelace', 'ada@example.com', '+44 1', 1, 1, '12 Analytical St', 'London', NULL),
		(2, 'Alan', NULL, 'alan@example.com', NULL, 2, 1, NULL, 'Manchester', NULL),
		(3, 'Grace', 'Hopper', 'grace@example.com', '+1 2', 1, 2, NULL, NULL, NULL),
		(4, 'Edsger', 'Dijkstra', 'edsger@example.com', NULL, 1, 1, NULL, NULL, '2024-01-01 00:00:00')`

	memberSchema = `{"type": "record", "name": "Member", "namespace": "club.v1", "fields": [
		{"name": "id", "type": "long"},
		{"name": "name", "type": "string"},
		{"name": "status", "type": {"type": "enum", "name": "MemberStatus", "symbols": ["ACTIVE", "PAUSED"]}},
		{"name": "address", "type": {"type": "record", "name": "Address", "fields": [
			{"name": "street", "type": ["null", "string"], "default": null},
			{"name": "city", "type": ["null", "string"], "default": null}]}},
		{"name": "email_hash", "type": "string"},
		{"name": "phone", "type": ["null", "string"], "default": null}]}`
	restrictedSchema = `{"type": "record", "name": "MemberRestricted", "namespace": "club.v1", "fields": [
		{"name": "id", "type": "long"},
		{"name": "email", "type": "string"},
		{"name": "phone", "type": ["null", "string"], "default": null},
		{"name": "store_id", "type": "int"},
		{"name": "deleted", "type": "boolean"}]}`
	memberEntities = `
  - name: member
    table: %[1]s
    topic: club.member.v1
    schema: %[2]s/member.avsc
    key: [id]
    where: "store_id == 1"
    tombstone_when: "deleted_at != null"
    fields:
      id: member_id
      name: {expr: "last_name == null ? first_name : first_name + ' ' + last_name"}
      status: {column: status_code, enum: {1: ACTIVE, 2: PAUSED}}
      address:
        record:
          street: street
          city: city
      email_hash: {column: email, mask: hash}
      phone: {column: phone, mask: redact}
  - name: member_restricted
    table: %[1]s
    topic: club.member_restricted.v1
    schema: %[2]s/restricted.avsc
    key: [id]
    fields:
      id: member_id
      email: email
      phone: phone
      store_id: store_id
      deleted: {expr: "deleted_at != null"}
masking:
  salt: %[3]s
`
	memberSalt = "a-test-salt-of-some-length"
)

// setEntities replaces the entities of the scenario's configuration.
func (s *scenario) setEntities(entities string) {
	s.t.Helper()
	data, err := os.ReadFile(s.config)
	if err != nil {
		s.t.Fatal(err)
	}
	head, _, ok := strings.Cut(string(data), "\nentities:\n")
	if !ok {
		s.t.Fatal("no entities in the configuration")
	}
	if err := os.WriteFile(s.config, []byte(head+"\nentities:\n"+entities), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func writeSchemas(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// memberRowsNow reads the member table as text, in either dialect.
func (s *scenario) memberRowsNow() map[string]map[string]string {
	if s.mysql {
		return s.project("SELECT CONCAT('{\"id\":', member_id, '}') AS `key`, CAST(member_id AS CHAR) AS id, first_name," +
			" COALESCE(last_name, 'null') AS last_name, email, COALESCE(phone, 'null') AS phone, CAST(store_id AS CHAR) AS store_id," +
			" CAST(status_code AS CHAR) AS status_code, COALESCE(street, 'null') AS street, COALESCE(city, 'null') AS city," +
			" IF(deleted_at IS NULL, 'false', 'true') AS deleted FROM member")
	}
	return s.project(`SELECT format('{"id":%s}', member_id) AS key, member_id::text AS id, first_name,
		coalesce(last_name, 'null') AS last_name, email, coalesce(phone, 'null') AS phone, store_id::text AS store_id,
		status_code::text AS status_code, coalesce(street, 'null') AS street, coalesce(city, 'null') AS city,
		(deleted_at IS NOT NULL)::text AS deleted FROM member`)
}

// memberProjections applies the two entities' rules to the rows, independently
// of cdc's mapping: the expected state of each topic.
func memberProjections(rows map[string]map[string]string) (public, restricted map[string]map[string]string) {
	public, restricted = map[string]map[string]string{}, map[string]map[string]string{}
	mac := func(text string) string {
		h := hmac.New(sha256.New, []byte(memberSalt))
		h.Write([]byte(text))
		return hex.EncodeToString(h.Sum(nil))
	}
	for key, r := range rows {
		restricted[key] = map[string]string{"id": r["id"], "email": r["email"], "phone": r["phone"], "store_id": r["store_id"], "deleted": r["deleted"]}
		if r["store_id"] != "1" || r["deleted"] == "true" {
			continue
		}
		name := r["first_name"]
		if r["last_name"] != "null" {
			name += " " + r["last_name"]
		}
		status := map[string]string{"1": "ACTIVE", "2": "PAUSED"}[r["status_code"]]
		public[key] = map[string]string{"id": r["id"], "name": name, "status": status, "address": r["street"] + "|" + r["city"],
			"email_hash": mac(r["email"]), "phone": "null"}
	}
	return public, restricted
}

// flatState materializes a topic, rendering a nested address as "street|city".
func (s *scenario) flatState(topic string, codec *harness.Codec) (map[string]map[string]string, []harness.Record) {
	s.t.Helper()
	records := s.readTopic(topic)
	state, err := codec.Materialize(records)
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for key, value := range state {
		fields := map[string]string{}
		for name, v := range value {
			if address, ok := v.(map[string]any); ok && name == "address" {
				fields[name] = normalize(address["street"]) + "|" + normalize(address["city"])
				continue
			}
			fields[name] = normalize(v)
		}
		out[key] = fields
	}
	return out, records
}

// waitMembersMatch waits until both topics equal their projections of the table.
func (s *scenario) waitMembersMatch(public, restricted *harness.Codec) (publicRecords []harness.Record) {
	s.t.Helper()
	var last string
	err := harness.Eventually(90*time.Second, func() (bool, error) {
		if err := s.daemonsAlive(); err != nil {
			return false, err
		}
		wantPublic, wantRestricted := memberProjections(s.memberRowsNow())
		gotPublic, records := s.flatState("club.member.v1", public)
		gotRestricted, _ := s.flatState("club.member_restricted.v1", restricted)
		publicRecords = records
		last = diff(gotPublic, wantPublic) + diff(gotRestricted, wantRestricted)
		return last == "", nil
	})
	if err != nil {
		s.t.Fatalf("the member topics never matched the table: %v\n%s", err, last)
	}
	return publicRecords
}

// Filters, soft deletes, computed fields, enums, nested records and masks on a
// real database and broker, with two entities from one table.
func TestMappingRulesOnRealRows(t *testing.T) {
	for _, mysql := range []bool{false, true} {
		name := map[bool]string{false: "postgres", true: "mysql"}[mysql]
		t.Run(name, func(t *testing.T) {
			s := startScenario(t, mysql)
			table, ddl := "public.member", memberTablePostgres
			if mysql {
				table, ddl = s.name+".member", memberTableMySQL
			}
			s.exec(ddl, memberRows)
			dir := writeSchemas(t, map[string]string{"member.avsc": memberSchema, "restricted.avsc": restrictedSchema})
			s.setEntities(fmt.Sprintf(memberEntities, table, dir, memberSalt))
			key := `{"type":"record","name":"%sKey","namespace":"club.v1","fields":[{"name":"id","type":"long"}]}`
			public, err := harness.NewCodec(filepath.Join(dir, "member.avsc"), fmt.Sprintf(key, "Member"))
			if err != nil {
				t.Fatal(err)
			}
			restricted, err := harness.NewCodec(filepath.Join(dir, "restricted.avsc"), fmt.Sprintf(key, "MemberRestricted"))
			if err != nil {
				t.Fatal(err)
			}
			s.start()
			snapshot := s.waitMembersMatch(public, restricted)
			if n := len(snapshot); n != 2 {
				t.Errorf("the snapshot gave %d member records, want 2 (members 2 and 4 are outside the entity)", n)
			}

			s.exec(`INSERT INTO member (member_id, first_name, email, store_id, status_code) VALUES (5, 'Barbara', 'barbara@example.com', 2, 1)`, // outside
				`INSERT INTO member (member_id, first_name, email, store_id, status_code, city) VALUES (6, 'Donald', 'don@example.com', 1, 2, 'Stanford')`, // inside
				`UPDATE member SET store_id = 2 WHERE member_id = 1`,                       // leaves: tombstone
				`UPDATE member SET store_id = 1 WHERE member_id = 2`,                       // enters: upsert
				`UPDATE member SET first_name = 'Babs' WHERE member_id = 5`,                // outside: nothing
				`UPDATE member SET deleted_at = '2024-06-01 00:00:00' WHERE member_id = 3`, // soft delete: tombstone
				`UPDATE member SET deleted_at = NULL WHERE member_id = 4`,                  // undelete: upsert
				`UPDATE member SET phone = '+1 999' WHERE member_id = 6`,                   // redacted column only: nothing public
				`UPDATE member SET street = 'Main St' WHERE member_id = 2`)                 // a visible change after it, as a fence
			records := s.waitMembersMatch(public, restricted)

			perKey := map[string][]harness.Record{}
			ids := map[string]bool{}
			for _, r := range records {
				k, err := public.Key(r.Key)
				if err != nil {
					t.Fatal(err)
				}
				perKey[k] = append(perKey[k], r)
				if ids[r.Headers["ce_id"]] {
					t.Errorf("ce_id %s appears twice", r.Headers["ce_id"])
				}
				ids[r.Headers["ce_id"]] = true
				if r.Headers["ce_type"] != "member" || r.Headers["ce_specversion"] != "1.0" || r.Headers["ce_source"] != "/cdc/"+s.name || len(r.Headers["ce_id"]) != 32 {
					t.Errorf("CloudEvents headers %v", r.Headers)
				}
				if op := r.Headers["cdc_op"]; op != "r" && (r.Headers["cdc_position"] == "" || r.Headers["ce_time"] == "") {
					t.Errorf("a streamed record lacks its position or commit time: %v", r.Headers)
				}
			}
			if n := len(perKey[`{"id":5}`]); n != 0 {
				t.Errorf("member 5, always outside the entity, has %d records", n)
			}
			for _, k := range []string{`{"id":1}`, `{"id":3}`} {
				last := perKey[k][len(perKey[k])-1]
				if last.Value != nil || last.Headers["cdc_op"] != "d" {
					t.Errorf("%s left the entity: want a tombstone with cdc_op d, got %v", k, last.Headers)
				}
			}
			if n := len(perKey[`{"id":6}`]); n != 1 {
				t.Errorf("member 6 has %d records: its phone is redacted, so changing it must emit nothing", n)
			}
		})
	}
}

// An internal code without a symbol stops the daemon, naming the field and the
// code; with on_error: dead_letter the change goes to the dead-letter topic with
// the reason in its headers, and streaming goes on.
func TestUnmappedEnumCodeStopsOrBecomesADeadLetter(t *testing.T) {
	s := newScenario(t)
	s.start()
	s.waitMatch("shop.customer.v1", s.customer, customerProjection)
	s.exec(`INSERT INTO orders (order_id, customer_id, status_code, total) VALUES ('c2eebc99-9c0b-4ef8-bb6d-6bb9bd380a33', 1, 9, 5.00)`)
	s.mustExit(`entity "order_v2", field "status": public.orders column status_code value 9`, `code "9" has no symbol in the enum map`)

	s.editConfig("on_error: stop", "on_error: dead_letter")
	s.start()
	deadLetters := s.name + ".dead_letter"
	var letters []harness.Record
	err := harness.Eventually(60*time.Second, func() (bool, error) {
		if err := s.daemonsAlive(); err != nil {
			return false, err
		}
		if !s.topicExists(deadLetters) {
			return false, nil
		}
		var err error
		letters, err = harness.ReadTopic(s.ctx, s.brokers, deadLetters)
		return len(letters) > 0, err
	})
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	h := letters[0].Headers
	if h["cdc_entity"] != "order_v2" || !strings.Contains(h["cdc_error"], `code "9" has no symbol`) || h["cdc_op"] != "c" || h["cdc_position"] == "" {
		t.Errorf("dead letter headers %v", h)
	}
	var row map[string]any
	if err := json.Unmarshal(letters[0].Value, &row); err != nil || row["status_code"] != "9" {
		t.Errorf("dead letter value %s: %v", letters[0].Value, err)
	}
	configs, err := s.admin().DescribeTopicConfigs(s.ctx, deadLetters)
	if err != nil {
		t.Fatal(err)
	}
	if policy, _ := configs.On(deadLetters, nil); policy.Err != nil || !hasConfig(policy.Configs, "cleanup.policy", "delete") {
		t.Errorf("dead-letter topic configs %+v: want cleanup.policy=delete", policy)
	}

	// The entity's other changes go on: order v1 has the order, v2 does not,
	// and a later valid order reaches v2.
	s.exec(`INSERT INTO orders (order_id, customer_id, status_code, total) VALUES ('d3eebc99-9c0b-4ef8-bb6d-6bb9bd380a44', 1, 2, 6.00)`)
	s.waitMatch("shop.order.v1", s.order, orderProjection)
	v2, err := harness.NewCodec("../schemas/order.v2.avsc", strings.Replace(orderKeySchema, "shop.v1", "shop.v2", 1))
	if err != nil {
		t.Fatal(err)
	}
	err = harness.Eventually(30*time.Second, func() (bool, error) {
		records, err := harness.ReadTopic(s.ctx, s.brokers, "shop.order.v2")
		if err != nil {
			return false, err
		}
		state, err := v2.Materialize(records)
		_, valid := state[`{"id":"d3eebc99-9c0b-4ef8-bb6d-6bb9bd380a44"}`]
		_, unmapped := state[`{"id":"c2eebc99-9c0b-4ef8-bb6d-6bb9bd380a33"}`]
		if unmapped {
			t.Fatal("the order with an unmapped code reached shop.order.v2")
		}
		return valid, err
	})
	if err != nil {
		t.Fatalf("the later order never reached shop.order.v2: %v", err)
	}
}

func hasConfig(configs []kadm.Config, name, value string) bool {
	for _, c := range configs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

// cdc validate on a configuration with a dozen different mistakes, across the
// file, the schemas, the mappings, the database, the tables' codes, the topics
// and the registry, lists every one of them and exits 1.
func TestValidateListsEveryMistakeAtOnce(t *testing.T) {
	s := newScenario(t)
	registry := harness.NewRegistry()
	defer registry.Close()
	current := readFile(t, "../schemas/order.v1.avsc")
	if _, _, err := registry.RegisterSchema("shop.order.v1-value", sr.Schema{Schema: strings.Replace(current,
		`{"name": "customer_id", "type": "long"},`, `{"name": "customer_id", "type": "long"}, {"name": "channel", "type": "string"},`, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := registry.SetCompat("shop.order.v1-value", sr.CompatForward); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin().CreateTopic(s.ctx, 1, 1, map[string]*string{"cleanup.policy": ptr("delete")}, "shop.customer.v1"); err != nil {
		t.Fatal(err)
	}
	s.exec(`ALTER TABLE orders REPLICA IDENTITY NOTHING`,
		`INSERT INTO orders (order_id, customer_id, status_code, total) VALUES ('c2eebc99-9c0b-4ef8-bb6d-6bb9bd380a33', 1, 7, 5.00)`)
	s.editConfig(
		"kafka:\n", "kafka:\n  linger_ms: 5\n",
		"  mode: initial", "  mode: sometimes",
		"# masking:\n#   salt: ${CDC_MASK_SALT}", "masking:\n  salt: short",
		"# schema_registry: http://127.0.0.1:8081", "schema_registry: "+registry.URL(),
		"      last_name: last_name\n", "      last_name: surname\n",
		"      birth_date: birth_date\n", "",
		`has_note: {expr: "note != null && note != ''"}`, `has_note: {expr: "note + 1"}`,
		`where: "etl_batch == null"`, `where: "etl_batch"`,
		"4: CANCELLED}", "4: CANCELED}",
	)
	cmd := exec.Command(cdcBin, "validate", "--config", s.config)
	cmd.Env = append(cmd.Environ(), "SHOP_DSN="+s.dsn, "KAFKA_BROKERS="+strings.Join(s.brokers, ","))
	output, err := cmd.CombinedOutput()
	out := string(output)
	wants := []string{
		`unknown key "linger_ms" in kafka`,
		`snapshot.mode: "sometimes": want initial, never, only or when_needed`,
		`masking.salt: too short`,
		`field "last_name": column "surname" not in public.customer`,
		`field "birth_date": schema field of shop.v1.Customer`,
		"field \"has_note\": expression `note + 1`: at column 6: found no matching overload",
		"where: expression `etl_batch` has type nullable int, not bool",
		`field "status": symbols CANCELED are not in enum shop.v2.OrderStatus`,
		`status_code holds codes the enum map lacks: 7`,
		`table public.orders has REPLICA IDENTITY NOTHING`,
		`topic shop.customer.v1 exists with cleanup.policy=delete`,
		`consumers still using version 1 cannot read records written with the new schema: field "channel"`,
	}
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s", out)
	}
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1", err)
	}
}

func ptr(s string) *string { return &s }
