package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
	"github.com/cdc-dev/cdc/sink"
)

// sinkFloor produces the records the daemon's snapshot wrote (keys, values
// and headers read back from its topic) again, through cdc's own producer
// (same settings, batches of 1000), to a fresh topic: what the Kafka client
// and the broker cost for these very records, without database or mapping,
// which bounds every rate of the daemon. Their CloudEvents headers make up
// nearly half of their bytes.
func sinkFloor(ctx context.Context, brokers []string, compression string) (float64, cpuUse, error) {
	written, err := harness.ReadTopic(ctx, brokers, benchTopic)
	if err != nil {
		return 0, cpuUse{}, err
	}
	k, err := sink.Dial(ctx, sink.Config{Brokers: brokers, ClientID: "bench-sink", Partitions: 3, Compression: compression}, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, cpuUse{}, err
	}
	defer k.Close()
	if err := k.EnsureTopics([]string{"bench.sink"}); err != nil {
		return 0, cpuUse{}, err
	}
	p, err := k.NewProducer(sink.ProducerOptions{})
	if err != nil {
		return 0, cpuUse{}, err
	}
	kept := keepRecords(written)
	runtime.GC() // what reading left is not counted
	start := time.Now()
	cpu := startCPU(0)
	var failed atomic.Pointer[error]
	acked := func(err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	for from := 0; from < len(kept.records); from += sinkFloorBatch {
		if err := p.Send(ctx, kept.batch(from, sinkFloorBatch), acked); err != nil {
			return 0, cpuUse{}, err
		}
	}
	p.Close()
	if err := failed.Load(); err != nil {
		return 0, cpuUse{}, fmt.Errorf("sink floor: %w", *err)
	}
	rate := float64(len(kept.records)) / time.Since(start).Seconds()
	return rate, cpu.stop(len(kept.records)), nil
}

// sinkFloorBatch is how many records the floor sends at a time.
const sinkFloorBatch = 1000

// keptRecords holds records read back in memory the garbage collector need
// not scan (bytes and offsets, no pointers), so that the floor's producer is
// not slowed by a collector marking a million records: the daemon's own
// records live only until they are acknowledged.
type keptRecords struct {
	data       []byte
	headerKeys []string
	headers    []keptHeader
	records    []keptRecord
}

type keptRecord struct{ key, value, headers span } // headers: in keptRecords.headers

type keptHeader struct {
	key   int // in headerKeys
	value span
}

type span struct{ from, to int }

func keepRecords(read []harness.Record) *keptRecords {
	k := &keptRecords{records: make([]keptRecord, len(read))}
	keep := func(b []byte) span {
		k.data = append(k.data, b...)
		return span{len(k.data) - len(b), len(k.data)}
	}
	for i, r := range read {
		kr := &k.records[i]
		kr.key, kr.value = keep(r.Key), keep(r.Value)
		kr.headers.from = len(k.headers)
		for _, name := range slices.Sorted(maps.Keys(r.Headers)) {
			at := slices.Index(k.headerKeys, name)
			if at < 0 {
				at, k.headerKeys = len(k.headerKeys), append(k.headerKeys, name)
			}
			k.headers = append(k.headers, keptHeader{key: at, value: keep([]byte(r.Headers[name]))})
		}
		kr.headers.to = len(k.headers)
	}
	return k
}

// batch builds the records from..from+n: new memory, which the producer keeps
// until they are acknowledged.
func (k *keptRecords) batch(from, n int) []sink.Record {
	kept := k.records[from:min(from+n, len(k.records))]
	records := make([]sink.Record, len(kept))
	headers := make([]sink.Header, 0, len(kept)*len(k.headerKeys))
	bytes := func(s span) []byte { return k.data[s.from:s.to:s.to] }
	for i, kr := range kept {
		at := len(headers)
		for _, h := range k.headers[kr.headers.from:kr.headers.to] {
			headers = append(headers, sink.Header{Key: k.headerKeys[h.key], Value: bytes(h.value)})
		}
		records[i] = sink.Record{Topic: "bench.sink", Key: bytes(kr.key), Value: bytes(kr.value), Headers: headers[at:len(headers):len(headers)]}
	}
	return records
}
