package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
)

// snapshotCommand backfills the entities' topics from the tables as they are,
// stores the position streaming starts from, and exits: `cdc run` goes on
// from there with no gap and no duplicate.
func snapshotCommand(ctx context.Context, args []string, stderr io.Writer) error {
	var only entityNames
	var online bool
	cfg, err := loadFromFlags("snapshot", args, stderr, func(fs *flag.FlagSet) {
		fs.Var(&only, "entity", "snapshot only this entity (repeat for several; default: every entity)")
		fs.BoolVar(&online, "online", false, "ask the running cdc run of this configuration to backfill the entities while it streams, and exit")
	})
	if err != nil {
		return err
	}
	for _, e := range cfg.Entities {
		if e.Outbox != nil && slices.Contains(only, e.Name) {
			return fmt.Errorf("--entity %s: %s reads an outbox table, whose rows are events published when they were inserted: there is nothing to snapshot (docs/outbox.md)", e.Name, e.Name)
		}
	}
	if online {
		return askOnlineBackfill(ctx, cfg, only, stderr)
	}
	if err := only.keep(cfg); err != nil {
		return err
	}
	cfg.Snapshot.Mode = string(cdc.SnapshotOnly)
	var view *progressView
	if isTerminal(stderr) {
		view = &progressView{out: stderr}
		stderr = view
	}
	log := newLogger(cfg, stderr)
	var opts daemonOptions
	if view != nil {
		opts.watchSnapshot = view.follow
	}
	err = superviseDaemon(ctx, cfg, log, opts)
	if view != nil {
		view.stop()
	}
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		log.Info("stopped before the snapshot finished; cdc snapshot or cdc run resumes it")
		return nil
	}
	if err == nil {
		log.Info("snapshot done")
	}
	return err
}

// askOnlineBackfill asks the connector's running daemon, through the
// database's log, to backfill entities while it streams. The daemon need not
// be running: it meets the request when it resumes.
func askOnlineBackfill(ctx context.Context, cfg *Config, only entityNames, stderr io.Writer) error {
	if err := only.keep(cfg); err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	c, err := openConnector(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	asked := backfillOf(c.entities, func(e *mapping.Entity) bool { return e.Outbox == nil })
	signaler, ok := c.src.(cdc.Signaler)
	if !ok {
		return fmt.Errorf("source kind %s cannot backfill while streaming", cfg.Source.Kind)
	}
	if err := signaler.Signal(ctx, asked); err != nil {
		return err
	}
	log.Info("asked the connector's cdc run to backfill while it streams; it logs \"backfill finished\" when done, and cdc_snapshot_finished tells the same",
		"entities", strings.Join(asked.Entities, ","), "tables", len(asked.Tables))
	return nil
}

// entityNames collects repeated --entity flags.
type entityNames []string

func (n *entityNames) String() string { return strings.Join(*n, ",") }
func (n *entityNames) Set(v string) error {
	*n = append(*n, v)
	return nil
}

// keep drops the configuration's other entities; every name must be one.
func (n entityNames) keep(cfg *Config) error {
	if len(n) == 0 {
		return nil
	}
	var known []string
	for _, e := range cfg.Entities {
		known = append(known, e.Name)
	}
	for _, name := range n {
		if !slices.Contains(known, name) {
			return fmt.Errorf("--entity %s: %s has no such entity (it has: %s)", name, cfg.path, strings.Join(known, ", "))
		}
	}
	cfg.Entities = slices.DeleteFunc(cfg.Entities, func(e EntityConfig) bool { return !slices.Contains(n, e.Name) })
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressView keeps one line per table at the bottom of a terminal, redrawn
// every second, with log lines scrolling above it.
type progressView struct {
	mu    sync.Mutex
	out   io.Writer
	lines []string // drawn at the bottom
	done  chan struct{}
	wg    sync.WaitGroup
}

// Write prints a log line above the progress lines.
func (v *progressView) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.erase()
	n, err := v.out.Write(p)
	v.draw()
	return n, err
}

func (v *progressView) erase() {
	if len(v.lines) > 0 {
		fmt.Fprintf(v.out, "\x1b[%dA\x1b[J", len(v.lines)) // up, then clear to the end
	}
}

func (v *progressView) draw() {
	for _, l := range v.lines {
		fmt.Fprintln(v.out, l)
	}
}

// follow redraws the source's snapshot progress every second until stop.
func (v *progressView) follow(p cdc.ProgressReporter) {
	v.done = make(chan struct{})
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			v.show(progressLines(p.SnapshotProgress(), time.Now()))
			select {
			case <-v.done:
				return
			case <-tick.C:
			}
		}
	}()
}

func (v *progressView) show(lines []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.erase()
	v.lines = lines
	v.draw()
}

// stop draws the final state, which stays on the terminal.
func (v *progressView) stop() {
	if v.done != nil {
		close(v.done)
		v.wg.Wait()
	}
}

// progressLines renders each table: rows of the estimate, rate, ETA or time taken.
func progressLines(tables []cdc.TableProgress, now time.Time) []string {
	width := 0
	for _, t := range tables {
		width = max(width, len(t.Table.String()))
	}
	lines := make([]string, 0, len(tables))
	for _, t := range tables {
		line := fmt.Sprintf("%-*s %12d rows", width, t.Table.String(), t.Rows)
		if t.Estimated > 0 && t.Finished.IsZero() {
			line += fmt.Sprintf(" of ~%d (%3.0f%%)", t.Estimated, min(100, 100*float64(t.Rows)/float64(t.Estimated)))
		}
		if rate := t.Rate(now); rate > 0 {
			line += fmt.Sprintf("  %8.0f rows/s", rate)
		}
		if !t.Finished.IsZero() {
			line += "  done in " + t.Finished.Sub(t.Started).Round(100*time.Millisecond).String()
		} else if eta := t.ETA(now); eta > 0 {
			line += "  ETA " + eta.Round(time.Second).String()
		}
		lines = append(lines, line)
	}
	return lines
}
