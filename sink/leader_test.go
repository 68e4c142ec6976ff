package sink

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// One instance of a connector's group leads at a time: a second waits, and
// leads once the first leaves; the first's lead has returned by then.
func TestOneInstanceLeadsAndAStandbyTakesOver(t *testing.T) {
	cluster, _ := startBroker(t)
	k := dial(t, cluster)
	events := make(chan string, 16)
	instance := func(name string) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- k.Lead(ctx, LeadOptions{Group: "cdc-test", Log: slog.New(slog.DiscardHandler)}, func(ctx context.Context) error {
				events <- name + " leads"
				<-ctx.Done()
				events <- name + " stops"
				return nil
			})
		}()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	next := func(want string) {
		t.Helper()
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("waited for %q", want)
		}
	}
	stopFirst := instance("first")
	next("first leads")
	stopSecond := instance("second")
	defer stopSecond()
	select {
	case got := <-events:
		t.Fatalf("a standby joining moved the leadership: %q", got)
	case <-time.After(3 * time.Second):
	}
	stopFirst()
	next("first stops")
	next("second leads")
}
