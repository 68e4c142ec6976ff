package memory

import (
	"testing"
	"unsafe"

	"github.com/cdc-dev/cdc"
)

func TestArenaPiecesNeverOverlap(t *testing.T) {
	var a Arena
	var rows [][]cdc.Value
	var bufs [][]byte
	for i := range 3000 { // several chunks of each kind
		row := a.Row(6)
		row[0] = cdc.Int(int64(i))
		rows = append(rows, row)
		b := a.CopyString("row")
		b = append(b, byte(i)) // must not write into the next piece
		bufs = append(bufs, b[:3])
	}
	big := a.Row(a.values.chunkLen()) // larger than a chunk: its own allocation
	big[0] = cdc.Int(-1)
	for i, row := range rows {
		if len(row) != 6 || cap(row) != 6 || row[0].Int != int64(i) || !row[1].IsNull() {
			t.Fatalf("row %d = %v (cap %d)", i, row, cap(row))
		}
		if string(bufs[i]) != "row" {
			t.Fatalf("buffer %d = %q", i, bufs[i])
		}
	}
}

func TestArenaReusesReleasedMemoryZeroed(t *testing.T) {
	var a Arena
	seen := map[*byte]bool{}
	for range 10 * slabChunkBytes / 100 { // ten chunks
		b := a.Bytes(100)
		b[0] = 0xff
		seen[unsafe.SliceData(b)] = true
	}
	a.Release(a.Mark())
	reused := 0
	for range 10 * slabChunkBytes / 100 {
		b := a.Bytes(100)
		if seen[unsafe.SliceData(b)] {
			reused++
		}
		for _, c := range b {
			if c != 0 {
				t.Fatalf("reused buffer not zeroed: %v", b)
			}
		}
	}
	// Every chunk but the one current at the mark is reused.
	if reused < 8*slabChunkBytes/100 {
		t.Errorf("%d of %d buffers reused the released chunks", reused, 10*slabChunkBytes/100)
	}
}

func TestArenaNeverReusesMemoryNotReleased(t *testing.T) {
	var a Arena
	var kept [][]cdc.Value
	for i := range 5000 {
		row := a.Row(4)
		row[3] = cdc.Int(int64(i))
		kept = append(kept, row)
	}
	mark := a.Mark()
	for range 5000 { // released up to the mark only: the rows above stay
		kept = append(kept, a.Row(4))
		kept[len(kept)-1][3] = cdc.Int(-7)
	}
	a.Release(mark)
	for range 20000 {
		row := a.Row(4)
		if !row[3].IsNull() {
			t.Fatalf("handed out a row still in use: %v", row)
		}
		row[3] = cdc.Int(-1)
	}
	for i, row := range kept[5000:] {
		if row[3].Int != -7 {
			t.Fatalf("row %d taken after the mark was overwritten: %v", i, row)
		}
	}
}

// TestArenaReleasedByAnotherGoroutine is the pipeline's use: one goroutine
// fills batches, another reads them in order and releases each. Run with -race.
func TestArenaReleasedByAnotherGoroutine(t *testing.T) {
	type batch struct {
		n    int64
		rows [][]cdc.Value
		mark ArenaMark
	}
	var a Arena
	batches := make(chan batch, 4)
	go func() {
		for n := range int64(500) {
			b := batch{n: n}
			for range 200 {
				row := a.Row(5)
				for i := range row {
					row[i] = cdc.Int(n)
				}
				b.rows = append(b.rows, row)
			}
			b.mark = a.Mark()
			batches <- b
		}
		close(batches)
	}()
	for b := range batches {
		for _, row := range b.rows {
			for _, v := range row {
				if v.Int != b.n {
					t.Fatalf("batch %d holds %v: its memory was reused while in use", b.n, row)
				}
			}
		}
		a.Release(b.mark)
	}
}

func TestBatchMemoryReusesAReleasedBatch(t *testing.T) {
	var m BatchMemory
	changes := m.Changes(4)
	for i := range 3 {
		row := m.Row(2)
		row[0] = cdc.Int(int64(i))
		changes = append(changes, cdc.Change{Op: cdc.OpRead, After: row})
	}
	b := m.Batch(changes)
	if len(b.Changes) != 3 || b.Changes[2].After[0].Int != 2 {
		t.Fatalf("batch %v", b.Changes)
	}
	if again := m.Changes(4); unsafe.SliceData(again) == unsafe.SliceData(changes) {
		t.Fatal("a batch's changes were handed out again before it was released")
	}
	b.Release()
	again := m.Changes(4)
	if unsafe.SliceData(again) != unsafe.SliceData(changes) || len(again) != 0 {
		t.Fatalf("the released batch's slice was not reused (len %d)", len(again))
	}
	if changes[0].After != nil {
		t.Fatal("a released batch's changes still refer to their values")
	}
}

// A batch of wide rows is full at MaxBatchBytes of values, whatever its number
// of changes; the count starts again with the next batch.
func TestBatchMemoryIsFullAtMaxBatchBytes(t *testing.T) {
	var m BatchMemory
	const width = 100 << 10 // a 100 KiB document per row
	rows := 0
	for !m.Full() {
		m.Row(2)
		m.Copy(make([]byte, width))
		rows++
	}
	if want := MaxBatchBytes/width + 1; rows != want {
		t.Fatalf("full after %d rows of %d bytes, want %d", rows, width, want)
	}
	m.Batch(nil)
	if m.Full() {
		t.Fatal("full again right after the batch was made")
	}
}

// A released batch that held a buffer too large for a chunk drops its values'
// references to it: the chunk of values, reused much later, would otherwise
// keep hundreds of such buffers from the garbage collector.
func TestReleasedBatchDropsItsLargeBuffers(t *testing.T) {
	var m BatchMemory
	row := m.Row(2)
	row[0], row[1] = cdc.Int(1), cdc.String(m.Copy(make([]byte, 100<<10)))
	b := m.Batch(append(m.Changes(1), cdc.Change{Op: cdc.OpRead, After: row}))
	b.Release()
	if row[1].Bytes != nil {
		t.Fatal("the released batch's row still refers to its 100 KiB buffer")
	}
}
