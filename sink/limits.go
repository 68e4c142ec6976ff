package sink

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
)

// DefaultMaxMessageBytes is Kafka's default max.message.bytes (message.max.bytes).
const DefaultMaxMessageBytes = 1_048_588

// recordBatchOverhead is the size of a record batch's header: a record alone
// in a batch must fit the topic's max.message.bytes with it.
const recordBatchOverhead = 61

// MaxMessageBytes reads each topic's max.message.bytes: the largest record
// batch its brokers accept, so the largest record cdc may send it.
func (k *Kafka) MaxMessageBytes(topics []string) (map[string]int, error) {
	ctx, cancel := k.adminContext()
	defer cancel()
	limits := map[string]int{}
	for _, topic := range topics {
		value, err := k.topicConfig(ctx, topic, "max.message.bytes")
		if err != nil {
			return nil, err
		}
		limits[topic] = DefaultMaxMessageBytes
		if n, err := strconv.Atoi(value); err == nil && n > 0 {
			limits[topic] = n
		}
	}
	return limits, nil
}

// RecordSize is the size of a record alone in a record batch, uncompressed,
// as the brokers count it against max.message.bytes (compression may only
// make a batch smaller: a batch it would grow is sent as it is).
func RecordSize(r *Record) int {
	body := 1 + 1 + 1 // attributes, timestamp delta and offset delta of a batch's first record
	body += bytesSize(r.Key) + bytesSize(r.Value) + varintSize(int64(len(r.Headers)))
	for _, h := range r.Headers {
		body += varintSize(int64(len(h.Key))) + len(h.Key) + bytesSize(h.Value)
	}
	return recordBatchOverhead + varintSize(int64(body)) + body
}

func bytesSize(b []byte) int {
	if b == nil {
		return varintSize(-1)
	}
	return varintSize(int64(len(b))) + len(b)
}

func varintSize(n int64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutVarint(buf[:], n)
}

// IsMessageTooLarge reports whether the brokers (or the client, which checks
// the same limit first) refused a record as larger than its topic accepts.
func IsMessageTooLarge(err error) bool { return errors.Is(err, kerr.MessageTooLarge) }
