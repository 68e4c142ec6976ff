package integration

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
// What was sent twice (at-least-once) is counted by CloudEvents id.
func TestChaosLosesNothing(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		ctx, cancel := context.WithTimeout(context.Background(), chaosDuration(t)+5*time.Minute)
		t.Cleanup(cancel)
		s.ctx = ctx
		dataDir := filepath.Join(t.TempDir(), "kafka")
		s.kafka.Close()
		var err error
		if s.kafka, err = harness.StartKafka(0, dataDir); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.kafka.Close() })
		s.brokers = s.kafka.ListenAddrs()
		var port int
		fmt.Sscanf(s.brokers[0][strings.LastIndexByte(s.brokers[0], ':')+1:], "%d", &port)

		s.exec(s.bulk(2000))
		s.start()
		s.waitCustomersMatch()
		w := s.startWorkload(2000)

		seed := time.Now().UnixNano()
		rng := rand.New(rand.NewSource(seed))
		var kills, brokerRestarts, databaseRestarts, stalls int
		stallUntil := &atomic.Int64{}
		s.installBrokerStall(stallUntil)
		// Every kind of fault once, then at random.
		faults := []int{0, 1, 2, 3}
		deadline := time.Now().Add(chaosDuration(t))
		for i := 0; time.Now().Before(deadline) || i < len(faults); i++ {
			time.Sleep(time.Duration(300+rng.Intn(1500)) * time.Millisecond)
			fault := rng.Intn(10)
			switch {
			case i < len(faults):
				fault = faults[i] * 3
			case fault < 6:
				fault = 0
			}
			switch fault {
			case 0, 1, 2: // kill -9 at a random moment, and start again
				s.daemons[len(s.daemons)-1].Kill()
				kills++
				time.Sleep(time.Duration(rng.Intn(500)) * time.Millisecond)
				s.start()
			case 3, 4, 5: // the broker restarts, keeping its data
				s.kafka.Close()
				time.Sleep(time.Duration(rng.Intn(1000)) * time.Millisecond)
				if s.kafka, err = harness.StartKafka(port, dataDir); err != nil {
					t.Fatalf("restart the broker: %v", err)
				}
				s.installBrokerStall(stallUntil)
				brokerRestarts++
			case 6, 7: // the database restarts under the connector
				if s.mysql {
					err = maria.Restart()
				} else {
					err = pg.Restart()
				}
				if err != nil {
					t.Fatalf("restart the database: %v", err)
				}
				databaseRestarts++
			default: // the broker answers nothing for a few seconds
				stallUntil.Store(time.Now().Add(time.Duration(2000+rng.Intn(4000)) * time.Millisecond).UnixNano())
				stalls++
			}
			if err := s.daemonsAlive(); err != nil {
				t.Fatal(err)
			}
		}
		committed, failed := w.finish(t)

		verified := s.waitVerified(3 * time.Minute)
		records := s.waitCustomersMatch()
		seen := map[string]bool{}
		duplicates := 0
		for _, r := range records {
			id := r.Headers["ce_id"]
			if seen[id] {
				duplicates++
			}
			seen[id] = true
		}
		t.Logf("chaos (seed %d): %d kills, %d broker restarts, %d database restarts, %d broker stalls; %d transactions committed (%d failed with the database); %d records, %d sent twice; lost: 0 (%s)",
			seed, kills, brokerRestarts, databaseRestarts, stalls, committed, failed, len(records), duplicates, verified)
	})
}

// installBrokerStall makes the broker hold every produce request while
// stallUntil (unix nanoseconds) is in the future: the brokers are slow, not gone.
func (s *scenario) installBrokerStall(stallUntil *atomic.Int64) {
	cluster := s.kafka
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if wait := time.Until(time.Unix(0, stallUntil.Load())); wait > 0 {
			cluster.SleepControl(func() { time.Sleep(wait) })
		}
		return nil, nil, false // then handled as usual
	})
}

// waitVerified runs cdc verify until it finds no difference (the daemon may
// still be catching up) and returns its summary of the customers.
func (s *scenario) waitVerified(timeout time.Duration) string {
	s.t.Helper()
	var out string
	err := harness.Eventually(timeout, func() (bool, error) {
		var err error
		out, err = s.runToEnd(2*time.Minute, "verify", "--config", s.config)
		return err == nil, s.daemonsAlive()
	})
	if err != nil {
		s.t.Fatalf("cdc verify kept finding differences: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "entity customer:") {
			return line
		}
	}
	return out
}

// workload runs small transactions against the customer table until stopped,
// riding out database restarts: a statement that fails is abandoned (it may
// or may not have committed; the comparison is with the table as it ends).
type workload struct {
	committed, failed atomic.Int64
	stop              chan struct{}
	done              chan struct{}
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
			case r < 70:
				stmt = fmt.Sprintf(`UPDATE customer SET balance = balance + 1 WHERE customer_id = %d`, 1+rng.Intn(maxID))
			case r < 85:
				stmt = fmt.Sprintf(`INSERT INTO customer (email, first_name, last_name) VALUES ('chaos%d@example.com', 'Chaos', 'Monkey')`, i)
			case r < 95:
				stmt = fmt.Sprintf(`DELETE FROM customer WHERE customer_id = %d`, 1+rng.Intn(maxID))
			default:
				stmt = fmt.Sprintf(`UPDATE customer SET email = 'changed%d@example.com' WHERE customer_id = %d`, i, 1+rng.Intn(maxID))
			}
			if err := exec(stmt); err != nil {
				w.failed.Add(1)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			w.committed.Add(1)
		}
	}()
	return w
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
		return func(stmt string) error { return maria.Exec(s.name, stmt) }
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
