package backfill

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/sources/internal/snapshot"
)

func row(id int64, v string) []cdc.Value { return []cdc.Value{cdc.Int(id), cdc.String([]byte(v))} }

func TestWindowDropsTheKeysChangedInIt(t *testing.T) {
	table := &cdc.Table{Name: cdc.TableName{Schema: "s", Name: "t"}, Columns: []cdc.Column{{Name: "a"}, {Name: "b"}, {Name: "v"}}, PrimaryKey: []int{0, 1}}
	other := &cdc.Table{Name: cdc.TableName{Schema: "s", Name: "u"}, Columns: table.Columns, PrimaryKey: table.PrimaryKey}
	row := func(a int64, b, v string) []cdc.Value {
		return []cdc.Value{cdc.Int(a), cdc.String([]byte(b)), cdc.String([]byte(v))}
	}
	w := NewWindow()
	w.Touch(table, row(1, "x", "new"))
	w.Touch(table, nil)
	w.Touch(other, row(2, "x", "another table's row of the same key"))
	w.Touch(table, row(12, "", "a key whose parts run together with 1,2x"))
	chunk := []cdc.Change{
		{Table: table, Op: cdc.OpRead, After: row(1, "x", "old")},
		{Table: table, Op: cdc.OpRead, After: row(2, "x", "kept")},
		{Table: table, Op: cdc.OpRead, After: row(1, "2x", "kept")},
	}
	kept := w.Keep(chunk, []string{"v2"})
	if len(kept) != 2 || kept[0].After[2].String() != "kept" || kept[1].After[2].String() != "kept" {
		t.Fatalf("kept %v", kept)
	}
	for _, k := range kept {
		if !reflect.DeepEqual(k.Entities, []string{"v2"}) {
			t.Errorf("a kept row is for %v, want the backfill's entities", k.Entities)
		}
	}
}

// database is a table of rows keyed 1..n, whose watermarks go into a log
// the test reads as the stream.
type database struct {
	table *cdc.Table
	rows  int
	log   chan string
	reads [][]string // the key each read went on after
}

func (d *database) Watermark(_ context.Context, mark string) error {
	d.log <- mark
	return nil
}
func (d *database) AwaitVisible(context.Context) error { return nil }
func (d *database) Estimate(context.Context, cdc.TableName) (int64, error) {
	return int64(d.rows), nil
}
func (d *database) Read(_ context.Context, t *cdc.Table, after []string, limit int) ([]cdc.Change, []string, error) {
	d.reads = append(d.reads, after)
	from := 1
	if after != nil {
		n, _ := strconv.Atoi(after[0])
		from = n + 1
	}
	var rows []cdc.Change
	for id := from; id <= d.rows && len(rows) < limit; id++ {
		rows = append(rows, cdc.Change{Table: t, Op: cdc.OpRead, After: row(int64(id), "read")})
	}
	if len(rows) == 0 {
		return nil, nil, nil
	}
	return rows, []string{strconv.FormatInt(rows[len(rows)-1].After[0].Int, 10)}, nil
}
func (d *database) Close() {}

// newStream is the stream of a backfill of the table for entity v2, two rows
// a chunk, read from db.
// Its reader's failure goes to failed.
func newStream(table *cdc.Table, db Database[*cdc.Table], failed chan<- error) *Stream[*cdc.Table] {
	return &Stream[*cdc.Table]{Fill: &cdc.Backfill{Entities: []string{"v2"}, Tables: []cdc.TableName{table.Name}}, ChunkSize: 2,
		Open:     func(context.Context) (Database[*cdc.Table], error) { return db, nil },
		Describe: func(cdc.TableName) *cdc.Table { return table },
		Check: func(b cdc.Backfill) error {
			if !slices.Equal(b.Tables, []cdc.TableName{table.Name}) {
				return errors.New("not a table of the connector's")
			}
			return nil
		},
		Stop:     func(err error) { failed <- err },
		Progress: new(snapshot.Progress), Log: slog.New(slog.DiscardHandler)}
}

