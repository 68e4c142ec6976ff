package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
)

// With kafka.exactly_once, records and the checkpoint are committed in one
// transaction: after kill -9 at three moments of a stream of small
// transactions, a read_committed consumer sees every change exactly once, in
// commit order (each key's balance strictly rises), and the topic equals the
// table.
func TestExactlyOnceSurvivesKillNineWithoutDuplicates(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.editConfig("exactly_once: false", "exactly_once: true")
		s.start()
		s.waitCustomersMatch()
		records := s.crashWhileWriting()
		checkValuesRise(t, s.customer, records, "balance", repeatsRefused)
		if twice := sentTwice(records); twice > 0 {
			t.Fatalf("%d records with a ce_id seen before", twice)
		}
	})
}

// sentTwice counts the records whose CloudEvents id an earlier record has: a
// change sent again carries the same id.
func sentTwice(records []harness.Record) int {
	seen := map[string]bool{}
	twice := 0
	for _, r := range records {
		id := r.Headers["ce_id"]
		if seen[id] {
			twice++
		}
		seen[id] = true
	}
	return twice
}

// A second process with the connector's name takes its transactional id over
// and fences the first, which stops with a message that says why; the second
// goes on (on PostgreSQL once the slot is released) with nothing lost or
// doubled.
func TestExactlyOnceSecondInstanceFencesTheFirst(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.editConfig("exactly_once: false", "exactly_once: true")
		first := s.start()
		s.waitCustomersMatch()
		second := s.start()
		s.exec(`UPDATE customer SET email = 'after-the-takeover@example.com' WHERE customer_id = 1`)
		if err := first.Wait(90 * time.Second); err == nil || !first.Exited() {
			t.Fatalf("the first process did not stop with an error: %v\n%s", err, first.Logs())
		}
		// On MariaDB the server may end the first one's binlog stream for the
		// second's, which uses the same server id, before its producer learns
		// it was fenced: either says what to do.
		fenced := "another cdc process with the same connector name started and took over its transactional id cdc-" + s.name
		sameID := "another replica uses this connector's server id"
		if logs := first.Logs(); !strings.Contains(logs, fenced) && (!s.mysql || !strings.Contains(logs, sameID)) {
			t.Errorf("the first process's output does not say it was fenced:\n%s", logs)
		}
		s.exec(`UPDATE customer SET email = 'second-only@example.com' WHERE customer_id = 2`)
		records := s.waitCustomersMatch()
		if second.Exited() {
			t.Fatalf("the second process exited:\n%s", second.Logs())
		}
		if twice := sentTwice(records); twice > 0 {
			t.Fatalf("%d records with a ce_id seen before", twice)
		}
	})
}
