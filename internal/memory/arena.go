// Package memory hands out the memory rows are decoded into, and takes it back
// in bulk once the consumer has released it: sources decode into it, the
// pipeline encodes records into it.
package memory

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cdc-dev/cdc"
)

// Arena hands out rows of values and byte buffers carved from larger chunks,
// so that decoding a batch of rows costs no allocation once the arena is warm.
// Memory taken from it is returned in bulk: Mark notes how far the arena has
// handed out, and Release(mark), once nothing refers any more to what was
// handed out before the mark, lets it reuse those chunks. An arena that is
// never released works too: the garbage collector frees its chunks.
//
// The zero Arena is ready. Row, Bytes, Copy, CopyString and Mark are called
// from one goroutine; Release from any.
type Arena struct {
	values Slab[cdc.Value]
	bytes  Slab[byte]
}

// ArenaMark is how far an arena had handed out memory; see Arena.Release.
type ArenaMark struct{ values, bytes uint64 }

// Row returns n NULL values.
func (a *Arena) Row(n int) []cdc.Value { return a.values.Take(n) }

// Bytes returns a buffer of n zero bytes.
func (a *Arena) Bytes(n int) []byte { return a.bytes.Take(n) }

// handedOut is how many bytes of values and buffers the arena has handed out,
// and how many buffers were too large for a chunk.
func (a *Arena) handedOut() (size int, ownBuffers uint64) {
	return a.values.taken*a.values.elemSize() + a.bytes.taken, a.bytes.own
}

// Copy returns a copy of b carved from the arena.
func (a *Arena) Copy(b []byte) []byte {
	out := a.Bytes(len(b))
	copy(out, b)
	return out
}

// CopyString returns the bytes of s carved from the arena.
func (a *Arena) CopyString(s string) []byte {
	out := a.Bytes(len(s))
	copy(out, s)
	return out
}

// Mark returns how far the arena has handed out memory.
func (a *Arena) Mark() ArenaMark { return ArenaMark{values: a.values.Mark(), bytes: a.bytes.Mark()} }

// Release lets the arena reuse the memory handed out before m. The caller
// promises that nothing reads or writes that memory any more; marks are
// released in the order they were taken (a release covers the earlier ones).
func (a *Arena) Release(m ArenaMark) {
	a.values.Release(m.values)
	a.bytes.Release(m.bytes)
}

// Slab carves slices of T from chunks, and reuses a chunk once everything
// carved from it has been released (see Arena, which is two of them). A
// request above an eighth of a chunk gets a slice of its own, which the
// garbage collector frees. The zero Slab is ready; Take and Mark are called
// from one goroutine, Release from any.
type Slab[T any] struct {
	// ChunkLen is the number of elements of a chunk; 0 is as many as fit in
	// 64 KiB.
	ChunkLen int
	// Poison is what each element released becomes in a guarded build (see
	// Guarded): a value its users refuse loudly. Values and bytes are
	// poisoned by the slab itself.
	Poison T

	cur []T    // the chunk being carved; len is what was taken
	seq uint64 // cur's number; chunks are numbered from 1 in the order they are carved
	// full holds the chunks carved before cur that may still be referred to,
	// oldest first; free the chunks ready for reuse, zeroed.
	full []slabChunk[T]
	free [][]T
	// released: chunks numbered below it are no longer referred to.
	released atomic.Uint64
	// taken counts the elements handed out, own the requests that got a
	// slice of their own.
	taken int
	own   uint64
	// guard serializes a guarded build's slab, which releases chunks as soon
	// as it is told (see guard.go).
	guard sync.Mutex
}

type slabChunk[T any] struct {
	seq  uint64
	data []T
}

const (
	slabChunkBytes = 64 << 10
	// slabKeepBytes bounds the chunks a slab keeps for reuse (carved and not
	// released yet, or released and not reused yet); beyond it, a chunk is
	// left to the garbage collector. It is far above what a pipeline holds in
	// flight, and bounds what a slab that is never released holds on to.
	slabKeepBytes = 16 << 20
)

// chunkLen is the number of elements of a chunk.
func (s *Slab[T]) chunkLen() int {
	if s.ChunkLen > 0 {
		return s.ChunkLen
	}
	return max(slabChunkBytes/s.elemSize(), 64)
}

func (s *Slab[T]) elemSize() int {
	var zero T
	return int(max(unsafe.Sizeof(zero), 1))
}

