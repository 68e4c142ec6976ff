package integration

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/cdc-dev/cdc/integration/harness"
)

// With a schema registry, keys and values are registered under <topic>-key and
// <topic>-value and every record carries Confluent's header (0, schema id).
func TestSchemaRegistryFramesRecordsInConfluentWireFormat(t *testing.T) {
	registry := harness.NewRegistry()
	defer registry.Close()
	s := newScenario(t)
	s.editConfig("# schema_registry: http://127.0.0.1:8081", "schema_registry: "+registry.URL())
	s.customer = harness.NewRegistryCodec(registry.URL())
	s.start()
	records := s.waitCustomersMatch()

	value, ok := registry.GetSchema("shop.customer.v1-value", 1)
	if !ok || !strings.Contains(value.Schema.Schema, `"shop.v1.Customer"`) {
		t.Fatalf("subject shop.customer.v1-value: %+v", value)
	}
	key, ok := registry.GetSchema("shop.customer.v1-key", 1)
	if !ok || !strings.Contains(key.Schema.Schema, `"shop.v1.CustomerKey"`) {
		t.Fatalf("subject shop.customer.v1-key: %+v", key)
	}
	for _, r := range records {
		if id := binary.BigEndian.Uint32(r.Key[1:5]); r.Key[0] != 0 || int(id) != key.ID {
			t.Fatalf("key %x does not start with 00 and the key schema's id %d", r.Key[:5], key.ID)
		}
		if id := binary.BigEndian.Uint32(r.Value[1:5]); r.Value[0] != 0 || int(id) != value.ID {
			t.Fatalf("value %x does not start with 00 and the value schema's id %d", r.Value[:5], value.ID)
		}
	}

	tail := exec.Command(cdcBin, "tail", "--config", s.config, "--entity", "customer")
	tail.Env = append(tail.Environ(), "SHOP_DSN="+s.dsn, "KAFKA_BROKERS="+strings.Join(s.brokers, ","))
	out, err := tail.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"email":"ada@example.com","first_name":"Ada"`) || !strings.Contains(string(out), `"balance":"120.50"`) {
		t.Fatalf("cdc tail: %v\n%s", err, out)
	}
}

// A registry that refuses the schema (incompatible with the subject's history)
// stops the daemon before anything is produced.
func TestRegistryRefusalStopsBeforeProducing(t *testing.T) {
	registry := harness.NewRegistry()
	defer registry.Close()
	registry.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/subjects/shop.order.v1-value/versions") {
			return false
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema for subject \"shop.order.v1-value\""}`))
		return true
	})
	s := newScenario(t)
	s.editConfig("# schema_registry: http://127.0.0.1:8081", "schema_registry: "+registry.URL())
	s.start()
	s.mustExit(`entity "order": register schema shop.v1.Order under subject shop.order.v1-value`, "incompatible")
	if n := s.recordCount("shop.customer.v1"); n != 0 {
		t.Fatalf("%d records produced although the daemon could not start", n)
	}
}

// On start, each schema is checked against its subject's history under the
// subject's compatibility level; an incompatible one stops the daemon before
// anything is produced, naming the field and the consumers it would break.
func TestIncompatibleSchemaIsRefusedWithTheField(t *testing.T) {
	current := readFile(t, "../schemas/customer.v1.avsc")
	cases := []struct {
		name  string
		level sr.CompatibilityLevel
		older []string // earlier versions of shop.customer.v1-value, oldest first
		want  []string // empty: accepted
	}{
		{"backward: a field added without a default", sr.CompatBackward,
			[]string{withoutField(t, current, "email")},
			[]string{"is not BACKWARD compatible with subject shop.customer.v1-value",
				`consumers using the new schema cannot read records written with version 1: field "email" is not in the writer's schema and has no default in the reader's`}},
		{"forward: a field removed that old consumers need", sr.CompatForward,
			[]string{strings.Replace(current, `{"name": "id", "type": "long"},`, `{"name": "id", "type": "long"}, {"name": "tier", "type": "string"},`, 1)},
			[]string{`consumers still using version 1 cannot read records written with the new schema: field "tier" is not in the writer's schema`}},
		{"full: a retyped field", sr.CompatFull,
			[]string{strings.Replace(current, `{"name": "email", "type": "string"}`, `{"name": "email", "type": "long"}`, 1)},
			[]string{`field "email": the reader's type "string" cannot read the writer's "long"`}},
		{"backward transitive: broken against the first version only", sr.CompatBackwardTransitive,
			[]string{withoutField(t, current, "email"), strings.Replace(current, `{"name": "email", "type": "string"}`, `{"name": "email", "type": "string", "default": ""}`, 1)},
			[]string{`cannot read records written with version 1: field "email"`}},
		{"backward, non-transitive: the same history passes", sr.CompatBackward,
			[]string{withoutField(t, current, "email"), strings.Replace(current, `{"name": "email", "type": "string"}`, `{"name": "email", "type": "string", "default": ""}`, 1)},
			nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			registry := harness.NewRegistry()
			defer registry.Close()
			for _, schema := range c.older {
				if _, _, err := registry.RegisterSchema("shop.customer.v1-value", sr.Schema{Schema: schema}); err != nil {
					t.Fatal(err)
				}
			}
			if err := registry.SetCompat("shop.customer.v1-value", c.level); err != nil {
				t.Fatal(err)
			}
			s := newScenario(t)
			s.editConfig("# schema_registry: http://127.0.0.1:8081", "schema_registry: "+registry.URL())
			s.customer = harness.NewRegistryCodec(registry.URL())
			s.start()
			if len(c.want) == 0 {
				records := s.waitCustomersMatch()
				latest, ok := registry.GetSchema("shop.customer.v1-value", len(c.older)+1)
				if !ok {
					t.Fatal("the new schema was not registered as the next version")
				}
				if id := binary.BigEndian.Uint32(records[0].Value[1:5]); int(id) != latest.ID {
					t.Fatalf("records use schema id %d, want the new version's %d", id, latest.ID)
				}
				return
			}
			s.mustExit(append([]string{`entity "customer": schema shop.v1.Customer:`}, c.want...)...)
			if n := s.recordCount("shop.customer.v1"); n != 0 {
				t.Fatalf("%d records produced although the schema is incompatible", n)
			}
		})
	}
}

// The test double refuses an incompatible schema by itself too, as a real
// registry does, so cdc's own check is not the only guard being tested.
func TestRegistryDoubleRefusesIncompatibleSchemas(t *testing.T) {
	registry := harness.NewRegistry()
	defer registry.Close()
	current := readFile(t, "../schemas/customer.v1.avsc")
	post := func(schema string) int {
		body, _ := json.Marshal(map[string]string{"schema": schema})
		resp, err := http.Post(registry.URL()+"/subjects/s-value/versions", "application/vnd.schemaregistry.v1+json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(withoutField(t, current, "email")); code != http.StatusOK {
		t.Fatalf("first version: %d", code)
	}
	if err := registry.SetCompat("s-value", sr.CompatBackward); err != nil {
		t.Fatal(err)
	}
	if code := post(current); code != http.StatusConflict {
		t.Fatalf("incompatible version: got %d, want 409", code)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withoutField removes one field's line from a schema file's text.
func withoutField(t *testing.T, schema, field string) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(schema, "\n") {
		if !strings.Contains(line, `{"name": "`+field+`"`) {
			out = append(out, line)
		}
	}
	text := strings.Join(out, "\n")
	if text == schema {
		t.Fatalf("no field %s", field)
	}
	return text
}
