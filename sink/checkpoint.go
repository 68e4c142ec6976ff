package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cdc-dev/cdc"
)

// CheckpointStore keeps one connector's checkpoint in a compacted topic, keyed by
// the connector's name, so that the daemon needs no local disk and several
// connectors can share the topic. Its records go through the cluster's client,
// an idempotent producer acknowledged by every in-sync replica.
type CheckpointStore struct {
	k   *Kafka
	key []byte
}

// checkpointRecord is the stored form; version lets later releases change it.
type checkpointRecord struct {
	Version  int       `json:"version"`
	Position string    `json:"position"`
	Entities []string  `json:"entities,omitempty"`
	Catalog  string    `json:"catalog,omitempty"`
	StoredAt time.Time `json:"stored_at"`
	// Transaction is cdc.Checkpoint.Transaction.
	Transaction *transactionProgress `json:"transaction,omitempty"`
}

type transactionProgress struct {
	ID      string         `json:"id"`
	Records int            `json:"records"`
	Topics  map[string]int `json:"topics"`
}

// Checkpoints opens the store of the named connector, creating its topic (one
// partition, compacted) if missing.
func (k *Kafka) Checkpoints(name string) (*CheckpointStore, error) {
	if err := k.ensureTopic(k.cfg.CheckpointTopic, 1, true, "compact"); err != nil {
		return nil, fmt.Errorf("checkpoint topic: %w", err)
	}
	return &CheckpointStore{k: k, key: []byte(name)}, nil
}

// Load returns the last stored checkpoint; ok is false if none was ever stored.
// It reads the topic up to the end it had when Load started.
func (s *CheckpointStore) Load(ctx context.Context) (cp cdc.Checkpoint, ok bool, err error) {
	topic := s.k.cfg.CheckpointTopic
	var last []byte
	err = s.k.ReadTopic(ctx, topic, false, func(m Message) error {
		if bytes.Equal(m.Key, s.key) {
			last = m.Value // a tombstone resets the connector
		}
		return nil
	})
	if err != nil {
		return cp, false, cdc.Transient(fmt.Errorf("load checkpoint: %w", err)) // the brokers', or the network's
	}
	if last == nil {
		return cp, false, nil
	}
	var rec checkpointRecord
	if err := json.Unmarshal(last, &rec); err != nil {
		return cp, false, fmt.Errorf("checkpoint of %s in topic %s is unreadable (%v): delete it with a tombstone to start over", s.key, topic, err)
	}
	cp = cdc.Checkpoint{Position: cdc.Position(rec.Position), Entities: rec.Entities, Catalog: rec.Catalog}
	if t := rec.Transaction; t != nil {
		cp.Transaction = &cdc.TransactionProgress{ID: t.ID, Records: t.Records, Topics: t.Topics}
	}
	return cp, true, nil
}

// Save stores the checkpoint; when it returns nil, every in-sync replica has it.
func (s *CheckpointStore) Save(cp cdc.Checkpoint) error {
	rec, err := s.Record(cp)
	if err != nil {
		return err
	}
	ctx, cancel := s.k.adminContext()
	defer cancel()
	if err := s.k.client.ProduceSync(ctx, &rec).FirstErr(); err != nil {
		return fmt.Errorf("store checkpoint %s in %s: %w", cp.Position, s.k.cfg.CheckpointTopic, s.k.explain(err))
	}
	return nil
}

// Record is the checkpoint as a record of the checkpoint topic, for a
// transaction that commits it with the records it covers (exactly-once mode).
func (s *CheckpointStore) Record(cp cdc.Checkpoint) (Record, error) {
	rec := checkpointRecord{Version: 1, Position: string(cp.Position), Entities: cp.Entities, Catalog: cp.Catalog, StoredAt: time.Now().UTC()}
	if t := cp.Transaction; t != nil {
		rec.Transaction = &transactionProgress{ID: t.ID, Records: t.Records, Topics: t.Topics}
	}
	value, err := json.Marshal(rec)
	if err != nil {
		return Record{}, err
	}
	return Record{Topic: s.k.cfg.CheckpointTopic, Key: s.key, Value: value}, nil
}

// Transactions commits the records a producer sent and the checkpoint of
// what they hold in one transaction: the exactly-once mode's checkpoint.
type Transactions struct {
	Producer *Producer
	Store    *CheckpointStore
}

// Flush waits for the records sent (see Producer.Flush).
func (t Transactions) Flush(ctx context.Context) error { return t.Producer.Flush(ctx) }

// Commit commits what was sent since the last commit, with cp unless its
// position is empty (a snapshot's rows before its end have no position).
func (t Transactions) Commit(ctx context.Context, cp cdc.Checkpoint) error {
	var last Record
	if cp.Position != "" {
		var err error
		if last, err = t.Store.Record(cp); err != nil {
			return err
		}
	}
	return t.Producer.Commit(ctx, last)
}

// Abort drops what was sent since the last commit (see Producer.AbortTransaction).
func (t Transactions) Abort() error { return t.Producer.AbortTransaction() }

// Close waits for nothing: a checkpoint is stored when Save returns.
func (s *CheckpointStore) Close() error { return nil }
