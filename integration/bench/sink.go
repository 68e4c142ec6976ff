package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cdc-dev/cdc/sink"
)

// sinkFloor produces n records of the bench's size (a 10-byte key, a 150-byte
// value, no headers) through cdc's own producer (same settings, batches of 1000) to a
// fresh topic: the rate the Kafka client allows whatever the source, which
// bounds every rate of the daemon.
func sinkFloor(ctx context.Context, brokers []string, n int) (float64, error) {
	k, err := sink.Dial(sink.Config{Brokers: brokers, ClientID: "bench-sink", Partitions: 3}, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, err
	}
	defer k.Close()
	if err := k.EnsureTopics([]string{"bench.sink"}); err != nil {
		return 0, err
	}
	p, err := k.NewProducer(sink.ProducerOptions{})
	if err != nil {
		return 0, err
	}
	value := make([]byte, 150)
	start := time.Now()
	var failed atomic.Pointer[error]
	acked := func(err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	// Batches of the daemon's size.
	records := make([]sink.Record, 0, 1000)
	for i := range n {
		key := strconv.AppendInt(make([]byte, 0, 10), int64(i), 10)
		records = append(records, sink.Record{Topic: "bench.sink", Key: key, Value: value})
		if len(records) == cap(records) || i == n-1 {
			if err := p.Send(ctx, records, acked); err != nil {
				return 0, err
			}
			records = make([]sink.Record, 0, 1000) // the producer keeps those sent until acknowledged
		}
	}
	p.Close()
	if err := failed.Load(); err != nil {
		return 0, fmt.Errorf("sink floor: %w", *err)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
