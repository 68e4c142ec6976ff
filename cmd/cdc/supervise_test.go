package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/cdc-dev/cdc"
)

// freeAddress is a local address nothing listens on.
func freeAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// get returns the status and body of an endpoint of the daemon.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// A transient failure once the servers answered restarts the connector; while
// it waits, /readyz says why and the restart is counted; a stop ends it.
func TestSupervisorRestartsAfterATransientFailure(t *testing.T) {
	cfg := &Config{Name: "shop"}
	cfg.HTTP.Listen = freeAddress(t)
	base := "http://" + cfg.HTTP.Listen
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	attempts := 0
	opts := daemonOptions{attempt: func(ctx context.Context, _ *Config, _ *slog.Logger, opts daemonOptions) error {
		attempts++
		if attempts == 1 {
			opts.reached()
			opts.ready(func(context.Context) error { return nil })
			opts.running()
			return cdc.Transient(errors.New("connection to the database lost"))
		}
		// The second attempt starts: until it says it is ready, the
		// readiness is the failure it restarts from.
		if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "restarting after a transient failure: connection to the database lost") {
			t.Errorf("/readyz while restarting: %d %q", code, body)
		}
		if _, body := get(t, base+"/metrics"); !strings.Contains(body, "cdc_restarts_total 1\n") {
			t.Errorf("restarts not counted:\n%s", body)
		}
		opts.ready(func(context.Context) error { return nil })
		if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz once running again: %d", code)
		}
		cancel() // SIGTERM
		<-ctx.Done()
		return ctx.Err()
	}}
	err := superviseDaemon(ctx, cfg, slog.New(slog.DiscardHandler), opts)
	if attempts != 2 || (err != nil && !errors.Is(err, context.Canceled)) {
		t.Fatalf("%d attempts, returned %v; want 2 and a clean stop", attempts, err)
	}
}

// A database restarting under a first start (it answers that it is shutting
// down or starting up) was reached: the start is tried again, not given up.
func TestSupervisorWaitsForADatabaseRestartingUnderAFirstStart(t *testing.T) {
	cfg := &Config{Name: "shop"}
	cfg.HTTP.Listen = "off"
	attempts := 0
	err := superviseDaemon(t.Context(), cfg, slog.New(slog.DiscardHandler), daemonOptions{
		attempt: func(_ context.Context, _ *Config, _ *slog.Logger, opts daemonOptions) error {
			if attempts++; attempts == 1 {
				return cdc.Restarting(errors.New("FATAL: terminating connection due to administrator command (SQLSTATE 57P01)"))
			}
			return nil
		}})
	if attempts != 2 || err != nil {
		t.Fatalf("%d attempts, returned %v; want a second attempt, which ends the run", attempts, err)
	}
}

// What waiting cannot cure is returned at once: a failure that is not
// transient, or a transient one before the database and the brokers ever
// answered (most often a mistake in the configuration).
func TestSupervisorReturnsWhatARestartCannotCure(t *testing.T) {
	for _, c := range []struct {
		name    string
		reached bool
		err     error
	}{
		{"not transient", true, errors.New("a value the schema cannot hold")},
		{"never reached", false, cdc.Transient(errors.New("connection refused"))},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := &Config{Name: "shop"}
			cfg.HTTP.Listen = "off"
			attempts := 0
			err := superviseDaemon(t.Context(), cfg, slog.New(slog.DiscardHandler), daemonOptions{
				attempt: func(_ context.Context, _ *Config, _ *slog.Logger, opts daemonOptions) error {
					attempts++
					if c.reached {
						opts.reached()
					}
					return c.err
				}})
			if attempts != 1 || !errors.Is(err, c.err) {
				t.Fatalf("%d attempts, returned %v; want 1 and %v", attempts, err, c.err)
			}
		})
	}
}
