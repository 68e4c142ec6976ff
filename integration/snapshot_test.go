package integration

import (
	"strings"
	"testing"
	"time"
)

// cdc snapshot backfills the topics and exits 0; cdc run then streams from
// the snapshot's position: what changed in between arrives, nothing is sent
// twice. A second cdc snapshot, once the connector has streamed, is refused.
func TestSnapshotCommandThenRunHandsOver(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.exec(s.bulk(5000))
		logs, err := s.runToEnd(2*time.Minute, "snapshot", "--config", s.config)
		if err != nil {
			t.Fatalf("cdc snapshot: %v\n%s", err, logs)
		}
		if !strings.Contains(logs, `msg="snapshot done"`) {
			t.Errorf("cdc snapshot did not say it is done:\n%s", logs)
		}
		snapshotted := len(s.waitCustomersMatch()) // exited: the topic is complete already

		s.exec(`UPDATE customer SET email = 'between@example.com' WHERE customer_id = 1`,
			`DELETE FROM customer WHERE customer_id = 3`)
		run := s.start()
		records := s.waitCustomersMatch()
		if got, want := len(records), snapshotted+2; got != want {
			t.Errorf("%d records after cdc run, want %d: the %d of the snapshot and the 2 changes made since, each once", got, want, snapshotted)
		}
		if strings.Contains(run.Logs(), "snapshot started") {
			t.Errorf("cdc run took a snapshot again:\n%s", run.Logs())
		}
		if err := run.Stop(30 * time.Second); err != nil {
			t.Fatalf("SIGTERM: %v\n%s", err, run.Logs())
		}

		logs, err = s.runToEnd(time.Minute, "snapshot", "--config", s.config)
		if err == nil || !strings.Contains(logs, "snapshot is done and it has streamed since") {
			t.Errorf("a second cdc snapshot after streaming: %v, want a refusal that says why\n%s", err, logs)
		}
		logs, err = s.runToEnd(time.Minute, "snapshot", "--config", s.config, "--entity", "nope")
		if err == nil || !strings.Contains(logs, "--entity nope:") || !strings.Contains(logs, "has no such entity (it has: customer") {
			t.Errorf("cdc snapshot --entity nope: %v\n%s", err, logs)
		}
	})
}
