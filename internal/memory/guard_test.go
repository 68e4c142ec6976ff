//go:build cdcguard

package memory

import (
	"runtime/debug"
	"testing"
	"unsafe"

	"github.com/cdc-dev/cdc"
)

var lastRead byte

// faults reads b[0], and reports whether the read faulted.
func faults(b []byte) (faulted bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() { faulted = recover() != nil }()
	lastRead = b[0]
	return false
}

func TestGuardFaultsOnBytesReadAfterRelease(t *testing.T) {
	var a Arena
	before := a.CopyString("released")
	mark := a.Mark()
	after := a.CopyString("kept")
	a.Release(mark)
	if !faults(before) {
		t.Error("bytes taken before the released mark are still readable")
	}
	if faults(after) || string(after) != "kept" {
		t.Errorf("bytes taken after the mark: %q", after)
	}
	big := a.Bytes(1 << 20) // larger than a chunk
	a.Release(a.Mark())
	if !faults(big) || !faults(after) {
		t.Error("bytes released by the second mark are still readable")
	}
}

func TestGuardPoisonsValuesAndChanges(t *testing.T) {
	var m BatchMemory
	row := m.Row(2)
	row[0], row[1] = cdc.Int(7), cdc.String(m.CopyString("x"))
	changes := append(m.Changes(1), cdc.Change{Table: &cdc.Table{}, Op: cdc.OpInsert, After: row})
	batch := m.Batch(changes)
	batch.Release()
	if row[0].Kind != poisonKind || !faults(row[0].Bytes) {
		t.Errorf("a released value is %v, want the poison", row[0])
	}
	table := unsafe.Slice((*byte)(unsafe.Pointer(changes[0].Table)), 1)
	if !faults(table) || changes[0].Op != cdc.Op(poisonKind) || !faults(changes[0].After[0].Bytes) {
		t.Errorf("a released change is %+v, want the poison", changes[0])
	}
	if next := m.Changes(1); cap(next) > 0 && &next[:1][0] == &changes[0] {
		t.Error("a released batch's changes are reused")
	}
}

func TestGuardPoisonsOtherElementsWithThePoison(t *testing.T) {
	s := Slab[string]{Poison: "released"}
	taken := s.Take(3)
	taken[0] = "live"
	s.Release(s.Mark())
	if taken[0] != "released" || taken[2] != "released" {
		t.Errorf("released elements %q, want the poison", taken)
	}
}
