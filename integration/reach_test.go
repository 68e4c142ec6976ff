package integration

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
)

// silentServer accepts connections and never answers: a hung broker, or a
// network path that drops packets after the handshake.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// A broker that accepts connections and never answers: the daemon says it is
// waiting, and a SIGTERM stops it within seconds.
func TestSilentBrokerAtStartIsLoggedAndSIGTERMHonoured(t *testing.T) {
	s := newScenario(t)
	s.brokers = []string{silentServer(t)}
	d := s.start()
	s.waitLog(d, "still waiting to reach the Kafka brokers: the server accepts connections but does not answer")
	stopped := time.Now()
	if err := d.Stop(5 * time.Second); err != nil {
		t.Fatalf("SIGTERM while waiting for the brokers: %v\n%s", err, d.Logs())
	}
	t.Logf("stopped %s after SIGTERM", time.Since(stopped).Round(time.Millisecond))
}

// A schema registry that cannot be reached at the first start stops the
// daemon, as an unreachable database or broker does, instead of restarting
// it forever.
func TestUnreachableRegistryAtStartStops(t *testing.T) {
	s := newScenario(t)
	s.editConfig("# schema_registry: http://127.0.0.1:8081", fmt.Sprintf("schema_registry: http://127.0.0.1:%d", unusedPort(t)))
	s.start()
	logs := s.mustExit("connection refused")
	if strings.Contains(logs, "transient failure: restarting") {
		t.Errorf("the daemon restarted instead of stopping:\n%s", logs)
	}
}

// A broker outage while streaming is logged once when it begins and once
// when it ends, and nothing is lost.
func TestBrokerOutageWhileStreamingIsLoggedAtItsStartAndEnd(t *testing.T) {
	s := newScenario(t)
	dataDir := filepath.Join(t.TempDir(), "kafka")
	s.kafka.Close()
	port := unusedPort(t)
	broker, err := harness.StartKafka(port, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	s.kafka, s.brokers = broker, broker.ListenAddrs()
	t.Cleanup(func() { s.kafka.Close() })
	d := s.start()
	s.waitCustomersMatch()
	s.kafka.Close()
	s.exec(`UPDATE customer SET email = 'during-the-outage@example.com' WHERE customer_id = 1`)
	s.waitLog(d, "Kafka broker does not answer: records wait in the producer and are retried")
	if s.kafka, err = harness.StartKafka(port, dataDir); err != nil {
		t.Fatal(err)
	}
	s.waitLog(d, "Kafka broker answers again")
	s.waitCustomersMatch()
	for _, line := range []string{"Kafka broker does not answer", "Kafka broker answers again"} {
		if n := strings.Count(d.Logs(), line); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", line, n, d.Logs())
		}
	}
}
