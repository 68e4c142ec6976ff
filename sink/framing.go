package sink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Framing returns the bytes that precede every encoded key and value of a topic.
//
// With a schema registry, the schemas are registered under the subjects
// "<topic>-key" and "<topic>-value" (the registry's TopicNameStrategy) and each
// record starts with Confluent's wire-format header: a zero byte and the schema id
// as a 4-byte big-endian integer. A registry that refuses a schema (an
// incompatible change) is an error: nothing may be produced with a schema the
// registry has not accepted.
//
// Without a registry, records use Avro single-object encoding: the two bytes
// C3 01, then the schema's CRC-64-AVRO fingerprint, little-endian.
func (k *Kafka) Framing(ctx context.Context, topic string, key, value avro.Schema) (keyHeader, valueHeader []byte, err error) {
	if k.cfg.Registry.URL == "" {
		return SingleObjectHeader(key), SingleObjectHeader(value), nil
	}
	client, err := k.registry()
	if err != nil {
		return nil, nil, err
	}
	if keyHeader, err = k.register(ctx, client, topic+"-key", key, true); err != nil {
		return nil, nil, err
	}
	valueHeader, err = k.register(ctx, client, topic+"-value", value, true)
	return keyHeader, valueHeader, err
}

// CheckSchemas checks, without registering anything, that a topic's schemas
// are registered or compatible with their subjects. Without a registry there is
// nothing to check.
func (k *Kafka) CheckSchemas(ctx context.Context, topic string, key, value avro.Schema) error {
	if k.cfg.Registry.URL == "" {
		return nil
	}
	client, err := k.registry()
	if err != nil {
		return err
	}
	_, errKey := k.register(ctx, client, topic+"-key", key, false)
	_, errValue := k.register(ctx, client, topic+"-value", value, false)
	return errors.Join(errKey, errValue)
}

// RegisteredFraming returns the headers Framing would, without registering
// anything: with a registry, both schemas must be registered already (cdc run
// registers them before it produces its first record).
func (k *Kafka) RegisteredFraming(ctx context.Context, topic string, key, value avro.Schema) (keyHeader, valueHeader []byte, err error) {
	if k.cfg.Registry.URL == "" {
		return SingleObjectHeader(key), SingleObjectHeader(value), nil
	}
	client, err := k.registry()
	if err != nil {
		return nil, nil, err
	}
	lookup := func(subject string, schema avro.Schema) ([]byte, error) {
		s, err := client.LookupSchema(ctx, subject, sr.Schema{Schema: schema.String(), Type: sr.TypeAvro})
		if isNotFound(err) {
			return nil, fmt.Errorf("schema %s is not registered under subject %s in %s: no record can have been written with it (cdc run registers it before producing)",
				schema.(avro.NamedSchema).FullName(), subject, k.cfg.Registry.Display())
		}
		if err != nil {
			return nil, fmt.Errorf("schema registry %s: look up subject %s: %w", k.cfg.Registry.Display(), subject, registryError(err))
		}
		return ConfluentHeader(s.ID), nil
	}
	if keyHeader, err = lookup(topic+"-key", key); err != nil {
		return nil, nil, err
	}
	valueHeader, err = lookup(topic+"-value", value)
	return keyHeader, valueHeader, err
}

// register returns the header of a schema already registered under the subject,
// or checks it against the subject's compatibility level and, when create is
// set, registers it.
func (k *Kafka) register(ctx context.Context, client *sr.Client, subject string, schema avro.Schema, create bool) ([]byte, error) {
	name := schema.(avro.NamedSchema).FullName()
	s, err := client.LookupSchema(ctx, subject, sr.Schema{Schema: schema.String(), Type: sr.TypeAvro})
	if err == nil {
		return ConfluentHeader(s.ID), nil
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("schema registry %s: look up schema %s under subject %s: %w", k.cfg.Registry.Display(), name, subject, registryError(err))
	}
	if err := k.checkCompatible(ctx, client, subject, schema); err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	if !create {
		return nil, nil
	}
	s, err = client.CreateSchema(ctx, subject, sr.Schema{Schema: schema.String(), Type: sr.TypeAvro})
	if err != nil {
		return nil, fmt.Errorf("register schema %s under subject %s in %s: %w; if the registry says it is incompatible, publish the change as a new topic version or make it compatible",
			name, subject, k.cfg.Registry.Display(), registryError(err))
	}
	return ConfluentHeader(s.ID), nil
}

// ConfluentHeader is the wire-format prefix of a record written with schema id.
func ConfluentHeader(id int) []byte {
	h := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[1:], uint32(id))
	return h
}

// SingleObjectHeader is the single-object encoding prefix of records written with
// schema: C3 01 and the schema's fingerprint.
func SingleObjectHeader(schema avro.Schema) []byte {
	fp := fingerprint(schema)
	return append([]byte{0xc3, 0x01}, fp[:]...)
}