func TestStreamSendsEachChunkLessItsWindowAndEndsWhenDone(t *testing.T) {
	table := &cdc.Table{Name: cdc.TableName{Schema: "s", Name: "t"}, Columns: []cdc.Column{{Name: "id"}, {Name: "v"}}, PrimaryKey: []int{0}}
	db := &database{table: table, rows: 5, log: make(chan string, 2)}
	failed := make(chan error, 1)
	s := newStream(table, db, failed)
	ctx := context.Background()
	if sent, err := s.Watermark(ctx, "x:1:high"); sent != nil || err != nil {
		t.Fatalf("a watermark before the reader started: %v, %v", sent, err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}

	var got []int64
	for s.Reading() {
		low := <-db.log
		if sent, err := s.Watermark(ctx, "an earlier run's:1:low"); sent != nil || err != nil {
			t.Fatalf("an earlier run's watermark: %v, %v", sent, err)
		}
		if _, err := s.Watermark(ctx, low); err != nil {
			t.Fatal(err)
		}
		// Row 2 changes inside the first window: the stream sent its newer value.
		s.Touch(table, row(2, "old"), row(2, "new"))
		sent, err := s.Watermark(ctx, <-db.log)
		if err != nil || sent == nil {
			t.Fatalf("high watermark: %v, %v", sent, err)
		}
		for _, r := range sent.Rows {
			if !reflect.DeepEqual(r.Entities, []string{"v2"}) {
				t.Errorf("row %d is for %v", r.After[0].Int, r.Entities)
			}
			got = append(got, r.After[0].Int)
		}
		s.Sent(sent)
	}
	if want := []int64{1, 3, 4, 5}; !reflect.DeepEqual(got, want) {
		t.Errorf("sent rows %v, want %v (row 2 changed in its window)", got, want)
	}
	if want := [][]string{nil, {"2"}, {"4"}}; !reflect.DeepEqual(db.reads, want) {
		t.Errorf("reads went on after %q, want %q", db.reads, want)
	}
	if s.Fill != nil {
		t.Errorf("under way after the last chunk: %+v", s.Fill)
	}
	if p := s.Progress.Tables(); len(p) != 1 || p[0].Rows != 4 || p[0].Finished.IsZero() {
		t.Errorf("progress %+v: want 4 rows sent, table finished", p)
	}
	select {
	case err := <-failed:
		t.Errorf("the reader failed: %v", err)
	default:
	}
}

func TestSignalStartsABackfillOrJoinsTheOneUnderWay(t *testing.T) {
	table := &cdc.Table{Name: cdc.TableName{Schema: "s", Name: "t"}, Columns: []cdc.Column{{Name: "id"}, {Name: "v"}}, PrimaryKey: []int{0}}
	db := &database{table: table, rows: 5, log: make(chan string, 2)}
	s := newStream(table, db, make(chan error, 1))
	s.Fill = nil
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	asked := func(entity string, tables ...cdc.TableName) string {
		return cdc.Backfill{Entities: []string{entity}, Tables: tables}.String()
	}
	if err := s.Signal(ctx, asked("v3", cdc.TableName{Schema: "s", Name: "other"}), "p1"); err != nil || s.Fill != nil || s.Reading() {
		t.Fatalf("a backfill the source cannot serve: %v, under way %+v", err, s.Fill)
	}
	if err := s.Signal(ctx, "not a backfill", "p1"); err != nil || s.Fill != nil {
		t.Fatalf("a signal that does not parse: %v, under way %+v", err, s.Fill)
	}
	if err := s.Signal(ctx, asked("v3", table.Name), "p2"); err != nil || !s.Reading() {
		t.Fatalf("first signal: %v, reading %v", err, s.Reading())
	}
	<-db.log // the reader started: its low watermark
	if err := s.Signal(ctx, asked("v4", table.Name), "p3"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Fill.Entities, []string{"v3", "v4"}) {
		t.Errorf("asked twice: %v, want both entities in the one under way", s.Fill.Entities)
	}
}

func TestStreamRefusesAHighWatermarkWithoutItsLowOne(t *testing.T) {
	table := &cdc.Table{Name: cdc.TableName{Schema: "s", Name: "t"}, Columns: []cdc.Column{{Name: "id"}, {Name: "v"}}, PrimaryKey: []int{0}}
	db := &database{table: table, rows: 5, log: make(chan string, 2)}
	s := newStream(table, db, make(chan error, 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-db.log // the low watermark, lost
	if _, err := s.Watermark(ctx, <-db.log); err == nil {
		t.Error("a high watermark without its low one was taken")
	}
	if _, err := s.high("x:1:", &Chunk{ID: "x:2:", Table: table.Name}); err == nil {
		t.Error("a chunk of another watermark was taken")
	}
}

func TestReaderFailureStopsTheStream(t *testing.T) {
	table := &cdc.Table{Name: cdc.TableName{Schema: "s", Name: "t"}, Columns: []cdc.Column{{Name: "id"}}, PrimaryKey: []int{0}}
	failed := make(chan error, 1)
	s := newStream(table, &failing{}, failed)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-failed; !errors.Is(err, errDown) {
		t.Errorf("stopped with %v, want the database's error", err)
	}
}

var errDown = errors.New("the server went away")

type failing struct{ database }

func (*failing) Watermark(context.Context, string) error { return errDown }

func TestResumeDropsADoneBackfillAndMerges(t *testing.T) {
	a := cdc.TableName{Schema: "s", Name: "a"}
	done := &cdc.Backfill{Entities: []string{"x"}, Tables: []cdc.TableName{a}, Cursor: cdc.SnapshotCursor{Done: []cdc.TableName{a}}}
	asked := &cdc.Backfill{Entities: []string{"y"}, Tables: []cdc.TableName{a}}
	if got := Resume(done, nil); got != nil {
		t.Errorf("a done backfill goes on: %+v", got)
	}
	if got := Resume(done, asked); got == nil || !reflect.DeepEqual(got.Entities, []string{"y"}) {
		t.Errorf("asked after a done one: %+v", got)
	}
	if got := Resume(nil, nil); got != nil {
		t.Errorf("nothing gives %+v", got)
	}
}
