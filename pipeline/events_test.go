package pipeline

import (
	"testing"
	"time"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/metrics"
	"github.com/cdc-dev/cdc/sink"
)

func headerMap(t *testing.T, ev *events, rec mapping.Record) map[string]string {
	t.Helper()
	r := ev.record(&rec, 0, 0)
	out := map[string]string{}
	for _, h := range r.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

func TestEventIDsAreStableForTheSameChangeAndDistinctOtherwise(t *testing.T) {
	customer, order := &mapping.Entity{Name: "customer", Topic: "c"}, &mapping.Entity{Name: "order", Topic: "o"}
	commit := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	change := mapping.Record{Entity: customer, Op: cdc.OpUpdate, Key: []byte("k"), Value: []byte("v"), Position: "p1", CommitTime: commit}
	first := headerMap(t, newEvents("shop", "", metrics.New()), change)
	again := headerMap(t, newEvents("shop", "", metrics.New()), change) // after a restart
	if first["ce_id"] != again["ce_id"] || len(first["ce_id"]) != 32 {
		t.Fatalf("ids %q and %q for the same change", first["ce_id"], again["ce_id"])
	}
	want := map[string]string{"ce_specversion": "1.0", "ce_source": "/cdc/shop", "ce_type": "customer", "cdc_op": "u",
		"cdc_position": "p1", "ce_time": "2024-05-06T07:08:09.123456Z", "content-type": "application/avro"}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("%s = %q, want %q", k, first[k], v)
		}
	}

	ev := newEvents("shop", "", metrics.New())
	seen := map[string]string{}
	variants := map[string]mapping.Record{"same": change}
	other := change
	other.Seq = 1
	variants["next record of the change"] = other
	other = change
	other.Entity = order
	variants["other entity"] = other
	other = change
	other.Position = "p2"
	variants["other position"] = other
	snapshot := mapping.Record{Entity: customer, Op: cdc.OpRead, Key: []byte("k"), Value: []byte("v")}
	variants["snapshot row"] = snapshot
	if a, b := headerMap(t, newEvents("shop", "", metrics.New()), snapshot)["ce_id"], headerMap(t, newEvents("shop", "", metrics.New()), snapshot)["ce_id"]; a != b {
		t.Errorf("ids %q and %q for the same snapshot row", a, b)
	}
	snapshot.Value = []byte("w")
	variants["snapshot row, other value"] = snapshot
	snapshot.Key = []byte("k2")
	variants["snapshot row, other key"] = snapshot
	for name, rec := range variants {
		id := headerMap(t, ev, rec)["ce_id"]
		if prev, dup := seen[id]; dup {
			t.Errorf("%s and %s share id %s", name, prev, id)
		}
		seen[id] = name
	}
	if tomb := headerMap(t, ev, mapping.Record{Entity: customer, Op: cdc.OpDelete, Key: []byte("k")}); tomb["content-type"] != "" || tomb["cdc_op"] != "d" || tomb["ce_time"] != "" {
		t.Errorf("tombstone of a snapshot-less delete: %v", tomb)
	}
}

// BenchmarkEventRecord measures the per-record work between the mapping and
// the producer: CloudEvents headers and the record's id, for a streamed change
// and for a snapshot row (whose id covers its key and value), their memory
// reused a batch at a time as in the pipeline.
func BenchmarkEventRecord(b *testing.B) {
	entity := &mapping.Entity{Name: "item", Topic: "bench.item.v1"}
	value := make([]byte, 120)
	for name, rec := range map[string]mapping.Record{
		"change":   {Entity: entity, Op: cdc.OpUpdate, Key: []byte("k123456"), Value: value, Position: "00000001/2A3B4C5D:0000000007", CommitTime: time.Now()},
		"snapshot": {Entity: entity, Op: cdc.OpRead, Key: []byte("k123456"), Value: value},
	} {
		b.Run(name, func(b *testing.B) {
			ev := newEvents("bench", "", metrics.New())
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				_ = ev.record(&rec, 0, 0)
				if n++; n%1024 == 0 { // a batch, acknowledged at once
					ev.release(ev.mark())
				}
			}
		})
	}
}

// The compact header set leaves out what every record of a topic shares,
// and keeps what tells records apart.
func TestCompactHeadersLeaveOutWhatEveryRecordShares(t *testing.T) {
	customer := &mapping.Entity{Name: "customer", Topic: "c"}
	change := mapping.Record{Entity: customer, Op: cdc.OpUpdate, Key: []byte("k"), Value: []byte("v"), Position: "p1",
		CommitTime: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Transaction: "t1"}
	full := newEvents("shop", "", metrics.New())
	compact := newEvents("shop", "", metrics.New())
	compact.compact = true
	fullRecord, compactRecord := full.record(&change, 1, 1), compact.record(&change, 1, 1)
	got := map[string]string{}
	for _, h := range compactRecord.Headers {
		got[h.Key] = string(h.Value)
	}
	want := map[string]string{"ce_id": headerMap(t, full, change)["ce_id"], "ce_type": "customer", "cdc_op": "u", "cdc_position": "p1",
		"ce_time": "2024-05-06T07:08:09Z", "cdc_tx_id": "t1", "cdc_tx_index": "1", "cdc_tx_count": "1"}
	if len(got) != len(want) {
		t.Errorf("compact headers %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("compact %s = %q, want %q", k, got[k], v)
		}
	}
	t.Logf("a record of a 1-byte key and value: %d bytes with the full headers, %d compact", sink.RecordSize(&fullRecord), sink.RecordSize(&compactRecord))
}

// A record without a position (a snapshot row, an aggregate's) that follows
// a mark carries no position header and an id of its own: the position
// cached for the records before the mark must not stand in for its absence.
func TestARecordWithoutPositionAfterAMarkHasNone(t *testing.T) {
	customer := &mapping.Entity{Name: "customer", Topic: "c"}
	ev := newEvents("shop", "", metrics.New())
	headerMap(t, ev, mapping.Record{Entity: customer, Op: cdc.OpUpdate, Key: []byte("k"), Value: []byte("v"), Position: "p1"})
	ev.mark()
	unpositioned := mapping.Record{Entity: customer, Op: cdc.OpUpdate, Key: []byte("k"), Value: []byte("v")}
	got := headerMap(t, ev, unpositioned)
	if p, ok := got["cdc_position"]; ok {
		t.Errorf("cdc_position %q on a record without a position", p)
	}
	if want := headerMap(t, newEvents("shop", "", metrics.New()), unpositioned)["ce_id"]; got["ce_id"] != want {
		t.Errorf("ce_id %s, want %s: the id of a record without a position is its key's and value's", got["ce_id"], want)
	}
}
