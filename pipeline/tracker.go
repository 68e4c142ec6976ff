package pipeline

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdc-dev/cdc"
)

// tracker turns acknowledgements that arrive in any order (records of different
// partitions) into the highest position before which everything is acknowledged.
type tracker struct {
	mu    sync.Mutex
	queue []*entry // in log order; queue[head:] are outstanding
	head  int
	done  cdc.Position
	// doneTime is the commit time of the last change before done, or when the
	// source sent the last progress marker before it.
	doneTime time.Time
	// doneTransaction is the progress of the transaction done lies inside (nil
	// if none: see cdc.Checkpoint.Transaction).
	doneTransaction *cdc.TransactionProgress
}

// entry is one batch: its records and the position the log stands at after it.
type entry struct {
	pos      cdc.Position
	pending  atomic.Int64 // records not acknowledged yet
	storeNow bool
	time     time.Time // see tracker.doneTime; zero for snapshot rows
	release  func()    // called once this entry and every one before it are acknowledged
	// transaction is the progress of the transaction pos lies inside.
	transaction *cdc.TransactionProgress
}

// add registers a batch of n records, whose changes are as of at, (n may be 0: a progress marker, or changes
// the mapping dropped). Entries must be added in log order. It reports whether
// a position asked to be stored at once is now acknowledged. release, if
// set, is called (under the tracker's lock) once the batch's records, and
// every record before them, are acknowledged: the entries' releases run in
// the order they were added.
func (t *tracker) add(pos cdc.Position, n int, storeNow bool, at time.Time, transaction *cdc.TransactionProgress, release func()) (*entry, bool) {
	e := &entry{pos: pos, storeNow: storeNow, time: at, release: release, transaction: transaction}
	e.pending.Store(int64(n))
	t.mu.Lock()
	t.queue = append(t.queue, e)
	urgent := t.advance()
	t.mu.Unlock()
	return e, urgent
}

// ack records that one record of e is acknowledged, and reports whether a
// position asked to be stored at once is now acknowledged.
func (t *tracker) ack(e *entry) bool {
	if e.pending.Add(-1) > 0 {
		return false // the lock is taken once a batch, not once a record
	}
	t.mu.Lock()
	urgent := t.advance()
	t.mu.Unlock()
	return urgent
}

func (t *tracker) advance() (urgent bool) {
	for t.head < len(t.queue) && t.queue[t.head].pending.Load() == 0 {
		// Snapshot rows have no position: they complete without moving it.
		if p := t.queue[t.head].pos; p != "" {
			t.done, t.doneTransaction = p, t.queue[t.head].transaction
		}
		if at := t.queue[t.head].time; !at.IsZero() {
			t.doneTime = at
		}
		urgent = urgent || t.queue[t.head].storeNow
		if release := t.queue[t.head].release; release != nil {
			release()
		}
		t.queue[t.head] = nil
		t.head++
	}
	if t.head > 1024 && t.head*2 > len(t.queue) {
		t.queue = append(t.queue[:0], t.queue[t.head:]...)
		t.head = 0
	}
	return urgent
}

// position returns the highest position before which everything is
// acknowledged, the time of its change (see doneTime), and the progress of the
// transaction it lies inside, if any.
func (t *tracker) position() (cdc.Position, time.Time, *cdc.TransactionProgress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done, t.doneTime, t.doneTransaction
}

// outstanding counts the batches not yet fully acknowledged.
func (t *tracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue) - t.head
}
