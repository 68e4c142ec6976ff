package postgres

import (
	"fmt"
	"os"
	"slices"
	"testing"
)

// A held transaction gives back its messages in order, whether held in memory
// or, past the limit, on disk, without those of its aborted subtransactions
// but their relation messages; dropping it frees what it counted. The oldest
// held bounds the stream's heartbeats.
func TestHeldTransactionsReplayInOrderAcrossMemoryAndDisk(t *testing.T) {
	dir := t.TempDir()
	var held heldBytes
	var spilled []uint32
	ts := newStreamedTransactions(100, dir, &held, func(xid uint32) { spilled = append(spilled, xid) })
	const top, sub = 10, 11
	tx := ts.start(top, true, 100)
	var want []string
	for i := range 20 {
		subxid, kind := uint32(top), byte('I')
		switch {
		case i%4 == 1:
			subxid = sub
		case i%4 == 2:
			subxid, kind = sub, 'R'
		}
		body := fmt.Sprintf("message %d", i)
		if err := ts.hold(top, tx, subxid, kind, []byte(body)); err != nil {
			t.Fatal(err)
		}
		if subxid != sub || kind == 'R' {
			want = append(want, string(kind)+body)
		}
		if i == 5 {
			// Another transaction between two blocks of this one.
			if err := ts.hold(20, ts.start(20, true, 200), 20, 'I', []byte("other")); err != nil {
				t.Fatal(err)
			}
		}
	}
	ts.abort(top, sub)
	if oldest := ts.oldest(); oldest != 100 {
		t.Fatalf("oldest held LSN %s, want the first change of the older transaction", oldest)
	}
	// Five messages fill the 100 bytes: the sixth and the other
	// transaction's go to disk.
	if !slices.Equal(spilled, []uint32{top, 20}) {
		t.Fatalf("transactions that went to disk: %v, want [%d 20]", spilled, top)
	}
	memory, disk := held.memory.Load(), held.disk.Load()
	if memory == 0 || memory > 100 || disk == 0 {
		t.Fatalf("held %d bytes in memory and %d on disk, want both, at most 100 in memory", memory, disk)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("%d files in the spill directory: they must be unlinked at once", len(entries))
	}
	var got []string
	err := tx.replay(func(msg []byte) error {
		got = append(got, string(msg))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("replayed\n%q\nwant\n%q", got, want)
	}
	ts.drop(top)
	if oldest := ts.oldest(); oldest != 200 {
		t.Fatalf("oldest held LSN %s once the older transaction is gone, want 200", oldest)
	}
	ts.abort(20, 20)
	ts.abort(30, 30) // a transaction not held: streamed before a restart
	if m, d := held.memory.Load(), held.disk.Load(); m != 0 || d != 0 || len(ts.byXid) != 0 {
		t.Fatalf("after drop: %d bytes in memory, %d on disk, %d transactions", m, d, len(ts.byXid))
	}
}
