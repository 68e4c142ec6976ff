package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultListen is the address of the endpoints when the configuration names none.
const DefaultListen = "127.0.0.1:9464"

// Serve answers /metrics, /healthz and /readyz on addr until ctx ends. ready
// says why the connector is not ready (nil: ready); it is called per request
// and should answer within a couple of seconds. Serve returns once listening,
// or with the reason it cannot listen.
func (m *Metrics) Serve(ctx context.Context, addr string, ready func(context.Context) error, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if m.standby.Load() {
			// Ready to take over: a healthy standby counts as available
			// (a PodDisruptionBudget does not block on it).
			fmt.Fprintln(w, "ready: standing by, another instance of the connector leads")
			return
		}
		fmt.Fprintln(w, "ready")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http.listen %s: %w (set http.listen to a free address, or \"off\")", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	log.Info("serving /metrics, /healthz and /readyz", "address", ln.Addr().String())
	return nil
}
