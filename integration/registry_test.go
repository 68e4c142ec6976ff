package integration

import (
	"encoding/binary"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/cdc-dev/cdc/integration/harness"
)

// With a schema registry, keys and values are registered under <topic>-key and
// <topic>-value and every record carries Confluent's header (0, schema id).
func TestSchemaRegistryFramesRecordsInConfluentWireFormat(t *testing.T) {
	registry := srfake.New()
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
	registry := srfake.New()
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
