package mapping

import (
	"testing"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// benchMap maps ch over and over, its records carved from an arena released
// a batch at a time, as the pipeline does.
func benchMap(b *testing.B, p *Plan, ch *cdc.Change) {
	var arena memory.Arena
	out := make([]Record, 0, 2)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		var err error
		if out, err = p.Map(ch, out[:0], &arena); err != nil {
			b.Fatal(err)
		}
		if n++; n%1024 == 0 {
			arena.Release(arena.Mark())
		}
	}
}

// BenchmarkMapInsert measures the per-event hot path of the mapping: one insert of
// a seven-field customer into an encoded key and value (allocations per event are
// the figure to watch).
func BenchmarkMapInsert(b *testing.B) {
	e := customerEntity(b)
	p, err := Compile(e, customerTable(), Framing{Key: make([]byte, 10), Value: make([]byte, 10)})
	if err != nil {
		b.Fatal(err)
	}
	benchMap(b, p, &cdc.Change{Op: cdc.OpInsert, After: customerRow(42, "ada@example.com", "-1234.50")})
}

// BenchmarkMapHiddenOnlyUpdate measures the cost of deciding that an update changed
// nothing the entity shows.
func BenchmarkMapHiddenOnlyUpdate(b *testing.B) {
	p, err := Compile(customerEntity(b), customerTable(), Framing{})
	if err != nil {
		b.Fatal(err)
	}
	before, after := customerRow(1, "a@x", "1.00"), customerRow(1, "a@x", "1.00")
	after[7] = cdc.String([]byte("new-secret"))
	benchMap(b, p, &cdc.Change{Op: cdc.OpUpdate, Before: before, After: after})
}

// BenchmarkMapVisibleUpdate measures an update of a mapped column: the key is
// compared by value, so only the new key and value are encoded.
func BenchmarkMapVisibleUpdate(b *testing.B) {
	p, err := Compile(customerEntity(b), customerTable(), Framing{})
	if err != nil {
		b.Fatal(err)
	}
	benchMap(b, p, &cdc.Change{Op: cdc.OpUpdate, Before: customerRow(1, "a@x", "1.00"), After: customerRow(1, "b@x", "1.00")})
}

// BenchmarkMapInsertWithRules measures an insert through the richer rules: three
// CEL expressions, an enum map, a nested record, a hash mask, a redaction, and a
// where filter. Compare with BenchmarkMapInsert: the difference is what rules cost.
func BenchmarkMapInsertWithRules(b *testing.B) {
	e := personEntity(b)
	e.Where = Condition{Expr: "store_id == 1"}
	p, err := Compile(e, personTable(), Framing{Key: make([]byte, 10), Value: make([]byte, 10)})
	if err != nil {
		b.Fatal(err)
	}
	benchMap(b, p, &cdc.Change{Op: cdc.OpInsert, After: personRow()})
}

// BenchmarkMapOutboxInsert measures an outbox row whose JSON payload (an
// order of six fields and one line) is encoded with its route's schema, beside
// BenchmarkMapInsert's table row of seven columns.
func BenchmarkMapOutboxInsert(b *testing.B) {
	p, err := Compile(outboxEntitiesFor(b)[0], outboxTable(), Framing{Key: make([]byte, 10), Value: make([]byte, 10)})
	if err != nil {
		b.Fatal(err)
	}
	benchMap(b, p, &cdc.Change{Op: cdc.OpInsert, After: outboxRow("Order", "order-42", placed)})
}
