package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdc-dev/cdc/integration/harness"
)

// latency commits inserts of perTx rows at rate rows per second for
// b.duration, the ids from firstID on, and measures, per row, from the moment
// its commit returned to the moment its record could be read from the broker
// (a consumer whose fetches wait at most 10 ms, the client's minimum; kfake
// answers as soon as data arrives). achieved is in rows per second.
func (b *bench) latency(ctx context.Context, db database, brokers []string, d *harness.Daemon, firstID int64, rate, perTx int) (p50, p99 time.Duration, achieved float64, err error) {
	total := rate * int(b.duration/time.Second) / perTx * perTx
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(benchTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		return 0, 0, 0, err
	}
	defer client.Close()
	joined, cancel := context.WithTimeout(ctx, time.Second)
	client.PollRecords(joined, 1) // find the partitions' ends before the first insert
	cancel()

	var mu sync.Mutex
	arrived := map[int64]time.Time{}
	consumeCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for consumeCtx.Err() == nil {
			fetches := client.PollFetches(consumeCtx)
			now := time.Now()
			mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) {
				// Single-object framing (10 bytes), then the id: a zig-zag varint.
				if id, n := binary.Varint(r.Key[10:]); n > 0 && id >= firstID {
					arrived[id] = now
				}
			})
			mu.Unlock()
		}
	}()

	committed := make([]time.Time, total)
	interval := time.Second * time.Duration(perTx) / time.Duration(rate)
	start := time.Now()
	for i := 0; i < total; i += perTx {
		time.Sleep(time.Until(start.Add(time.Duration(i/perTx) * interval)))
		if err := db.insertRows(ctx, firstID+int64(i), perTx); err != nil {
			return 0, 0, 0, err
		}
		now := time.Now()
		for j := range perTx {
			committed[i+j] = now
		}
	}
	achieved = float64(total) / time.Since(start).Seconds()
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(arrived)
		mu.Unlock()
		if n >= total {
			break
		}
		if time.Now().After(deadline) || d.Exited() {
			return 0, 0, 0, fmt.Errorf("%d of %d latency records arrived\n%s", n, total, d.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	lat := make([]time.Duration, total)
	for i, c := range committed {
		lat[i] = max(arrived[firstID+int64(i)].Sub(c), 0)
	}
	slices.Sort(lat)
	return lat[total/2], lat[total*99/100], achieved, nil
}
