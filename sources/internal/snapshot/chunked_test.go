package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cdc-dev/cdc"
)

// keyedTables is a Reader over in-memory tables of zero-padded keys, which
// sort as text the way they do as numbers. A nil key list is a table without a
// primary key. Reads take a random moment, so parallel chunks finish out of
// order.
type keyedTables struct {
	tables map[cdc.TableName]*cdc.Table
	keys   map[cdc.TableName][]string
	mu     sync.Mutex
	busy   map[int]bool // workers reading now: one chunk at a time each
}

func newKeyedTables(rows map[cdc.TableName]int, keyless ...cdc.TableName) *keyedTables {
	k := &keyedTables{tables: map[cdc.TableName]*cdc.Table{}, keys: map[cdc.TableName][]string{}, busy: map[int]bool{}}
	for name, n := range rows {
		t := &cdc.Table{Name: name, Columns: []cdc.Column{{Name: "id", Kind: cdc.KindString}}, PrimaryKey: []int{0}}
		if slices.Contains(keyless, name) {
			t.PrimaryKey = nil
		}
		k.tables[name] = t
		for i := range n {
			k.keys[name] = append(k.keys[name], fmt.Sprintf("%06d", i*3))
		}
	}
	return k
}

func (k *keyedTables) Estimate(context.Context, cdc.TableName) (int64, error) { return 0, nil }

func (k *keyedTables) Split(_ context.Context, table cdc.TableName, after []string, n int) ([]string, error) {
	if k.tables[table].PrimaryKey == nil {
		return nil, nil
	}
	rows := k.after(table, after)
	if len(rows) < n {
		return nil, nil
	}
	return []string{rows[n-1]}, nil
}

func (k *keyedTables) after(table cdc.TableName, after []string) []string {
	keys := k.keys[table]
	if after == nil {
		return keys
	}
	return keys[sort.SearchStrings(keys, after[0]+"\x00"):]
}

func (k *keyedTables) Read(ctx context.Context, worker int, c Chunk, limit int, out chan<- cdc.Batch) (int, []string, error) {
	k.mu.Lock()
	if k.busy[worker] {
		k.mu.Unlock()
		return 0, nil, fmt.Errorf("worker %d reads two chunks at once", worker)
	}
	k.busy[worker] = true
	k.mu.Unlock()
	defer func() { k.mu.Lock(); k.busy[worker] = false; k.mu.Unlock() }()
	time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)

	t := k.tables[c.Table]
	var batch []cdc.Change
	var last string
	for _, key := range k.after(c.Table, c.After) {
		if (c.UpTo != nil && key > c.UpTo[0]) || (limit > 0 && len(batch) == limit) {
			break
		}
		batch = append(batch, cdc.Change{Table: t, Op: cdc.OpRead, After: []cdc.Value{cdc.String([]byte(key))}})
		last = key
	}
	select {
	case out <- cdc.Batch{Changes: batch}:
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	if t.PrimaryKey == nil || batch == nil {
		return len(batch), nil, nil
	}
	return len(batch), []string{last}, nil
}

// snapshotRun is what a Chunked sent: the keys read, and for each
// cursor passed down, the keys read before it.
type snapshotRun struct {
	read    map[cdc.TableName][]string
	cursors []cdc.SnapshotCursor
	readBy  []map[cdc.TableName]int // rows read of each table when cursors[i] came
}

