package pipeline

import (
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/cdc-dev/cdc"
)

func TestPositionAdvancesOnlyOverContiguousAcks(t *testing.T) {
	var tr tracker
	a, _ := tr.add("a", 2, false, time.Time{}, nil, nil)
	b, _ := tr.add("b", 1, false, time.Time{}, nil, nil)
	c, _ := tr.add("c", 1, false, time.Time{}, nil, nil)
	tr.ack(b)
	tr.ack(c)
	if p := pos(&tr); p != "" {
		t.Fatalf("position %q before the first batch is acknowledged", p)
	}
	tr.ack(a)
	if p := pos(&tr); p != "" {
		t.Fatalf("position %q with one record of a outstanding", p)
	}
	tr.ack(a)
	if p := pos(&tr); p != "c" {
		t.Fatalf("position %q, want c", p)
	}
}

// A batch's memory is reused once its records, and every record before
// them, are acknowledged: releases come in the order the batches were added.
func TestBatchesReleasedInOrderOnceEverythingBeforeIsAcknowledged(t *testing.T) {
	var tr tracker
	var released []string
	release := func(name string) func() { return func() { released = append(released, name) } }
	a, _ := tr.add("a", 2, false, time.Time{}, nil, release("a"))
	b, _ := tr.add("b", 1, false, time.Time{}, nil, release("b"))
	tr.add("marker", 0, false, time.Time{}, nil, release("marker"))
	c, _ := tr.add("c", 1, false, time.Time{}, nil, release("c"))
	tr.ack(c)
	tr.ack(b)
	tr.ack(a)
	if len(released) != 0 {
		t.Fatalf("released %v with a record of the first batch outstanding", released)
	}
	tr.ack(a)
	if want := []string{"a", "b", "marker", "c"}; fmt.Sprint(released) != fmt.Sprint(want) {
		t.Fatalf("released %v, want %v", released, want)
	}
}

func TestMarkersAndSnapshotRowsCompleteInOrder(t *testing.T) {
	var tr tracker
	rows, _ := tr.add("", 2, false, time.Time{}, nil, nil) // snapshot rows carry no position
	if _, urgent := tr.add("end-of-snapshot", 0, true, time.Time{}, nil, nil); urgent {
		t.Fatal("a marker to store at once is reported done before the rows before it")
	}
	if p := pos(&tr); p != "" {
		t.Fatalf("marker stored before the rows before it: %q", p)
	}
	if tr.ack(rows) {
		t.Fatal("reported done with a row outstanding")
	}
	if !tr.ack(rows) {
		t.Fatal("the marker to store at once is not reported once acknowledged")
	}
	if p := pos(&tr); p != "end-of-snapshot" {
		t.Fatalf("position %q", p)
	}
	if _, urgent := tr.add("heartbeat", 0, false, time.Time{}, nil, nil); urgent {
		t.Fatal("an ordinary marker is reported as one to store at once")
	}
	if p := pos(&tr); p != "heartbeat" {
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
		e, _ := tr.add(cdc.Position(fmt.Sprintf("%08d", i)), n, false, time.Time{}, nil, nil)
		entries = append(entries, e)
		for j := 0; j < n; j++ {
			pending = append(pending, e)
		}
	}
	rng.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
	complete := 0 // entries[:complete] are fully acknowledged
	for _, e := range pending {
		tr.ack(e)
		for complete < len(entries) && entries[complete].pending.Load() == 0 {
			complete++
		}
		want := cdc.Position("")
		if complete > 0 {
			want = entries[complete-1].pos
		}
		if got := pos(&tr); got != want {
			t.Fatalf("position %q, want %q (first outstanding batch %d)", got, want, complete)
		}
	}
	if tr.outstanding() != 0 || complete != len(entries) {
		t.Fatalf("%d outstanding after every ack", tr.outstanding())
	}
}

func pos(tr *tracker) cdc.Position {
	p, _, _ := tr.position()
	return p
}

// Acknowledgements come from the client's goroutines at once: every batch is
// released once, in order, and the position ends at the last one. Run with -race.
func TestConcurrentAcksReleaseEveryBatchInOrder(t *testing.T) {
	var tr tracker
	var released []int
	var records []*entry
	for i := range 2000 {
		e, _ := tr.add(cdc.Position(fmt.Sprintf("%08d", i)), 1+i%3, false, time.Time{}, nil, func() { released = append(released, i) })
		for range 1 + i%3 {
			records = append(records, e)
		}
	}
	rand.New(rand.NewSource(3)).Shuffle(len(records), func(i, j int) { records[i], records[j] = records[j], records[i] })
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(records); i += 4 {
				tr.ack(records[i])
			}
		})
	}
	wg.Wait()
	if got := pos(&tr); got != "00001999" {
		t.Fatalf("position %q after every ack", got)
	}
	for i, n := range released {
		if n != i {
			t.Fatalf("batch %d released %dth", n, i)
		}
	}
	if len(released) != 2000 {
		t.Fatalf("%d of 2000 batches released", len(released))
	}
}