// Take returns n zero elements; never nil, even for n = 0 (a COPY field's
// empty string is not its NULL).
func (s *Slab[T]) Take(n int) []T {
	if Guarded {
		return s.guardedTake(n)
	}
	s.taken += n
	if cap(s.cur)-len(s.cur) < n || s.cur == nil {
		size := s.chunkLen()
		if n > size/8 {
			s.own++
			return make([]T, n)
		}
		s.next(size)
	}
	start := len(s.cur)
	s.cur = s.cur[:start+n]
	return s.cur[start : start+n : start+n]
}

// next makes a new chunk current: a released one if there is one.
func (s *Slab[T]) next(size int) {
	if s.cur != nil {
		s.full = append(s.full, slabChunk[T]{seq: s.seq, data: s.cur})
	}
	keep := max(slabKeepBytes/(size*s.elemSize()), 2)
	released := s.released.Load()
	for len(s.full) > 0 && (s.full[0].seq < released || len(s.full) > keep) {
		c := s.full[0]
		s.full[0] = slabChunk[T]{}
		s.full = s.full[1:]
		if c.seq < released && len(s.full)+len(s.free) < keep {
			clear(c.data[:cap(c.data)])
			s.free = append(s.free, c.data[:0])
		}
	}
	if n := len(s.free); n > 0 {
		s.cur, s.free[n-1] = s.free[n-1], nil
		s.free = s.free[:n-1]
	} else {
		s.cur = make([]T, 0, size)
	}
	s.seq++
}

// Mark returns how far the slab has handed out memory.
func (s *Slab[T]) Mark() uint64 {
	if Guarded {
		return s.guardedMark()
	}
	return s.seq
}

// Release lets the slab reuse the chunks carved before the one that was
// current at mark. Everything taken before the mark must no longer be used.
func (s *Slab[T]) Release(mark uint64) {
	if Guarded {
		s.guardedRelease(mark)
		return
	}
	for {
		old := s.released.Load()
		if mark <= old || s.released.CompareAndSwap(old, mark) {
			return
		}
	}
}

// BatchMemory is what a source builds its batches in: the slices of their
// changes and an arena for their values, both reused once the consumer has
// released a batch (Batch.Release). The zero BatchMemory is ready; it is used
// from one goroutine, the releases excepted.
type BatchMemory struct {
	Arena
	spare chan []cdc.Change
	// batchStart and batchOwnBuffers are the arena's handedOut when the last
	// batch was made.
	batchStart      int
	batchOwnBuffers uint64
}

// MaxBatchBytes ends a batch before its number of changes is reached: with
// wide rows (documents, blobs), a batch of a thousand rows would hold
// hundreds of megabytes, and the pipeline holds several batches at a time.
const MaxBatchBytes = 4 << 20

// Full says whether the values decoded since the last batch reached
// MaxBatchBytes, so that the batch being filled should be sent now.
func (m *BatchMemory) Full() bool {
	size, _ := m.handedOut()
	return size-m.batchStart >= MaxBatchBytes
}

// spareBatches bounds the change slices kept for reuse: the pipeline holds a
// few batches between source and mapping (its channel, one being filled, one
// being mapped).
const spareBatches = 8

func (m *BatchMemory) spares() chan []cdc.Change {
	if m.spare == nil {
		m.spare = make(chan []cdc.Change, spareBatches)
	}
	return m.spare
}

// Changes returns an empty slice for a batch's changes: a released one, or
// else a new one of capacity n.
func (m *BatchMemory) Changes(n int) []cdc.Change {
	select {
	case changes := <-m.spares():
		return changes
	default:
		return make([]cdc.Change, 0, n)
	}
}

// Batch returns a batch of the changes whose Release gives their memory back
// for reuse: the slice, and everything the arena has handed out so far.
func (m *BatchMemory) Batch(changes []cdc.Change) cdc.Batch {
	mark, spare := m.Mark(), m.spares()
	size, ownBuffers := m.handedOut()
	large := ownBuffers > m.batchOwnBuffers
	m.batchStart, m.batchOwnBuffers = size, ownBuffers
	return cdc.NewBatch(changes, func() {
		if Guarded {
			poisonChanges(changes[:cap(changes)])
			m.Release(mark)
			return // never reused
		}
		if large {
			// A buffer too large for a chunk is the garbage collector's to
			// free, but the chunk of values referring to it lives on until
			// reused: hundreds of rows, hundreds of megabytes of documents.
			for _, c := range changes {
				clear(c.Before)
				clear(c.After)
			}
		}
		m.Release(mark)
		if cap(changes) == 0 {
			return // a progress marker
		}
		clear(changes) // drop what they refer to
		select {
		case spare <- changes[:0]:
		default:
		}
	})
}
