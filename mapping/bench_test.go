package mapping

import (
	"testing"

	"github.com/cdc-dev/cdc"
)

// BenchmarkMapInsert measures the per-event hot path of the mapping: one insert of
// a seven-field customer into an encoded key and value (allocations per event are
// the figure to watch).
func BenchmarkMapInsert(b *testing.B) {
	e := customerEntity(b)
	e.KeyHeader, e.ValueHeader = make([]byte, 10), make([]byte, 10)
	p, err := Compile(e, customerTable())
	if err != nil {
		b.Fatal(err)
	}
	ch := &cdc.Change{Op: cdc.OpInsert, After: customerRow(42, "ada@example.com", "-1234.50")}
	out := make([]Record, 0, 2)
	b.ReportAllocs()
	for b.Loop() {
		if out, err = p.Map(ch, out[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapHiddenOnlyUpdate measures the cost of deciding that an update changed
// nothing the entity shows.
func BenchmarkMapHiddenOnlyUpdate(b *testing.B) {
	p, err := Compile(customerEntity(b), customerTable())
	if err != nil {
		b.Fatal(err)
	}
	before, after := customerRow(1, "a@x", "1.00"), customerRow(1, "a@x", "1.00")
	after[7] = cdc.String([]byte("new-secret"))
	ch := &cdc.Change{Op: cdc.OpUpdate, Before: before, After: after}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Map(ch, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapVisibleUpdate measures an update of a mapped column: the key is
// compared by value, so only the new key and value are encoded.
func BenchmarkMapVisibleUpdate(b *testing.B) {
	p, err := Compile(customerEntity(b), customerTable())
	if err != nil {
		b.Fatal(err)
	}
	ch := &cdc.Change{Op: cdc.OpUpdate, Before: customerRow(1, "a@x", "1.00"), After: customerRow(1, "b@x", "1.00")}
	out := make([]Record, 0, 2)
	b.ReportAllocs()
	for b.Loop() {
		if out, err = p.Map(ch, out[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapInsertWithRules measures an insert through the richer rules: three
// CEL expressions, an enum map, a nested record, a hash mask, a redaction, and a
// where filter. Compare with BenchmarkMapInsert: the difference is what rules cost.
func BenchmarkMapInsertWithRules(b *testing.B) {
	e := personEntity(b)
	e.Where = Condition{Expr: "store_id == 1"}
	e.KeyHeader, e.ValueHeader = make([]byte, 10), make([]byte, 10)
	p, err := Compile(e, personTable())
	if err != nil {
		b.Fatal(err)
	}
	ch := &cdc.Change{Op: cdc.OpInsert, After: personRow()}
	out := make([]Record, 0, 2)
	b.ReportAllocs()
	for b.Loop() {
		if out, err = p.Map(ch, out[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
