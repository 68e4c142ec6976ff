package mapping

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
)

// CheckAvro checks that data is exactly the binary encoding of one value of
// schema: every part well formed (a union's branch, an enum's symbol, text in
// UTF-8, an int in 32 bits) and no byte past the value. Decoders are lenient
// where this is not (they stop at the value's end and ignore the rest), and
// encoders differ in how they write blocks, so neither decoding nor
// re-encoding and comparing tells.
func CheckAvro(schema avro.Schema, data []byte) error {
	c := avroChecker{data: data}
	if err := c.value(schema, "value"); err != nil {
		return err
	}
	if c.at != len(data) {
		return fmt.Errorf("%d bytes past the end of the %s", len(data)-c.at, schemaName(schema))
	}
	return nil
}

type avroChecker struct {
	data []byte
	at   int
}

var errShort = errors.New("the data ends inside the value")

func (c *avroChecker) long() (int64, error) {
	u, n := binary.Uvarint(c.data[c.at:])
	if n <= 0 {
		if n == 0 {
			return 0, errShort
		}
		return 0, errors.New("a long longer than 64 bits")
	}
	c.at += n
	return int64(u>>1) ^ -int64(u&1), nil
}

func (c *avroChecker) take(n int64) ([]byte, error) {
	if n < 0 || n > int64(len(c.data)-c.at) {
		return nil, errShort
	}
	b := c.data[c.at : c.at+int(n)]
	c.at += int(n)
	return b, nil
}

func (c *avroChecker) value(s avro.Schema, path string) error {
	fail := func(err error) error { return fmt.Errorf("%s (%s): %w", path, s.Type(), err) }
	switch s := s.(type) {
	case *avro.RefSchema:
		return c.value(s.Schema(), path)
	case *avro.NullSchema:
		return nil
	case *avro.PrimitiveSchema:
		switch s.Type() {
		case avro.Null:
			return nil
		case avro.Boolean:
			b, err := c.take(1)
			if err == nil && b[0] > 1 {
				err = fmt.Errorf("byte %d is not a boolean", b[0])
			}
			if err != nil {
				return fail(err)
			}
		case avro.Int, avro.Long:
			n, err := c.long()
			if err == nil && s.Type() == avro.Int && (n < math.MinInt32 || n > math.MaxInt32) {
				err = fmt.Errorf("%d is out of the range of an int", n)
			}
			if err != nil {
				return fail(err)
			}
		case avro.Float:
			if _, err := c.take(4); err != nil {
				return fail(err)
			}
		case avro.Double:
			if _, err := c.take(8); err != nil {
				return fail(err)
			}
		case avro.Bytes, avro.String:
			n, err := c.long()
			var b []byte
			if err == nil {
				b, err = c.take(n)
			}
			if err == nil && s.Type() == avro.String && !utf8.Valid(b) {
				err = errors.New("text that is not UTF-8")
			}
			if err != nil {
				return fail(err)
			}
		}
		return nil
	case *avro.FixedSchema:
		if _, err := c.take(int64(s.Size())); err != nil {
			return fail(err)
		}
		return nil
	case *avro.EnumSchema:
		i, err := c.long()
		if err == nil && (i < 0 || i >= int64(len(s.Symbols()))) {
			err = fmt.Errorf("symbol %d of an enum of %d", i, len(s.Symbols()))
		}
		if err != nil {
			return fail(err)
		}
		return nil
	case *avro.UnionSchema:
		i, err := c.long()
		if err == nil && (i < 0 || i >= int64(len(s.Types()))) {
			err = fmt.Errorf("branch %d of a union of %d", i, len(s.Types()))
		}
		if err != nil {
			return fail(err)
		}
		return c.value(s.Types()[i], path)
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			if err := c.value(f.Type(), path+"."+f.Name()); err != nil {
				return err
			}
		}
		return nil
	case *avro.ArraySchema:
		return c.blocks(fail, func(i int) error { return c.value(s.Items(), fmt.Sprintf("%s[%d]", path, i)) })
	case *avro.MapSchema:
		return c.blocks(fail, func(int) error {
			if err := c.value(avro.NewPrimitiveSchema(avro.String, nil), path+" key"); err != nil {
				return err
			}
			return c.value(s.Values(), path+" value")
		})
	}
	return fail(errors.New("a schema type cdc does not check"))
}

// blocks reads the blocks of an array or map: a count (negative: followed by
// the block's size in bytes), its items, until a count of zero.
func (c *avroChecker) blocks(fail func(error) error, item func(i int) error) error {
	for i := 0; ; {
		count, err := c.long()
		if err != nil {
			return fail(err)
		}
		if count == 0 {
			return nil
		}
		start, size := 0, int64(-1)
		if count < 0 {
			if size, err = c.long(); err != nil {
				return fail(err)
			}
			count, start = -count, c.at
		}
		for ; count > 0; count-- {
			if err := item(i); err != nil {
				return err
			}
			i++
		}
		if size >= 0 && int64(c.at-start) != size {
			return fail(fmt.Errorf("a block said to be %d bytes holds %d", size, c.at-start))
		}
	}
}
