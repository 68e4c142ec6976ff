package pipeline

import (
	"sync"

	"github.com/cdc-dev/cdc"
)

// tracker turns acknowledgements that arrive in any order (records of different
// partitions) into the highest position before which everything is acknowledged.
type tracker struct {
	mu    sync.Mutex
	queue []*entry // in log order; queue[head:] are outstanding
	head  int
	done  cdc.Position
}

// entry is one batch: its records and the position the log stands at after it.
type entry struct {
	pos     cdc.Position
	pending int
}

// add registers a batch of n records (n may be 0: a progress marker, or changes
// the mapping dropped). Entries must be added in log order.
func (t *tracker) add(pos cdc.Position, n int) *entry {
	e := &entry{pos: pos, pending: n}
	t.mu.Lock()
	t.queue = append(t.queue, e)
	t.advance()
	t.mu.Unlock()
	return e
}

// ack records that one record of e is acknowledged.
func (t *tracker) ack(e *entry) {
	t.mu.Lock()
	e.pending--
	t.advance()
	t.mu.Unlock()
}

func (t *tracker) advance() {
	for t.head < len(t.queue) && t.queue[t.head].pending == 0 {
		// Snapshot rows have no position: they complete without moving it.
		if p := t.queue[t.head].pos; p != "" {
			t.done = p
		}
		t.queue[t.head] = nil
		t.head++
	}
	if t.head > 1024 && t.head*2 > len(t.queue) {
		t.queue = append(t.queue[:0], t.queue[t.head:]...)
		t.head = 0
	}
}

// position returns the highest position before which everything is acknowledged.
func (t *tracker) position() cdc.Position {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}

// outstanding counts the batches not yet fully acknowledged.
func (t *tracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue) - t.head
}
