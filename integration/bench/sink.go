package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/cdc-dev/cdc/sink"
)

// sinkFloor produces n records of the bench's size (a 10-byte key, a 150-byte
// value, no headers) through cdc's own producer (sarama, same settings) to a
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
	p, err := k.NewProducer()
	if err != nil {
		return 0, err
	}
	value := make([]byte, 150)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		var first error
		for ack := range p.Acks() {
			if ack.Err != nil && first == nil {
				first = ack.Err
			}
		}
		done <- first
	}()
	for i := range n {
		key := strconv.AppendInt(make([]byte, 0, 10), int64(i), 10)
		if err := p.Send(ctx, sink.Record{Topic: "bench.sink", Key: key, Value: value}); err != nil {
			return 0, err
		}
	}
	p.Close()
	if err := <-done; err != nil {
		return 0, fmt.Errorf("sink floor: %w", err)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
