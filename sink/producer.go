package sink

import (
	"context"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
)

// Record is one Kafka record, framed and ready to send. A nil Value is a tombstone.
type Record struct {
	Topic      string
	Key, Value []byte
	Headers    []Header
	// Token is handed back unchanged in the record's Ack, for the caller to match
	// acknowledgements to what it sent.
	Token any
}

// Header is a Kafka record header. Keys are bytes, as on the wire, so that
// callers can share one key among all records.
type Header struct {
	Key, Value []byte
}

// Ack reports the fate of one record: Err is nil once every in-sync replica has it.
type Ack struct {
	Token any
	Err   error
}

// Producer sends records idempotently. Records of one partition are acknowledged in
// the order they were sent; records of different partitions in any order.
type Producer struct {
	ap   sarama.AsyncProducer
	acks chan Ack
	wg   sync.WaitGroup
}

// NewProducer starts a producer on the connection.
func (k *Kafka) NewProducer() (*Producer, error) {
	ap, err := sarama.NewAsyncProducerFromClient(k.client)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	p := &Producer{ap: ap, acks: make(chan Ack, 4096)}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		for m := range ap.Successes() {
			p.acks <- Ack{Token: m.Metadata}
		}
	}()
	go func() {
		defer p.wg.Done()
		for e := range ap.Errors() {
			p.acks <- Ack{Token: e.Msg.Metadata, Err: fmt.Errorf("produce to %s: %w", e.Msg.Topic, e.Err)}
		}
	}()
	go func() { p.wg.Wait(); close(p.acks) }()
	return p, nil
}

// Send queues a record. It blocks while the producer's buffers are full (that is
// the back-pressure that slows the source down) and returns early only if ctx ends.
func (p *Producer) Send(ctx context.Context, r Record) error {
	msg := &sarama.ProducerMessage{Topic: r.Topic, Key: sarama.ByteEncoder(r.Key), Metadata: r.Token}
	if r.Value != nil {
		msg.Value = sarama.ByteEncoder(r.Value)
	}
	if len(r.Headers) > 0 {
		msg.Headers = make([]sarama.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			msg.Headers[i] = sarama.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	select {
	case p.ap.Input() <- msg:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Acks delivers one Ack per record sent. It is closed after Close once every
// record has been acknowledged or failed.
func (p *Producer) Acks() <-chan Ack { return p.acks }

// Close stops accepting records and returns once every record sent so far has its
// Ack delivered; the caller must keep reading Acks until it is closed.
func (p *Producer) Close() { p.ap.AsyncClose() }
