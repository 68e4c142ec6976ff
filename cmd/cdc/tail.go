package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/sink"
)

// tailCommand prints an entity topic as JSON lines, decoded with the schema each
// record names (its registry id, or its single-object fingerprint).
func tailCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var entityName string
	var follow, headers bool
	cfg, err := loadFromFlags("tail", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&entityName, "entity", "", "the `name` of the entity whose topic to print")
		fs.BoolVar(&follow, "follow", false, "keep printing new records until interrupted")
		fs.BoolVar(&headers, "headers", false, "print each record's headers (CloudEvents attributes, position, operation)")
	})
	if err != nil {
		return err
	}
	c, err := newConnector(cfg, newLogger(cfg, io.Discard), newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer c.Close()
	var entity *mapping.Entity
	var names []string
	for _, e := range c.entities {
		names = append(names, e.Name)
		if e.Name == entityName {
			entity = e
		}
	}
	if entity == nil {
		return fmt.Errorf("--entity %q: no such entity in %s (has: %v)", entityName, cfg.path, names)
	}
	if err := c.dialBrokers(ctx); err != nil {
		return err
	}
	k := c.kafka
	keySchema, _ := entity.KeySchema()
	keys, err := newRecordDecoder(k, cfg, keySchema)
	if err != nil {
		return err
	}
	values, err := newRecordDecoder(k, cfg, entity.Schema)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	return k.ReadTopic(ctx, entity.Topic, follow, func(m sink.Message) error {
		key, err := keys.decode(m.Key)
		if err != nil {
			return fmt.Errorf("partition %d offset %d: key: %w", m.Partition, m.Offset, err)
		}
		line := struct {
			Partition int32             `json:"partition"`
			Offset    int64             `json:"offset"`
			Key       json.RawMessage   `json:"key"`
			Value     json.RawMessage   `json:"value"`
			Headers   map[string]string `json:"headers,omitempty"`
		}{Partition: m.Partition, Offset: m.Offset, Key: key, Value: json.RawMessage("null")}
		if headers {
			line.Headers = map[string]string{}
			for _, h := range m.Headers {
				line.Headers[h.Key] = string(h.Value)
			}
		}
		if m.Value != nil {
			if line.Value, err = values.decode(m.Value); err != nil {
				return fmt.Errorf("partition %d offset %d: value: %w", m.Partition, m.Offset, err)
			}
		}
		return enc.Encode(line)
	})
}

// recordDecoder reads framed Avro records: Confluent's wire format (schemas fetched
// from the registry by id) or single-object encoding (the fingerprint must be the
// configured schema's).
type recordDecoder struct {
	schema   avro.Schema
	header   []byte
	registry *sink.Kafka // nil: single-object encoding
	byID     map[uint32]avro.Schema
}

func newRecordDecoder(k *sink.Kafka, cfg *Config, schema avro.Schema) (*recordDecoder, error) {
	d := &recordDecoder{schema: schema, byID: map[uint32]avro.Schema{}}
	if cfg.Kafka.SchemaRegistry != nil {
		d.registry = k
		return d, nil
	}
	d.header = sink.SingleObjectHeader(schema)
	return d, nil
}

// check checks that data is framed as the entity's records and holds
// exactly one value of its schema: no byte past it.
func (d *recordDecoder) check(data []byte) error {
	schema, body, err := d.unframe(data)
	if err != nil {
		return err
	}
	return mapping.CheckAvro(schema, body)
}

func (d *recordDecoder) decode(data []byte) (json.RawMessage, error) {
	schema, body, err := d.unframe(data)
	if err != nil {
		return nil, err
	}
	var v any
	if err := avro.Unmarshal(schema, body, &v); err != nil {
		return nil, err
	}
	return json.Marshal(orderedJSON{schema, v})
}

// unframe returns the schema data was written with, and its Avro body.
func (d *recordDecoder) unframe(data []byte) (avro.Schema, []byte, error) {
	switch {
	case d.registry != nil && len(data) >= 5 && data[0] == 0:
		id := binary.BigEndian.Uint32(data[1:5])
		if s, ok := d.byID[id]; ok {
			return s, data[5:], nil
		}
		s, err := d.registry.SchemaByID(context.Background(), int(id))
		if err != nil {
			return nil, nil, err
		}
		d.byID[id] = s
		return s, data[5:], nil
	case d.registry == nil && bytes.HasPrefix(data, d.header):
		return d.schema, data[len(d.header):], nil
	}
	return nil, nil, fmt.Errorf("not framed as this entity's records (%x…): written with another schema or another encoding", data[:min(len(data), 10)])
}

// orderedJSON renders a decoded Avro value as JSON in schema field order, with
// decimals as exact decimal strings and times in ISO 8601.
type orderedJSON struct {
	schema avro.Schema
	value  any
}

func (o orderedJSON) MarshalJSON() ([]byte, error) {
	switch s := o.schema.(type) {
	case *avro.RecordSchema:
		m, _ := o.value.(map[string]any)
		var b bytes.Buffer
		b.WriteByte('{')
		for i, f := range s.Fields() {
			if i > 0 {
				b.WriteByte(',')
			}
			name, _ := json.Marshal(f.Name())
			b.Write(name)
			b.WriteByte(':')
			v, err := json.Marshal(orderedJSON{f.Type(), m[f.Name()]})
			if err != nil {
				return nil, err
			}
			b.Write(v)
		}
		b.WriteByte('}')
		return b.Bytes(), nil
	case *avro.UnionSchema:
		if o.value == nil {
			return []byte("null"), nil
		}
		_, typ := s.Indices()
		return json.Marshal(orderedJSON{s.Types()[typ], o.value})
	}
	switch v := o.value.(type) {
	case *big.Rat:
		return json.Marshal(v.FloatString(decimalScale(o.schema)))
	case time.Time:
		if lt, ok := o.schema.(avro.LogicalTypeSchema); ok && lt.Logical() != nil && lt.Logical().Type() == avro.Date {
			return json.Marshal(v.Format("2006-01-02"))
		}
		return json.Marshal(v.UTC().Format(time.RFC3339Nano))
	case time.Duration: // time-micros, time-millis: a time of day
		clock := time.Time{}.Add(v).Format("15:04:05.999999")
		if v >= 24*time.Hour {
			clock = "24:00:00"
		}
		return json.Marshal(clock)
	}
	return json.Marshal(o.value)
}

func decimalScale(s avro.Schema) int {
	if lt, ok := s.(avro.LogicalTypeSchema); ok {
		if d, ok := lt.Logical().(*avro.DecimalLogicalSchema); ok {
			return d.Scale()
		}
	}
	return 0
}
