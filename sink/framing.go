package sink

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/registry"
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
	if k.cfg.SchemaRegistry == "" {
		return SingleObjectHeader(key), SingleObjectHeader(value), nil
	}
	client, err := registry.NewClient(k.cfg.SchemaRegistry, registry.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
	if err != nil {
		return nil, nil, fmt.Errorf("schema registry %s: %w", k.cfg.SchemaRegistry, err)
	}
	if keyHeader, err = registerHeader(ctx, client, k.cfg.SchemaRegistry, topic+"-key", key); err != nil {
		return nil, nil, err
	}
	valueHeader, err = registerHeader(ctx, client, k.cfg.SchemaRegistry, topic+"-value", value)
	return keyHeader, valueHeader, err
}

func registerHeader(ctx context.Context, client *registry.Client, url, subject string, schema avro.Schema) ([]byte, error) {
	id, _, err := client.CreateSchema(ctx, subject, schema.String())
	if err != nil {
		return nil, fmt.Errorf("register schema %s under subject %s in %s: %w; if the registry says it is incompatible, publish the change as a new topic version or make it compatible",
			schema.(avro.NamedSchema).FullName(), subject, url, err)
	}
	return ConfluentHeader(id), nil
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
