package integration

import (
	"strings"
	"testing"
	"time"
)

// cdc verify compares each topic, materialized, with the mapping applied to
// the table: identical after the daemon stopped cleanly; after changes the
// daemon did not see, it names each missing, extra and differing key with
// both values and exits 1; once the daemon caught up, identical again.
func TestVerifyFindsWhatTheTopicLacksAndAgreesOnceCaughtUp(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		verify := func(args ...string) (string, error) {
			return s.runToEnd(2*time.Minute, append([]string{"verify", "--config", s.config}, args...)...)
		}
		out, err := verify()
		if err == nil || !strings.Contains(out, "topic shop.customer.v1 does not exist: cdc run creates it") {
			t.Fatalf("verify before any run: %v, want the missing topic named\n%s", err, out)
		}

		s.exec(s.bulk(3000))
		d := s.start()
		s.waitCustomersMatch()
		if err := d.Stop(30 * time.Second); err != nil {
			t.Fatalf("SIGTERM: %v\n%s", err, d.Logs())
		}
		out, err = verify()
		if err != nil {
			t.Fatalf("verify after a clean stop: %v\n%s", err, out)
		}
		if !strings.Contains(out, "entity customer: topic shop.customer.v1 has 3003 keys; table ") ||
			!strings.Contains(out, " has 3003 rows in the entity: identical") {
			t.Errorf("verify does not report the customers identical:\n%s", out)
		}
		// An outbox's routes hold events: their records are checked, not compared.
		if strings.Count(out, ": identical")+strings.Count(out, ": all do") != strings.Count(out, "entity ") {
			t.Errorf("an entity differs after a clean stop:\n%s", out)
		}

		// Changes the stopped daemon has not sent.
		s.exec(`UPDATE customer SET email = 'changed-while-stopped@example.com' WHERE customer_id = 1`,
			`DELETE FROM customer WHERE customer_id = 2`, s.bulk(1))
		out, err = verify("--entity", "customer")
		if err == nil {
			t.Fatalf("verify exits 0 with three keys behind:\n%s", out)
		}
		t.Logf("verify with three keys behind:\n%s", out)
		for _, want := range []string{
			"has 3003 keys; table ", "has 3003 rows in the entity: 1 missing, 1 extra, 1 differing",
			`differing key {"id":1}`, `"email":"changed-while-stopped@example.com"`,
			`extra key {"id":2}`, `missing key {"id":`,
			"verify: 1 of 1 entities differ from their tables (3 keys)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("verify output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "entity order") {
			t.Errorf("--entity customer verified other entities too:\n%s", out)
		}

		d = s.start()
		s.waitCustomersMatch()
		if err := d.Stop(30 * time.Second); err != nil {
			t.Fatalf("SIGTERM: %v\n%s", err, d.Logs())
		}
		if out, err = verify(); err != nil {
			t.Fatalf("verify once caught up: %v\n%s", err, out)
		}
		if out, err = verify("--entity", "nope"); err == nil || !strings.Contains(out, "--entity nope:") {
			t.Errorf("verify --entity nope: %v\n%s", err, out)
		}
	})
}