func runSnapshot(t *testing.T, r *keyedTables, tables []cdc.TableName, cursor cdc.SnapshotCursor, chunk, workers int) snapshotRun {
	t.Helper()
	out := make(chan cdc.Batch, 4)
	s := &Chunked{Reader: r, Tables: tables, Cursor: cursor, ChunkSize: chunk, Workers: workers,
		Marker: func(c cdc.SnapshotCursor) cdc.Position { return cdc.Position(c.String()) }, Progress: &Progress{}, Log: slog.New(slog.DiscardHandler)}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), out); close(out) }()
	run := snapshotRun{read: map[cdc.TableName][]string{}}
	for b := range out {
		for _, ch := range b.Changes {
			run.read[ch.Table.Name] = append(run.read[ch.Table.Name], ch.After[0].String())
		}
		if b.Position != "" {
			c, err := cdc.ParseSnapshotCursor(string(b.Position))
			if err != nil {
				t.Fatal(err)
			}
			counts := map[cdc.TableName]int{}
			for name, keys := range run.read {
				counts[name] = len(keys)
			}
			run.cursors = append(run.cursors, c)
			run.readBy = append(run.readBy, counts)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return run
}

// checkCursorsFollowTheRows checks that every cursor passed down covers only
// rows already sent, or covered by the cursor the run started from: stored
// once they are acknowledged, a restart from it misses nothing.
func checkCursorsFollowTheRows(t *testing.T, r *keyedTables, start cdc.SnapshotCursor, run snapshotRun) {
	t.Helper()
	covered := func(c cdc.SnapshotCursor, table cdc.TableName) int {
		switch {
		case c.Finished(table):
			return len(r.keys[table])
		case c.Table == table:
			return len(r.keys[table]) - len(r.after(table, c.After))
		}
		return 0
	}
	for i, c := range run.cursors {
		for _, name := range c.Done {
			if got, want := run.readBy[i][name]+covered(start, name), len(r.keys[name]); got < want {
				t.Fatalf("cursor %d (%s) says %s is done after %d of its %d rows", i, c, name, got, want)
			}
		}
		if c.Table != (cdc.TableName{}) {
			covered := covered(c, c.Table) - covered(start, c.Table)
			if got := run.readBy[i][c.Table]; got < covered {
				t.Fatalf("cursor %d (%s) covers %d rows of %s, of which %d were sent", i, c, covered, c.Table, got)
			}
		}
	}
}

func TestChunkedInParallelReadsWhatTheSerialOneReads(t *testing.T) {
	a, b, c, keyless := cdc.TableName{Schema: "s", Name: "a"}, cdc.TableName{Schema: "s", Name: "b"}, cdc.TableName{Schema: "s", Name: "c"}, cdc.TableName{Schema: "s", Name: "keyless"}
	r := newKeyedTables(map[cdc.TableName]int{a: 1000, b: 7, c: 0, keyless: 55}, keyless)
	tables := []cdc.TableName{a, b, c, keyless}
	serial := runSnapshot(t, r, tables, cdc.SnapshotCursor{}, 100, 1)
	for name, keys := range r.keys {
		if !slices.Equal(serial.read[name], keys) {
			t.Fatalf("serial read of %s: %d rows, want the table's %d in key order", name, len(serial.read[name]), len(keys))
		}
	}
	checkCursorsFollowTheRows(t, r, cdc.SnapshotCursor{}, serial)
	for _, workers := range []int{2, 3, 8} {
		parallel := runSnapshot(t, r, tables, cdc.SnapshotCursor{}, 100, workers)
		for name, keys := range r.keys {
			got := slices.Clone(parallel.read[name])
			slices.Sort(got)
			if !slices.Equal(got, keys) {
				t.Fatalf("%d workers read %d rows of %s, want each of its %d once", workers, len(got), name, len(keys))
			}
		}
		checkCursorsFollowTheRows(t, r, cdc.SnapshotCursor{}, parallel)
		if last := parallel.cursors[len(parallel.cursors)-1]; len(last.Done) != len(tables) {
			t.Fatalf("%d workers: the last cursor is %s, want every table done", workers, last)
		}
	}
}

func TestChunkedResumesAfterTheCursorInParallel(t *testing.T) {
	a, b := cdc.TableName{Schema: "s", Name: "a"}, cdc.TableName{Schema: "s", Name: "b"}
	r := newKeyedTables(map[cdc.TableName]int{a: 300, b: 500})
	start := cdc.SnapshotCursor{Done: []cdc.TableName{a}, Table: b, After: []string{"000299"}}
	resumed := runSnapshot(t, r, []cdc.TableName{a, b}, start, 40, 4)
	if len(resumed.read[a]) != 0 {
		t.Fatalf("read %d rows of a table the cursor says is done", len(resumed.read[a]))
	}
	got := slices.Clone(resumed.read[b])
	slices.Sort(got)
	if want := r.after(b, []string{"000299"}); !slices.Equal(got, want) {
		t.Fatalf("resumed with %d rows of b, want the %d after key 000299", len(got), len(want))
	}
	checkCursorsFollowTheRows(t, r, start, resumed)
}
