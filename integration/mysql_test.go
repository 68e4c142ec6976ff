package integration

import (
	"testing"
	"time"
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
