package harness

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// StartKafka starts an in-process broker speaking the Kafka protocol on
// 127.0.0.1:port (0: any free port). With a data directory it keeps its
// topics across restarts.
func StartKafka(port int, dataDir string) (*kfake.Cluster, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	return kfake.NewCluster(opts...)
}

// Record is a record read back from a topic.
type Record struct {
	Partition  int32
	Offset     int64
	Key, Value []byte
	Headers    map[string]string
	// Compression is the codec of the record's batch: 0 none, 1 gzip,
	// 2 snappy, 3 lz4, 4 zstd.
	Compression uint8
}

// ReadTopic reads every committed record of a topic up to its last stable
// offset, as a read_committed consumer does: records of aborted transactions
// are never seen, and an open transaction is not waited for.
func ReadTopic(ctx context.Context, brokers []string, topic string) ([]Record, error) {
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	ends, err := kadm.NewClient(admin).ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil, nil
	}
	// Transaction markers are kept to see where a partition ends (its last
	// offset may be one), and skipped.
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer client.Close()
	var out []Record
	for len(want) > 0 {
		fetches := client.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w (still waiting for %v)", topic, err, want)
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return nil, fmt.Errorf("read %s: %v", topic, errs[0].Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			end, reading := want[r.Partition]
			if !reading || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			rec := Record{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: map[string]string{},
				Compression: r.Attrs.CompressionType()}
			for _, h := range r.Headers {
				rec.Headers[h.Key] = string(h.Value)
			}
			out = append(out, rec)
		})
	}
	return out, nil
}

// Codec decodes an entity's single-object-encoded keys and values with goavro,
// an Avro implementation independent of the one under test. It checks the magic
// bytes and that every record of a kind carries the same fingerprint; the
// fingerprint's value is checked against the Avro project's vectors in the sink's
// unit tests (goavro's own canonical form keeps logical types, against the spec).
type Codec struct {
	key, value           *goavro.Codec
	keyPrint, valuePrint []byte
	// registry, when set, is a schema registry's URL: records are in Confluent's
	// wire format and their schemas are fetched by id.
	registry string
	byID     map[uint32]*goavro.Codec
}

// NewRegistryCodec decodes records in Confluent's wire format, fetching each
// schema id from the registry over plain HTTP (GET /schemas/ids/{id}).
func NewRegistryCodec(registryURL string) *Codec {
	return &Codec{registry: registryURL, byID: map[uint32]*goavro.Codec{}}
}

// RegistrySchema returns the schema the registry holds under an id.
func RegistrySchema(registryURL string, id uint32) (string, error) {
	resp, err := http.Get(fmt.Sprintf("%s/schemas/ids/%d", registryURL, id))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct{ Schema string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("schema id %d: status %s, %v", id, resp.Status, err)
	}
	return body.Schema, nil
}

func (c *Codec) decodeConfluent(b []byte) (any, error) {
	if len(b) < 5 || b[0] != 0 {
		return nil, fmt.Errorf("no Confluent wire-format header")
	}
	id := binary.BigEndian.Uint32(b[1:5])
	codec, ok := c.byID[id]
	if !ok {
		schema, err := RegistrySchema(c.registry, id)
		if err != nil {
			return nil, err
		}
		if codec, err = goavro.NewCodec(schema); err != nil {
			return nil, err
		}
		c.byID[id] = codec
	}
	native, rest, err := codec.NativeFromBinary(b[5:])
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes after the record", len(rest))
	}
	return native, err
}

// NewCodec reads the value schema from a file; keySchema is the key record as
// the documentation defines it (the key fields, in a record named <Value>Key).
func NewCodec(valueSchemaFile, keySchema string) (*Codec, error) {
	text, err := os.ReadFile(valueSchemaFile)
	if err != nil {
		return nil, err
	}
	value, err := goavro.NewCodec(string(text))
	if err != nil {
		return nil, err
	}
	key, err := goavro.NewCodec(keySchema)
	if err != nil {
		return nil, err
	}
	return &Codec{key: key, value: value}, nil
}

// Key decodes a key into its canonical JSON form, usable as a map key.
func (c *Codec) Key(b []byte) (string, error) {
	native, err := c.decode(c.key, &c.keyPrint, b)
	if err != nil {
		return "", fmt.Errorf("key %x: %w", b, err)
	}
	text, err := json.Marshal(native)
	return string(text), err
}

// Value decodes a value (nil for a tombstone).
func (c *Codec) Value(b []byte) (map[string]any, error) {
	if b == nil {
		return nil, nil
	}
	native, err := c.decode(c.value, &c.valuePrint, b)
	if err != nil {
		return nil, fmt.Errorf("value: %w", err)
	}
	return native.(map[string]any), nil
}

// decode reads one framed record in the codec's wire format.
func (c *Codec) decode(codec *goavro.Codec, print *[]byte, b []byte) (any, error) {
	if c.registry != "" {
		return c.decodeConfluent(b)
	}
	return decodeSingle(codec, print, b)
}

func decodeSingle(codec *goavro.Codec, print *[]byte, b []byte) (any, error) {
	if len(b) < 10 || b[0] != 0xc3 || b[1] != 0x01 {
		return nil, fmt.Errorf("no single-object header")
	}
	if *print == nil {
		*print = append([]byte(nil), b[2:10]...)
	} else if !bytes.Equal(*print, b[2:10]) {
		return nil, fmt.Errorf("fingerprint %x differs from the earlier records' %x", b[2:10], *print)
	}
	native, rest, err := codec.NativeFromBinary(b[10:])
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes after the record", len(rest))
	}
	return native, err
}

// Materialize applies records in offset order per partition: the state a
// consumer of a compacted topic ends with (last value per key, tombstones remove).
func (c *Codec) Materialize(records []Record) (map[string]map[string]any, error) {
	state := map[string]map[string]any{}
	for _, r := range records {
		key, err := c.Key(r.Key)
		if err != nil {
			return nil, err
		}
		value, err := c.Value(r.Value)
		if err != nil {
			return nil, fmt.Errorf("partition %d offset %d: %w", r.Partition, r.Offset, err)
		}
		if value == nil {
			delete(state, key)
		} else {
			state[key] = value
		}
	}
	return state, nil
}
