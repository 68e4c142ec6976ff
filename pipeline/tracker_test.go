package pipeline

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/cdc-dev/cdc"
)

func TestPositionAdvancesOnlyOverContiguousAcks(t *testing.T) {
	var tr tracker
	a := tr.add("a", 2)
	b := tr.add("b", 1)
	c := tr.add("c", 1)
	tr.ack(b)
	tr.ack(c)
	if p := tr.position(); p != "" {
		t.Fatalf("position %q before the first batch is acknowledged", p)
	}
	tr.ack(a)
	if p := tr.position(); p != "" {
		t.Fatalf("position %q with one record of a outstanding", p)
	}
	tr.ack(a)
	if p := tr.position(); p != "c" {
		t.Fatalf("position %q, want c", p)
	}
}

func TestMarkersAndSnapshotRowsCompleteInOrder(t *testing.T) {
	var tr tracker
	rows := tr.add("", 2) // snapshot rows carry no position
	tr.add("end-of-snapshot", 0)
	if p := tr.position(); p != "" {
		t.Fatalf("marker stored before the rows before it: %q", p)
	}
	tr.ack(rows)
	tr.ack(rows)
	if p := tr.position(); p != "end-of-snapshot" {
		t.Fatalf("position %q", p)
	}
	tr.add("heartbeat", 0)
	if p := tr.position(); p != "heartbeat" {
		t.Fatalf("an idle marker should be stored at once, position %q", p)
	}
}

func TestRandomAckOrderNeverPassesAnOutstandingBatch(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	var tr tracker
	var entries []*entry
	var pending []*entry
	for i := 0; i < 5000; i++ {
		n := rng.Intn(3)
		e := tr.add(cdc.Position(fmt.Sprintf("%08d", i)), n)
		entries = append(entries, e)
		for j := 0; j < n; j++ {
			pending = append(pending, e)
		}
	}
	rng.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
	complete := 0 // entries[:complete] are fully acknowledged
	for _, e := range pending {
		tr.ack(e)
		for complete < len(entries) && entries[complete].pending == 0 {
			complete++
		}
		want := cdc.Position("")
		if complete > 0 {
			want = entries[complete-1].pos
		}
		if got := tr.position(); got != want {
			t.Fatalf("position %q, want %q (first outstanding batch %d)", got, want, complete)
		}
	}
	if tr.outstanding() != 0 || complete != len(entries) {
		t.Fatalf("%d outstanding after every ack", tr.outstanding())
	}
}
