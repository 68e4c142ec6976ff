package integration

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
)

// The counters follow the workload: a snapshot of every customer, then inserts,
// a hidden-only update, a delete; the gauges say where the connector stands;
// /readyz flips when the broker goes away while /healthz stays up.
func TestMetricsFollowTheWorkloadAndReadinessTheBroker(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		customers := len(s.project(s.customerProjection()))
		d := s.start()
		addr, err := d.MetricsAddress(time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		s.waitCustomersMatch()
		table := "public.customer"
		if s.mysql {
			table = s.name + ".customer"
		}
		events := func(op string) string { return fmt.Sprintf(`cdc_events_total{entity="customer",op="%s"}`, op) }
		m := waitMetrics(t, addr, map[string]float64{
			events("read"): float64(customers),
			`cdc_snapshot_rows{table="` + table + `"}`:     float64(customers),
			`cdc_snapshot_finished{table="` + table + `"}`: 1,
		})
		if est, ok := m[`cdc_snapshot_rows_estimated{table="`+table+`"}`]; !ok || math.IsNaN(est) || est < 0 {
			t.Errorf("estimated rows %v (present %v)", est, ok)
		}

		const inserts = 25
		s.exec(s.bulk(inserts))
		s.exec(`UPDATE customer SET password_hash = 'changed' WHERE customer_id = 1`) // hidden only
		s.exec(`DELETE FROM customer WHERE customer_id = 2`)
		s.waitCustomersMatch()
		m = waitMetrics(t, addr, map[string]float64{
			events("insert"): inserts,
			events("delete"): 1,
			`cdc_tombstones_total{entity="customer"}`:                         1,
			`cdc_changes_skipped_total{entity="customer",reason="unchanged"}`: 1,
		})
		if got := m[events("update")]; got != 0 {
			t.Errorf("%v update events for a hidden-only update", got)
		}
		if acked := m["cdc_records_acknowledged_total"]; acked < float64(customers+inserts+1) {
			t.Errorf("%v records acknowledged, want at least %d", acked, customers+inserts+1)
		}
		for _, name := range []string{"cdc_source_lag_seconds", "cdc_checkpoint_age_seconds"} {
			if v, ok := m[name]; !ok || v < 0 || v > 60 {
				t.Errorf("%s = %v (present %v), want a few seconds at most", name, v, ok)
			}
		}
		// Read every 15 s from the database: wait for the first reading.
		m = waitMetrics(t, addr, map[string]float64{"cdc_source_status_up": 1})
		if v, ok := m["cdc_source_lag_bytes"]; !ok || v < 0 {
			t.Errorf("cdc_source_lag_bytes = %v (present %v)", v, ok)
		}
		// Neither test server limits the log it keeps (PostgreSQL's
		// max_slot_wal_keep_size = -1, MariaDB's binlog expiry 0).
		if v := m["cdc_time_to_data_loss_seconds"]; !math.IsInf(v, 1) {
			t.Errorf("cdc_time_to_data_loss_seconds = %v, want +Inf", v)
		}

		if code := httpStatus(t, addr, "/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz answers %d while streaming", code)
		}
		s.kafka.Close()
		if err := harness.Eventually(30*time.Second, func() (bool, error) {
			return httpStatus(t, addr, "/readyz") == http.StatusServiceUnavailable, nil
		}); err != nil {
			t.Fatalf("/readyz does not answer 503 once the broker is gone: %v", err)
		}
		if code := httpStatus(t, addr, "/healthz"); code != http.StatusOK {
			t.Errorf("/healthz answers %d with the broker gone; the process is alive", code)
		}
		// The client's failed connections and requests are counted as they are retried.
		if err := harness.Eventually(30*time.Second, func() (bool, error) {
			m := scrape(t, addr)
			failed := 0.0
			for _, stage := range []string{"connect", "write", "read"} {
				failed += m[`cdc_broker_request_errors_total{stage="`+stage+`"}`]
			}
			return failed > 0, nil
		}); err != nil {
			t.Errorf("no broker request error counted with the broker gone: %v", err)
		}
	})
}

// scrape reads /metrics into series → value, series as exposed
// (`name{label="value",...}`).
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	m, err := harness.Scrape(addr)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitMetrics scrapes until every series has its value, and returns the last scrape.
func waitMetrics(t *testing.T, addr string, want map[string]float64) map[string]float64 {
	t.Helper()
	var got map[string]float64
	err := harness.Eventually(45*time.Second, func() (bool, error) {
		got = scrape(t, addr)
		for name, v := range want {
			if got[name] != v {
				return false, fmt.Errorf("%s = %v, want %v", name, got[name], v)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func httpStatus(t *testing.T, addr, path string) int {
	t.Helper()
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
