package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdc-dev/cdc"
)

// Record is one Kafka record, framed and ready to send: Topic, Key, Value (nil
// for a tombstone) and Headers; the client fills in the rest. It is franz-go's
// own type, so that the client takes records without a copy.
type Record = kgo.Record

// Header is a Kafka record header: franz-go's own type, so that records go to
// the client without a copy of their headers.
type Header = kgo.RecordHeader

// DefaultMaxBuffered bounds the records a producer holds before Send blocks:
// the back-pressure that slows the source down when the brokers are slow. Ten
// thousand keep a local broker as busy as twenty thousand did (make bench),
// with 15 MB less at the peak.
const DefaultMaxBuffered = 10000

// DefaultMaxBufferedBytes bounds the bytes (keys, values, headers) of the
// records a producer holds, as Kafka's buffer.memory does: with wide rows
// (documents, blobs), ten thousand records would hold gigabytes.
const DefaultMaxBufferedBytes = 16 << 20

// Producer sends records idempotently with every in-sync replica's
// acknowledgement. Records of one partition are acknowledged in the order they
// were sent; records of different partitions in any order.
//
// It uses franz-go's client rather than sarama's, which the rest of the sink
// uses for topic administration and the at-least-once checkpoint: measured by make
// bench on the same machine and broker, sarama's producer alone delivers about
// 0.4M records/s and franz-go's about 1.8M. A record passes through one
// goroutine hop instead of sarama's four channels, and several requests per
// broker stay in flight while idempotence keeps each partition in order.
//
// Records are sent a batch at a time and their buffer space is taken a batch
// at a time: per record, the only synchronization is two atomic counters.
type Producer struct {
	client                        *kgo.Client
	maxBuffered, maxBufferedBytes int64
	buffered, bufferedBytes       atomic.Int64
	// room wakes a waiting Send once buffered has fallen to wakeAt and
	// bufferedBytes to wakeAtBytes.
	room                chan struct{}
	wakeAt, wakeAtBytes atomic.Int64
	sent                sync.WaitGroup // records sent whose acknowledgement is not reported yet
	close               sync.Once
	closed              chan struct{}
	// transactionalID is set in exactly-once mode; a transaction is then always open.
	transactionalID string
}

// ProducerOptions tune a producer; the zero value is the default.
type ProducerOptions struct {
	// MaxBuffered is how many records the producer holds before Send blocks
	// (DefaultMaxBuffered if 0).
	MaxBuffered int
	// MaxBufferedBytes is how many bytes of records (keys, values, headers)
	// the producer holds before Send blocks (DefaultMaxBufferedBytes if 0).
	MaxBufferedBytes int
	// OnBrokerError, if set, is called for each failed connection to a broker
	// ("connect") and each request or response that failed on the wire
	// ("write", "read"). The client retries them: they slow delivery down, and
	// only a record undelivered for the retry time is given up.
	OnBrokerError func(stage string)
	// MaxMessageBytes is each topic's max.message.bytes (see
	// Kafka.MaxMessageBytes); other topics get DefaultMaxMessageBytes. The
	// client sends no batch larger, and fails a record that cannot fit one.
	MaxMessageBytes map[string]int
	// TransactionalID, if set, makes the producer transactional (exactly-once
	// mode): records are sent inside transactions that Commit ends. Starting a
	// producer with the same id fences this one: its next commit fails with a
	// *FencedError.
	TransactionalID string
}

// DefaultTransactionTimeout is how long the brokers let a transaction stay
// open before aborting it: the commit interval plus room for a slow broker.
// A daemon killed inside a transaction leaves it open that long at most.
const DefaultTransactionTimeout = time.Minute

// FencedError says another producer with the same transactional id started:
// this one must stop writing. It is never transient.
type FencedError struct {
	TransactionalID string
	Err             error
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("another cdc process with the same connector name started and took over its transactional id %s (or this one's transaction outlived the brokers' timeout): this one stops, so that a single process writes the connector's topics. Run one cdc process per connector name: %v",
		e.TransactionalID, e.Err)
}

