// Package snapshot reads a source's tables in primary-key chunks, in
// parallel if asked, resuming after a cursor stored with the checkpoint, and
// keeps the progress that metrics and the terminal show.
package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cdc-dev/cdc"
)

// Chunk is a key range of a table: the rows whose primary key is after
// After (nil: from the first row) and at most UpTo (nil: to the last row), in
// the keys' text forms.
type Chunk struct {
	Table       cdc.TableName
	After, UpTo []string
}

// Reader is what a source gives a Chunked: queries on one view of
// the database, shared by the worker connections and the one that splits.
type Reader interface {
	// Estimate is the catalog's estimate of a table's rows (0: unknown).
	Estimate(ctx context.Context, table cdc.TableName) (int64, error)
	// Split returns the key that ends the chunk of n rows after the key given,
	// or nil when the rest of the table is one chunk: n rows or fewer remain,
	// or the table has no key to split on.
	Split(ctx context.Context, table cdc.TableName, after []string, n int) ([]string, error)
	// Read sends the chunk's rows, in key order, as read changes in batches to
	// out, on worker's connection (0 <= worker < Workers). With limit > 0 it
	// reads at most limit rows. It returns the rows read and the last one's
	// key; a nil key when the table has no key to split on, since its one
	// chunk is then the whole table.
	Read(ctx context.Context, worker int, chunk Chunk, limit int, out chan<- cdc.Batch) (rows int, last []string, err error)
}

// Chunked reads tables in primary-key chunks, resuming after a cursor,
// and passes the cursor down after each chunk so that a restart goes on from
// there. With one worker it reads each chunk after the last key of the one
// before. With more, the splitting connection finds the chunks' ends ahead
// while the workers read them: chunks of one table and of the next are read
// side by side, and their rows are interleaved (a snapshot sends each key
// once, so their order does not matter).
//
// The cursor only says "tables done, and this one up to this key", so it
// follows the first chunk not read yet: the chunks read beyond it are read
// again after a crash. At most 2×Workers chunks are ahead of it.
type Chunked struct {
	Reader    Reader
	Tables    []cdc.TableName
	Cursor    cdc.SnapshotCursor
	ChunkSize int
	Workers   int
	// Marker, if set, gives the position that stores a cursor; it is sent,
	// with StoreNow, after each chunk's rows.
	Marker   func(cdc.SnapshotCursor) cdc.Position
	Progress *Progress
	Log      *slog.Logger
}

// Run reads the tables into out.
func (s *Chunked) Run(ctx context.Context, out chan<- cdc.Batch) error {
	if s.Workers <= 1 {
		return s.serial(ctx, out)
	}
	return s.parallel(ctx, out)
}

func (s *Chunked) serial(ctx context.Context, out chan<- cdc.Batch) error {
	for _, table := range s.Tables {
		after, read := s.Cursor.Resume(table)
		if !read {
			continue
		}
		started, err := s.startTable(ctx, table, after)
		if err != nil {
			return err
		}
		total := 0
		for {
			rows, last, err := s.Reader.Read(ctx, 0, Chunk{Table: table, After: after}, s.ChunkSize, out)
			if err != nil {
				return err
			}
			total += rows
			finished := last == nil || rows < s.ChunkSize
			if !finished {
				after = last
			}
			if err := s.advance(ctx, table, after, finished, out); err != nil {
				return err
			}
			if finished {
				break
			}
		}
		s.finishTable(table, total, started)
	}
	return nil
}

// advance moves the cursor past a chunk and passes it down.
func (s *Chunked) advance(ctx context.Context, table cdc.TableName, after []string, finished bool, out chan<- cdc.Batch) error {
	s.Cursor = s.Cursor.Advance(table, after, finished)
	if s.Marker == nil {
		return nil
	}
	select {
	case out <- cdc.Batch{Position: s.Marker(s.Cursor), StoreNow: true}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Chunked) startTable(ctx context.Context, table cdc.TableName, after []string) (time.Time, error) {
	estimate, err := s.Reader.Estimate(ctx, table)
	if err != nil {
		return time.Time{}, fmt.Errorf("snapshot of %s: %w", table, err)
	}
	s.Progress.Start(table, estimate)
	s.Log.Info("snapshot of table started", "table", table.String(), "estimated_rows", estimate, "resumed_after_key", after)
	return time.Now(), nil
}

func (s *Chunked) finishTable(table cdc.TableName, rows int, started time.Time) {
	s.Progress.Finish(table)
	s.Log.Info("snapshot of table finished", "table", table.String(), "rows", rows, "seconds", time.Since(started).Round(time.Millisecond).Seconds())
}

// queuedChunk is a chunk of the parallel snapshot, numbered in cursor order.
type queuedChunk struct {
	Chunk
	seq     int
	first   bool      // the first chunk this snapshot reads of its table
	started time.Time // when this snapshot started the table
	rows    int
}

func (s *Chunked) parallel(ctx context.Context, out chan<- cdc.Batch) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(err error) {
		if ctx.Err() == nil {
			cancel(err)
		}
	}
	// ahead holds a token per chunk split but not yet passed by the cursor.
	ahead := make(chan struct{}, 2*s.Workers)
	queue := make(chan queuedChunk)
	read := make(chan queuedChunk)
	var wg sync.WaitGroup

	resume := s.Cursor // the coordinator moves s.Cursor on
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(queue)
		seq := 0
		for _, table := range s.Tables {
			after, reading := resume.Resume(table)
			if !reading {
				continue
			}
			started, err := s.startTable(ctx, table, after)
			if err != nil {
				fail(err)
				return
			}
			for first := true; ; first = false {
				select {
				case ahead <- struct{}{}:
				case <-ctx.Done():
					return
				}
				upTo, err := s.Reader.Split(ctx, table, after, s.ChunkSize)
				if err != nil {
					fail(fmt.Errorf("snapshot of %s: split the chunk after key %q: %w", table, after, err))
					return
				}
				select {
				case queue <- queuedChunk{Chunk: Chunk{Table: table, After: after, UpTo: upTo}, seq: seq, first: first, started: started}:
				case <-ctx.Done():
					return
				}
				seq++
				if upTo == nil {
					break
				}
				after = upTo
			}
		}
	}()
	for worker := range s.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range queue {
				rows, _, err := s.Reader.Read(ctx, worker, c.Chunk, 0, out)
				if err != nil {
					fail(err)
					return
				}
				c.rows = rows
				select {
				case read <- c:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(read)
	}()

	// The cursor passes the chunks in order: a chunk read early waits here.
	waiting := map[int]queuedChunk{}
	next := 0
	tableRows := 0
	for c := range read {
		waiting[c.seq] = c
		for {
			c, ok := waiting[next]
			if !ok {
				break
			}
			delete(waiting, next)
			next++
			<-ahead
			if c.first {
				tableRows = 0
			}
			tableRows += c.rows
			finished := c.UpTo == nil
			if err := s.advance(ctx, c.Table, c.UpTo, finished, out); err != nil {
				fail(err)
				break
			}
			if finished {
				s.finishTable(c.Table, tableRows, c.started)
			}
		}
	}
	return context.Cause(ctx)
}
