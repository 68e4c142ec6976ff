package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cdc-dev/cdc"
)

func TestProgressLinesShowRowsRateAndETA(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := start.Add(10 * time.Second)
	lines := progressLines([]cdc.TableProgress{
		{Table: cdc.TableName{Schema: "public", Name: "customer"}, Rows: 1000, Estimated: 1000, Started: start, Finished: start.Add(2 * time.Second)},
		{Table: cdc.TableName{Schema: "public", Name: "order_line"}, Rows: 250_000, Estimated: 1_000_000, Started: start},
		{Table: cdc.TableName{Schema: "public", Name: "audit"}, Rows: 0, Started: now},
	}, now)
	want := []string{
		"public.customer           1000 rows       500 rows/s  done in 2s",
		"public.order_line       250000 rows of ~1000000 ( 25%)     25000 rows/s  ETA 30s",
		"public.audit                 0 rows",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// Log lines scroll above the progress lines, which are redrawn below them.
func TestProgressViewKeepsProgressBelowLogLines(t *testing.T) {
	var out bytes.Buffer
	v := &progressView{out: &out}
	v.show([]string{"t1 10 rows", "t2 0 rows"})
	v.Write([]byte("level=INFO msg=hello\n"))
	v.show([]string{"t1 20 rows", "t2 5 rows"})
	want := "t1 10 rows\nt2 0 rows\n" +
		"\x1b[2A\x1b[J" + "level=INFO msg=hello\n" + "t1 10 rows\nt2 0 rows\n" +
		"\x1b[2A\x1b[J" + "t1 20 rows\nt2 5 rows\n"
	if out.String() != want {
		t.Errorf("terminal output %q, want %q", out.String(), want)
	}
}

func TestSnapshotEntityFlagKeepsTheNamedEntities(t *testing.T) {
	cfg := &Config{path: "cdc.yaml", Entities: []EntityConfig{{Name: "customer"}, {Name: "order"}, {Name: "film"}}}
	if err := (entityNames{"film", "customer"}).keep(cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Entities) != 2 || cfg.Entities[0].Name != "customer" || cfg.Entities[1].Name != "film" {
		t.Errorf("kept %v", cfg.Entities)
	}
	err := (entityNames{"nope"}).keep(cfg)
	if err == nil || err.Error() != "--entity nope: cdc.yaml has no such entity (it has: customer, film)" {
		t.Errorf("unknown entity: %v", err)
	}
}

func TestSnapshotOfAnOutboxIsRefused(t *testing.T) {
	t.Setenv("SHOP_DSN", "postgres://cdc@127.0.0.1:1/shop")
	for _, args := range [][]string{{"--entity", "events"}, {"--online", "--entity", "events"}} {
		err := snapshotCommand(t.Context(), append([]string{"--config", "../../config.example.yaml"}, args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--entity events: events reads an outbox table, whose rows are events published when they were inserted: there is nothing to snapshot") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