func (e *FencedError) Unwrap() error { return e.Err }

// fenced wraps the brokers' fencing errors in a *FencedError.
func (p *Producer) fenced(err error) error {
	if p.transactionalID != "" && (errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)) {
		return &FencedError{TransactionalID: p.transactionalID, Err: err}
	}
	return err
}

// NewProducer starts a producer on the cluster.
func (k *Kafka) NewProducer(opts ProducerOptions) (*Producer, error) {
	maxBuffered := opts.MaxBuffered
	if maxBuffered <= 0 {
		maxBuffered = DefaultMaxBuffered
	}
	maxBufferedBytes := opts.MaxBufferedBytes
	if maxBufferedBytes <= 0 {
		maxBufferedBytes = DefaultMaxBufferedBytes
	}
	health := &brokerHealth{report: opts.OnBrokerError, log: k.log, retryFor: k.cfg.RetryFor, failing: map[string]*outage{}}
	_, backoff := retryPolicy(k.cfg.RetryFor)
	var transactional []kgo.Opt
	if opts.TransactionalID != "" {
		transactional = append(transactional, kgo.TransactionalID(opts.TransactionalID), kgo.TransactionTimeout(DefaultTransactionTimeout))
	}
	client, err := kgo.NewClient(k.clientOptions(append(transactional,
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default, and needs all
		kgo.RecordPartitioner(kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
			return func(r *kgo.Record, n int) int { return int(partitionFor(r.Key, int32(n))) }
		})),
		// Small linger: the pipeline already batches, and latency matters more.
		kgo.ProducerLinger(2*time.Millisecond),
		// None where a broker refuses the codec (zstd needs Kafka 2.1).
		kgo.ProducerBatchCompression(compressionCodecs[k.cfg.Compression], kgo.NoCompression()),
		// Send keeps the bound, a batch at a time; a batch larger than the bound
		// goes alone, so the client must never be the one to block.
		kgo.MaxBufferedRecords(math.MaxInt32),
		kgo.ProducerBatchMaxBytesFn(func(topic string) int32 {
			if n, ok := opts.MaxMessageBytes[topic]; ok {
				return int32(min(max(n, 512), 1<<30))
			}
			return DefaultMaxMessageBytes
		}),
		// A record that cannot be delivered for this long fails, and the daemon
		// stops; until then it is retried with capped, jittered backoff.
		kgo.RecordDeliveryTimeout(k.cfg.RetryFor),
		kgo.RetryBackoffFn(func(tries int) time.Duration { return backoff(tries, 0) }),
		kgo.WithHooks(health),
	)...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	p := &Producer{client: client, maxBuffered: int64(maxBuffered), maxBufferedBytes: int64(maxBufferedBytes),
		room: make(chan struct{}, 1), closed: make(chan struct{}),
		transactionalID: opts.TransactionalID}
	p.wakeAt.Store(-1)
	if p.transactionalID != "" {
		// Taking the transactional id now, not at the first record, fences an
		// older producer with the same id and has the brokers abort its open
		// transaction: a checkpoint loaded after this is the last one committed.
		ctx, cancel := context.WithTimeout(context.Background(), k.cfg.RetryFor)
		_, _, err := client.ProducerID(ctx)
		cancel()
		if err == nil {
			err = client.BeginTransaction()
		}
		if err != nil {
			client.Close()
			return nil, cdc.Transient(fmt.Errorf("kafka producer: take transactional id %s: %w", p.transactionalID, err))
		}
	}
	return p, nil
}

// outageGrace is how long a broker must keep failing before its outage is
// logged: a connection reset that the next attempt repairs is not one.
const outageGrace = 5 * time.Second

// brokerHealth reports the client's failed connections, writes and reads,
// and logs a broker's outage once when it begins and once when it ends (the
// client retries meanwhile; only a record undelivered for the retry time
// stops the connector).
type brokerHealth struct {
	report   func(stage string)
	log      *slog.Logger
	retryFor time.Duration
	mu       sync.Mutex
	failing  map[string]*outage // by broker address
	// anyFailing is len(failing) > 0: the responses of a healthy cluster
	// pass without the lock.
	anyFailing atomic.Bool
}

