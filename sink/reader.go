package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// Message is one record read back from a topic.
type Message struct {
	Partition  int32
	Offset     int64
	Key, Value []byte // Value nil: a tombstone
	Timestamp  time.Time
	Headers    []Header
}

// ReadTopic calls fn for every record of the topic, partition by partition in
// offset order, from the oldest retained record up to the end each partition had
// when ReadTopic started; with follow it goes on reading until ctx ends. fn runs
// in one goroutine at a time.
func (k *Kafka) ReadTopic(ctx context.Context, topic string, follow bool, fn func(Message) error) error {
	partitions, err := k.client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("read topic %s: %w", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(k.client)
	if err != nil {
		return fmt.Errorf("read topic %s: %w", topic, err)
	}
	defer consumer.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan Message)
	errs := make(chan error, len(partitions))
	for _, p := range partitions {
		end, err := k.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("read topic %s partition %d: %w", topic, p, err)
		}
		start, err := k.client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("read topic %s partition %d: %w", topic, p, err)
		}
		if start >= end && !follow {
			errs <- nil
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			return fmt.Errorf("read topic %s partition %d: %w", topic, p, err)
		}
		go func() {
			defer pc.AsyncClose()
			errs <- readPartition(ctx, pc, end, follow, msgs)
		}()
	}
	for remaining := len(partitions); remaining > 0; {
		select {
		case m := <-msgs:
			if err := fn(m); err != nil {
				return err
			}
		case err := <-errs:
			if err != nil {
				return fmt.Errorf("read topic %s: %w", topic, err)
			}
			remaining--
		case <-ctx.Done():
			if follow && errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return ctx.Err()
		}
	}
	return nil
}

func readPartition(ctx context.Context, pc sarama.PartitionConsumer, end int64, follow bool, out chan<- Message) error {
	for {
		select {
		case m, ok := <-pc.Messages():
			if !ok {
				return nil
			}
			select {
			case out <- message(m):
			case <-ctx.Done():
				return nil
			}
			if !follow && m.Offset+1 >= end {
				return nil
			}
		case err := <-pc.Errors():
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

func message(m *sarama.ConsumerMessage) Message {
	msg := Message{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}
	for _, h := range m.Headers {
		msg.Headers = append(msg.Headers, Header{Key: string(h.Key), Value: h.Value})
	}
	return msg
}

// TopicRecords counts the records a topic holds now (newest minus oldest offset,
// summed over its partitions): an upper bound, since compaction leaves gaps.
func (k *Kafka) TopicRecords(topic string) (int64, error) {
	partitions, err := k.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("topic %s: %w", topic, err)
	}
	var n int64
	for _, p := range partitions {
		end, err := k.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, fmt.Errorf("topic %s partition %d: %w", topic, p, err)
		}
		start, err := k.client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return 0, fmt.Errorf("topic %s partition %d: %w", topic, p, err)
		}
		n += end - start
	}
	return n, nil
}
