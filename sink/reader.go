package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Message is one record read back from a topic.
type Message struct {
	Partition  int32
	Offset     int64
	Key, Value []byte // Value nil: a tombstone
	Timestamp  time.Time
	Headers    []Header
}

// fetchMaxBytes bounds what one fetch of ReadTopic brings (compressed).
const fetchMaxBytes = 1 << 20

// readStallWarning is how long ReadTopic waits for a record it knows exists
// before it says so: it goes on waiting (a read that ended early would load
// an older checkpoint), but the operator learns why nothing happens.
var readStallWarning = 30 * time.Second

// ReadTopic calls fn for every record of the topic, partition by partition in
// offset order, from the oldest retained record up to the end each partition had
// when ReadTopic started; with follow it goes on reading until ctx ends. fn runs
// in one goroutine at a time.
//
// Only committed records are read: records of transactions that were aborted
// (an exactly-once connector killed mid-transaction) never are, and the end of
// a partition is its last stable offset, so that an open transaction is not
// waited for. The transactions' markers are read too, only to see where a
// partition ends: a partition whose last offset is a marker would never
// seem to end.
func (k *Kafka) ReadTopic(ctx context.Context, topic string, follow bool, fn func(Message) error) error {
	client, err := kgo.NewClient(k.clientOptions(
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		// Small fetches, one at a time: reading stays at a few tens of megabytes
		// whatever the topic's size (cdc verify of a million records: 18 MB of
		// heap in use with 1 MB fetches, 135 MB with 4 MB ones).
		kgo.FetchMaxBytes(fetchMaxBytes), kgo.FetchMaxPartitionBytes(fetchMaxBytes), kgo.MaxConcurrentFetches(1))...)
	if err != nil {
		return fmt.Errorf("read topic %s: %w", topic, err)
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	starts, err := admin.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("read topic %s: %w", topic, err)
	}
	ends, err := admin.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("read topic %s: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	until := map[int32]int64{} // partitions still to read, and where they end
	starts.Each(func(o kadm.ListedOffset) {
		from[o.Partition] = kgo.NewOffset().At(o.Offset)
		if end, ok := ends.Lookup(topic, o.Partition); ok && end.Offset > o.Offset {
			until[o.Partition] = end.Offset
		}
	})
	if !follow && len(until) == 0 {
		return nil
	}
	client.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: from})
	read := map[int32]int64{} // the next offset of each partition
	stalled := false
	for follow || len(until) > 0 {
		poll, cancel := ctx, context.CancelFunc(func() {})
		if !follow {
			poll, cancel = context.WithTimeout(ctx, readStallWarning)
		}
		fetches := client.PollFetches(poll)
		waited := poll.Err() // before cancel, which ends poll too
		cancel()
		if err := ctx.Err(); err != nil {
			if follow && errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		if waited != nil && fetches.NumRecords() == 0 {
			if !stalled {
				k.log.Warn("no record comes from the brokers although the topic holds more: still waiting; check the brokers' health",
					"topic", topic, "waited", readStallWarning, "read_up_to", fmt.Sprint(read), "ends_at", fmt.Sprint(until))
				stalled = true
			}
			continue
		}
		if stalled && fetches.NumRecords() > 0 {
			k.log.Info("records come again", "topic", topic)
			stalled = false
		}
		for _, e := range fetches.Errors() {
			if waited == nil || !errors.Is(e.Err, waited) { // not the end of this poll's wait
				return fmt.Errorf("read topic %s partition %d: %w", topic, e.Partition, e.Err)
			}
		}
		var failed error
		fetches.EachRecord(func(r *kgo.Record) {
			read[r.Partition] = r.Offset + 1
			end, reading := until[r.Partition]
			if failed != nil || (!follow && (!reading || r.Offset >= end)) {
				return
			}
			if !r.Attrs.IsControl() {
				failed = fn(Message{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
			}
			if reading && r.Offset+1 >= end {
				delete(until, r.Partition)
			}
		})
		if failed != nil {
			return failed
		}
	}
	return nil
}
