package snapshot

import (
	"log/slog"
	"testing"
	"time"

	"github.com/cdc-dev/cdc"
)

func TestSnapshotProgressRateAndTimeLeft(t *testing.T) {
	var p Progress
	log := slog.New(slog.DiscardHandler)
	customer, orders := cdc.TableName{Schema: "shop", Name: "customer"}, cdc.TableName{Schema: "shop", Name: "orders"}
	p.Start(customer, 1000)
	p.Add(customer, 250, log)
	p.Add(orders, 5, log) // not started: ignored
	tables := p.Tables()
	if len(tables) != 1 || tables[0].Rows != 250 || tables[0].Estimated != 1000 {
		t.Fatalf("tables %+v", tables)
	}
	c := tables[0]
	now := c.Started.Add(10 * time.Second)
	if rate := c.Rate(now); rate != 25 {
		t.Errorf("rate %v, want 25 rows/s", rate)
	}
	if eta := c.ETA(now); eta != 30*time.Second {
		t.Errorf("time left %v, want 30s (750 rows at 25/s)", eta)
	}
	p.Finish(customer)
	if c = p.Tables()[0]; c.Finished.IsZero() || c.ETA(now) != 0 {
		t.Errorf("finished table: %+v, time left %v", c, c.ETA(now))
	}
	// A table read again (a restarted snapshot) starts over.
	p.Start(customer, 1000)
	if tables = p.Tables(); len(tables) != 1 || tables[0].Rows != 0 || !tables[0].Finished.IsZero() {
		t.Errorf("restarted table: %+v", tables)
	}
}
