package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cdc-dev/cdc"
)

func TestTimeToDataLoss(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m := New()
	// PostgreSQL: 1 GB safe; 10 MB written in 10 s is 1 MB/s, so 1000 s.
	m.updateLog(cdc.LogStatus{WrittenBytes: 100e6, SafeBytes: 1e9}, now)
	if got := testutil.ToFloat64(m.timeToLoss); !math.IsInf(got, 1) {
		t.Errorf("first reading: %v, want +Inf (no rate yet)", got)
	}
	m.updateLog(cdc.LogStatus{WrittenBytes: 110e6, SafeBytes: 1e9, BehindBytes: 5e6}, now.Add(10*time.Second))
	if got := testutil.ToFloat64(m.timeToLoss); got != 1000 {
		t.Errorf("safe bytes at the WAL rate: %v, want 1000", got)
	}
	if got := testutil.ToFloat64(m.behindBytes); got != 5e6 {
		t.Errorf("lag bytes %v", got)
	}
	// MySQL: binlogs expire after a day; the connector is an hour behind.
	m = New()
	m.Checkpointed(time.Now().Add(-time.Hour), time.Now())
	m.updateLog(cdc.LogStatus{SafeBytes: -1, KeptFor: 24 * time.Hour}, now)
	if got := testutil.ToFloat64(m.timeToLoss); math.Abs(got-23*3600) > 5 {
		t.Errorf("expiry minus lag: %v, want about %v", got, 23*3600)
	}
	m.updateLog(cdc.LogStatus{SafeBytes: -1, KeptFor: 24 * time.Hour, Lost: true}, now)
	if got := testutil.ToFloat64(m.timeToLoss); got != 0 {
		t.Errorf("lost: %v, want 0", got)
	}
	m.updateLog(cdc.LogStatus{SafeBytes: -1}, now)
	if got := testutil.ToFloat64(m.timeToLoss); !math.IsInf(got, 1) {
		t.Errorf("no limit: %v, want +Inf", got)
	}
}

// A source whose log status cannot be read: the gauge says so, and the log
// says it once per change of state, not once per attempt.
type flakySource struct {
	cdc.Source // only LogStatus is called
	mu         sync.Mutex
	failures   int
	calls      int
}

func (f *flakySource) LogStatus(context.Context) (cdc.LogStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.failures {
		return cdc.LogStatus{}, errors.New("slot cdc_shop does not exist")
	}
	return cdc.LogStatus{BehindBytes: 42, SafeBytes: -1}, nil
}

func (f *flakySource) called() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func TestLogStatusFailuresAreLoggedOncePerStateChange(t *testing.T) {
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	m := New()
	src := &flakySource{failures: 3}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.WatchSource(ctx, src, time.Millisecond, log)
	deadline := time.Now().Add(10 * time.Second)
	for m.SourceError() == nil {
		if time.Now().After(deadline) {
			t.Fatal("a failed reading is not reported by SourceError")
		}
		time.Sleep(time.Millisecond)
	}
	for src.called() < 5 || testutil.ToFloat64(m.behindBytes) != 42 {
		if time.Now().After(deadline) {
			t.Fatalf("%d readings, lag bytes %v", src.called(), testutil.ToFloat64(m.behindBytes))
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := m.SourceError(); err != nil {
		t.Errorf("SourceError() = %v after a successful reading", err)
	}
	if up := testutil.ToFloat64(m.statusUp); up != 1 {
		t.Errorf("cdc_source_status_up = %v after a successful reading", up)
	}
	logMu.Lock()
	defer logMu.Unlock()
	text := logs.String()
	if n := strings.Count(text, "cannot read the database's log status"); n != 1 {
		t.Errorf("%d warnings for 3 failed readings in a row, want 1:\n%s", n, text)
	}
	if !strings.Contains(text, "slot cdc_shop does not exist") || strings.Count(text, "reading the database's log status again") != 1 {
		t.Errorf("log:\n%s", text)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestEndpoints(t *testing.T) {
	m := New()
	m.Entity("customer").Op(cdc.OpInsert).Add(3)
	notReady := errors.New("no Kafka broker answers")
	var ready atomic.Pointer[error]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Port 0: a free port, found in the listener the test opens first to
	// learn which one, then frees.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	log := slog.New(slog.DiscardHandler)
	if err := m.Serve(ctx, addr, func(context.Context) error {
		if e := ready.Load(); e != nil {
			return *e
		}
		return nil
	}, log); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `cdc_events_total{entity="customer",op="insert"} 3`) {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d while ready", code)
	}
	ready.Store(&notReady)
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "no Kafka broker answers") {
		t.Errorf("/readyz: %d %q while not ready", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	// A second server on the same address: the error says which key to change.
	err = New().Serve(ctx, addr, nil, log)
	if err == nil || !strings.Contains(err.Error(), "http.listen "+addr) || !strings.Contains(err.Error(), `or "off"`) {
		t.Errorf("listening on a taken address: %v", err)
	}
}