type outage struct {
	since  time.Time
	logged bool
}

func (h *brokerHealth) OnBrokerConnect(b kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.failed(b, "connect", err)
	}
}

func (h *brokerHealth) OnBrokerWrite(b kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		h.failed(b, "write", err)
	}
}

func (h *brokerHealth) OnBrokerRead(b kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		h.failed(b, "read", err)
		return
	}
	if !h.anyFailing.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	addr := brokerAddress(b)
	if o := h.failing[addr]; o != nil {
		if o.logged {
			h.log.Info("Kafka broker answers again", "broker", addr, "outage", time.Since(o.since).Round(time.Second))
		}
		delete(h.failing, addr)
		h.anyFailing.Store(len(h.failing) > 0)
	}
}

func (h *brokerHealth) failed(b kgo.BrokerMetadata, stage string, err error) {
	if h.report != nil {
		h.report(stage)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	addr := brokerAddress(b)
	o := h.failing[addr]
	if o == nil {
		o = &outage{since: time.Now()}
		h.failing[addr] = o
		h.anyFailing.Store(true)
	}
	if !o.logged && time.Since(o.since) >= outageGrace {
		o.logged = true
		h.log.Warn("Kafka broker does not answer: records wait in the producer and are retried; the connector restarts if one stays undelivered for the retry time",
			"broker", addr, "since", o.since.UTC().Format(time.RFC3339), "retry_time", h.retryFor, "err", err)
	}
}

func brokerAddress(b kgo.BrokerMetadata) string {
	return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
}

// Send queues records, in order, and calls acked once for each of them, with
// nil once every in-sync replica has it or with the reason it was given up;
// the record's Key, Value and Headers are set to nil before.
// acked is called from the client's goroutines, maybe concurrently. The client
// keeps each record, by pointer into records, until its acked has been
// called: the caller must not change it (or reuse its memory) before.
//
// Send blocks while the producer's buffer is full (the back-pressure that
// slows the source down) and returns early, having queued nothing, only if
// ctx ends. It is called from one goroutine.
func (p *Producer) Send(ctx context.Context, records []Record, acked func(error)) error {
	if len(records) == 0 {
		return nil
	}
	var size int64
	for i := range records {
		size += recordBytes(&records[i])
	}
	if err := p.reserve(ctx, int64(len(records)), size); err != nil {
		return err
	}
	p.sent.Add(len(records))
	// The batch's bytes are released with its last record: counting each
	// record's again when it is acknowledged would read it back from memory
	// long gone from the cache.
	var unacked atomic.Int64
	unacked.Store(int64(len(records)))
	promise := func(rec *kgo.Record, err error) {
		if err != nil {
			err = p.fenced(fmt.Errorf("produce to %s: %w", rec.Topic, err))
		}
		// A value too large for the caller's chunks is the garbage
		// collector's to free once nothing refers to it; the record, in a
		// chunk of hundreds, would until the chunk is reused.
		rec.Key, rec.Value, rec.Headers = nil, nil, nil
		acked(err)
		if unacked.Add(-1) == 0 {
			p.release(size)
		} else {
			p.release(0)
		}
		p.sent.Done()
	}
	for i := range records {
		p.client.Produce(context.Background(), &records[i], promise)
	}
	return nil
}

func recordBytes(r *Record) int64 {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// reserve waits until n more records of size bytes fit in the buffer, or it
// is empty.
func (p *Producer) reserve(ctx context.Context, n, size int64) error {
	fits := func() bool {
		b := p.buffered.Load()
		return b == 0 || (b+n <= p.maxBuffered && p.bufferedBytes.Load()+size <= p.maxBufferedBytes)
	}
	for !fits() {
		// wakeAtBytes first: a release that sees wakeAt sees it too.
		p.wakeAtBytes.Store(max(p.maxBufferedBytes-size, 0))
		p.wakeAt.Store(max(p.maxBuffered-n, 0))
		if fits() { // released before wakeAt was set
			break
		}
		select {
		case <-p.room:
		case <-ctx.Done():
			p.wakeAt.Store(-1)
			return ctx.Err()
		}
	}
	p.wakeAt.Store(-1)
	p.buffered.Add(n)
	p.bufferedBytes.Add(size)
	return nil
}

// release gives back one record and size bytes. The counters are read again
// after both changed: of concurrent releases, the last to read them sees what
// all of them left, and wakes the waiting Send if it fits.
func (p *Producer) release(size int64) {
	p.buffered.Add(-1)
	if size > 0 {
		p.bufferedBytes.Add(-size)
	}
	at := p.wakeAt.Load()
	if at >= 0 && p.buffered.Load() <= at && p.bufferedBytes.Load() <= p.wakeAtBytes.Load() && p.wakeAt.CompareAndSwap(at, -1) {
		select {
		case p.room <- struct{}{}:
		default:
		}
	}
}

// Ping checks that a broker of the cluster answers.
func (p *Producer) Ping(ctx context.Context) error { return p.client.Ping(ctx) }

// Flush waits until every record sent is acknowledged or given up, and each
// one's acked has returned. It is called from the goroutine that calls Send.
func (p *Producer) Flush(ctx context.Context) error {
	if err := p.client.Flush(ctx); err != nil {
		return fmt.Errorf("wait for the records sent: %w", err)
	}
	p.sent.Wait()
	return nil
}

// Commit ends the open transaction (exactly-once mode), once Flush has
// returned: it adds last (the checkpoint of what the records hold, if its
// Topic is set), commits, and opens the next transaction. Consumers
// reading committed records see all of them or, after an error, none: the
// transaction is then aborted by the brokers (or by the next producer with the
// same id), and the producer must be closed. Commit is called from the
// goroutine that calls Send.
func (p *Producer) Commit(ctx context.Context, last Record) error {
	if last.Topic != "" {
		if err := p.client.ProduceSync(ctx, &last).FirstErr(); err != nil {
			return p.fenced(fmt.Errorf("commit: produce the checkpoint to %s: %w", last.Topic, err))
		}
	}
	if err := p.client.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return p.fenced(fmt.Errorf("commit the transaction: %w", err))
	}
	if err := p.client.BeginTransaction(); err != nil {
		return fmt.Errorf("begin the next transaction: %w", err)
	}
	return nil
}

// AbortTransaction drops the records of the open transaction (exactly-once
// mode): read_committed consumers never see them. It returns once each one's
// acked has returned, and opens the next transaction, so that the producer can
// serve the connector's next run with the transactional id it holds. Taking
// the id again would fence a newer process with the same name, which would
// then restart and fence this one in turn; kept, the id tells this process
// that it lost it (*FencedError, at the latest on its next record). If it
// fails, the producer is closed.
func (p *Producer) AbortTransaction() error {
	err := p.abort()
	if err == nil {
		err = p.client.BeginTransaction()
	}
	if err != nil {
		p.Close()
		return p.fenced(fmt.Errorf("abort the transaction: %w", err))
	}
	return nil
}

// abort drops the records of the open transaction, waits until each one's
// acked has returned, and aborts the transaction.
func (p *Producer) abort() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.client.AbortBufferedRecords(ctx)
	p.sent.Wait()
	return errors.Join(err, p.client.EndTransaction(ctx, kgo.TryAbort))
}

// Closed reports whether Close was called.
func (p *Producer) Closed() bool {
	select {
	case <-p.closed:
		return true
	default:
		return false
	}
}

// Close stops accepting records and waits until every record sent has been
// acknowledged or given up (each one's acked has returned). In exactly-once
// mode, what was not committed is aborted.
func (p *Producer) Close() {
	p.close.Do(func() {
		if p.transactionalID != "" {
			_ = p.abort()
		} else {
			_ = p.client.Flush(context.Background()) // ends when every record is delivered or timed out
			p.sent.Wait()
		}
		p.client.Close()
		close(p.closed)
	})
	<-p.closed
}
