package memory

import (
	"unsafe"

	"github.com/cdc-dev/cdc"
)

// A guarded build (go build -tags cdcguard) checks the promise every user of
// this package makes: that nothing reads memory after releasing it. Reused
// memory holds the next batch's data, so a read after release is a silent
// corruption in an ordinary build; in a guarded one, a slab never reuses a
// chunk, each Mark starts a new one so that a release covers exactly what was
// taken before it, and a chunk released is at once
//   - made unreadable if it holds bytes (mapped apart from the Go heap, then
//     protected): a read faults with the reader's stack;
//   - overwritten with a poison if it holds values, changes or records: a
//     value whose bytes are unreadable and whose kind no one knows, a change
//     whose table is unreadable, or the slab's Poison.
// `make test` runs part of the integration suite with a guarded daemon.

// poisonKind is the kind of a released value: no code knows it.
const poisonKind cdc.Kind = 0xdb

func (s *Slab[T]) guardedTake(n int) []T {
	s.guard.Lock()
	defer s.guard.Unlock()
	s.taken += n
	if s.cur == nil || cap(s.cur)-len(s.cur) < n {
		s.retire()
		s.cur = newChunk[T](max(s.chunkLen(), n))
		s.seq++
	}
	start := len(s.cur)
	s.cur = s.cur[:start+n]
	return s.cur[start : start+n : start+n]
}

// retire moves the current chunk to the full ones; the next Take carves a new one.
func (s *Slab[T]) retire() {
	if s.cur != nil {
		s.full = append(s.full, slabChunk[T]{seq: s.seq, data: s.cur})
		s.cur = nil
	}
}

func (s *Slab[T]) guardedMark() uint64 {
	s.guard.Lock()
	defer s.guard.Unlock()
	s.retire()
	return s.seq + 1 // every chunk carved so far is numbered below it
}

func (s *Slab[T]) guardedRelease(mark uint64) {
	s.guard.Lock()
	defer s.guard.Unlock()
	for len(s.full) > 0 && s.full[0].seq < mark {
		data := s.full[0].data
		s.full[0] = slabChunk[T]{}
		s.full = s.full[1:]
		s.poison(data[:cap(data)])
	}
}

func (s *Slab[T]) poison(data []T) {
	switch chunk := any(data).(type) {
	case []byte:
		protect(chunk)
	case []cdc.Value:
		for i := range chunk {
			chunk[i] = cdc.Value{Kind: poisonKind, Bytes: Poisoned()}
		}
	default:
		for i := range data {
			data[i] = s.Poison
		}
	}
}

// poisonChanges overwrites the changes of a released batch. Their table is
// unreadable memory: comparing it costs nothing, reading it faults (a nil
// table would pass unseen where it equals a nil last one).
func poisonChanges(changes []cdc.Change) {
	row := []cdc.Value{{Kind: poisonKind, Bytes: Poisoned()}}
	table := (*cdc.Table)(unsafe.Pointer(unsafe.SliceData(Poisoned())))
	for i := range changes {
		changes[i] = cdc.Change{Table: table, Op: cdc.Op(poisonKind), Before: row, After: row}
	}
}
