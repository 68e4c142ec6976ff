package mysql

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// The byte fixtures come from MySQL's documentation of its binary formats
// (strings/decimal.c, mysys/my_time.c, the row-based replication notes); the
// integration tests read every type from a real server's binlog.

func TestDecimalFromItsBinaryForm(t *testing.T) {
	for _, c := range []struct {
		raw              []byte
		precision, scale int
		want             string
	}{
		// decimal2bin's own example: DECIMAL(14,4).
		{[]byte{0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2}, 14, 4, "1234567890.1234"},
		{[]byte{0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D}, 14, 4, "-1234567890.1234"},
		// DECIMAL(10,3): 7 integer digits in 4 bytes, 3 fractional in 2.
		{[]byte{0x80, 0x00, 0x00, 0x00, 0x01, 0xF4}, 10, 3, "0.500"},
		{[]byte{0x80, 0x00, 0x00, 0x00, 0x00, 0x00}, 10, 3, "0.000"},
		{[]byte{0x7F, 0x67, 0x69, 0x80, 0xFC, 0x18}, 10, 3, "-9999999.999"},
		// DECIMAL(18,9): one full group on each side; the fraction keeps its zeros.
		{[]byte{0x80, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x05}, 18, 9, "7.000000005"},
		// DECIMAL(5,0): no point.
		{[]byte{0x80, 0x30, 0x39}, 5, 0, "12345"},
		{[]byte{0x7F, 0xCF, 0xC6}, 5, 0, "-12345"},
		// DECIMAL(20,0): a leading group of two digits, then two of nine, the
		// zeros inside kept.
		{[]byte{0x81, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, 20, 0, "1000000000000000000"},
		// DECIMAL(4,4): no integer digits.
		{[]byte{0x80, 0x2A}, 4, 4, "0.0042"},
	} {
		if size := decimalSize(c.precision, c.scale); size != len(c.raw) {
			t.Errorf("decimal(%d,%d): size %d, want %d", c.precision, c.scale, size, len(c.raw))
			continue
		}
		if got := string(appendDecimal(nil, c.raw, c.precision, c.scale)); got != c.want {
			t.Errorf("decimal(%d,%d) % X: %s, want %s", c.precision, c.scale, c.raw, got, c.want)
		}
	}
}

// my_time.c's table of negative TIME(2) values, stored with the fraction
// complemented so that they sort as their bytes do.
func TestNegativeTimesWithFractions(t *testing.T) {
	for _, c := range []struct {
		raw  []byte
		want int64 // microseconds
	}{
		{[]byte{0x80, 0x00, 0x00, 0x00}, 0},
		{[]byte{0x7F, 0xFF, 0xFF, 0xFF}, -10_000},
		{[]byte{0x7F, 0xFF, 0xFF, 0x9D}, -990_000},
		{[]byte{0x7F, 0xFF, 0xFF, 0x00}, -1_000_000},
		{[]byte{0x7F, 0xFF, 0xFE, 0xFF}, -1_010_000},
		{[]byte{0x7F, 0xFF, 0xFE, 0xF6}, -1_100_000},
		// TIME(4), the fraction in 2 bytes: -00:00:00.0001.
		{[]byte{0x7F, 0xFF, 0xFF, 0xFF, 0xFF}, -100},
		// TIME(0) 838:59:59 and TIME(6) -838:59:59.000000.
		{[]byte{0xB4, 0x6E, 0xFB}, 3020399_000000},
		{[]byte{0x4B, 0x91, 0x05, 0x00, 0x00, 0x00}, -3020399_000000},
	} {
		if got := time2(c.raw); got != c.want {
			t.Errorf("% X: %d µs, want %d", c.raw, got, c.want)
		}
	}
}

func TestTemporalTypesOfBothFormats(t *testing.T) {
	le := func(n uint64, size int) []byte {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, n)
		return b[:size]
	}
	d := func(kind cdc.Kind) *decoder { return &decoder{kind: kind, zero: ZeroDatesError} }
	for _, c := range []struct {
		name string
		col  binlogColumn
		d    *decoder
		raw  []byte
		want cdc.Value
		err  string
	}{
		// DATE: day (5 bits), month (4), year.
		{"date", binlogColumn{typ: mysql.MYSQL_TYPE_DATE}, d(cdc.KindDate), le(2024<<9|2<<5|29, 3), cdc.Date(19782), ""},
		{"zero date", binlogColumn{typ: mysql.MYSQL_TYPE_DATE}, d(cdc.KindDate), le(0, 3), cdc.Value{}, "zero date '0000-00-00'"},
		{"date off the calendar", binlogColumn{typ: mysql.MYSQL_TYPE_DATE}, d(cdc.KindDate), le(2023<<9|2<<5|29, 3), cdc.Value{}, "not a date of the calendar"},
		// DATETIME(3) 2024-02-29 12:34:56.123: (year×13+month)<<22 | day<<17 | hour<<12 | minute<<6 | second, offset by 2^39.
		{"datetime2", binlogColumn{typ: mysql.MYSQL_TYPE_DATETIME2, meta: 3}, d(cdc.KindTimestamp),
			append(be(uint64(0x80_0000_0000+(2024*13+2)<<22|29<<17|12<<12|34<<6|56), 5), 0x04, 0xCE),
			cdc.Timestamp(1709210096_123000), ""},
		{"zero datetime2", binlogColumn{typ: mysql.MYSQL_TYPE_DATETIME2}, d(cdc.KindTimestamp), be(0x80_0000_0000, 5), cdc.Value{}, "zero date"},
		// TIMESTAMP(6): seconds since the epoch, big-endian, then microseconds.
		{"timestamp2", binlogColumn{typ: mysql.MYSQL_TYPE_TIMESTAMP2, meta: 6}, d(cdc.KindTimestamp),
			append(be(2147483647, 4), 0x0F, 0x42, 0x3F), cdc.Timestamp(2147483647_999999), ""},
		// Before MySQL 5.6: DATETIME as the number YYYYMMDDhhmmss, TIMESTAMP as
		// seconds, TIME as the signed number [-]HHMMSS, all little-endian.
		{"old datetime", binlogColumn{typ: mysql.MYSQL_TYPE_DATETIME}, d(cdc.KindTimestamp), le(20240229123456, 8), cdc.Timestamp(1709210096_000000), ""},
		{"old timestamp", binlogColumn{typ: mysql.MYSQL_TYPE_TIMESTAMP}, d(cdc.KindTimestamp), le(1709210096, 4), cdc.Timestamp(1709210096_000000), ""},
		{"old time", binlogColumn{typ: mysql.MYSQL_TYPE_TIME}, d(cdc.KindDuration), le(uint64(1<<24-8385959), 3), cdc.Duration(-3020399_000000), ""},
	} {
		got, err := c.d.binary(c.col, c.raw, &memory.Arena{})
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err == "" && (got.Kind != c.want.Kind || got.Int != c.want.Int):
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	// A zero date under zero_dates: null is a NULL.
	null := &decoder{kind: cdc.KindDate, zero: ZeroDatesNull}
	if v, err := null.binary(binlogColumn{typ: mysql.MYSQL_TYPE_DATE}, le(0, 3), &memory.Arena{}); err != nil || v.Kind != cdc.KindNull {
		t.Errorf("zero date under zero_dates null: %+v, %v", v, err)
	}
}

func be(n uint64, size int) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b[8-size:]
}

// CHAR(n) folds the length's high bits into its real type's byte
// (Field_string::do_save_field_metadata); past 255 bytes its values take a
// two-byte length prefix.
func TestCharLengthsPast255Bytes(t *testing.T) {
	const length = 1020 // CHAR(255) in utf8mb4
	meta := uint16(mysql.MYSQL_TYPE_STRING^(length&0x300)>>4)<<8 | length&0xff
	columns := binlogColumns(&replication.TableMapEvent{ColumnType: []byte{mysql.MYSQL_TYPE_STRING}, ColumnMeta: []uint16{meta}})
	if columns[0].typ != mysql.MYSQL_TYPE_STRING || columns[0].length != length {
		t.Fatalf("unfolded as %+v", columns[0])
	}
	image := append([]byte{0x00, 3, 0}, "abc"...) // no NULLs, length 3 in two bytes
	fields := make([]field, 1)
	if n, err := readImage(image, columns, []byte{1}, fields); err != nil || n != len(image) || string(fields[0].raw) != "abc" {
		t.Errorf("read %d bytes, %q, %v", n, fields[0].raw, err)
	}
	enum := binlogColumns(&replication.TableMapEvent{ColumnType: []byte{mysql.MYSQL_TYPE_STRING}, ColumnMeta: []uint16{uint16(mysql.MYSQL_TYPE_ENUM)<<8 | 2}})
	if enum[0].typ != mysql.MYSQL_TYPE_ENUM {
		t.Errorf("enum unfolded as %+v", enum[0])
	}
}

// A row image is read column by column: NULLs from its bitmap, columns the
// image lacks marked, and a value cut short is an error, not a panic.
func TestRowImagesWithNullsAbsentColumnsAndTruncation(t *testing.T) {
	columns := []binlogColumn{{typ: mysql.MYSQL_TYPE_LONG}, {typ: mysql.MYSQL_TYPE_VARCHAR, meta: 50}, {typ: mysql.MYSQL_TYPE_LONGLONG}}
	fields := make([]field, 3)
	// Columns 0 and 1 present; column 1 NULL.
	image := []byte{0b10, 7, 0, 0, 0}
	n, err := readImage(image, columns, []byte{0b011}, fields)
	if err != nil || n != len(image) {
		t.Fatalf("read %d of %d bytes: %v", n, len(image), err)
	}
	if mysql.FixedLengthInt(fields[0].raw) != 7 || !fields[1].null || !fields[2].absent {
		t.Errorf("fields %+v", fields)
	}
	if img := (rowImage{fields: fields}); img.absent(0) || !img.absent(2) {
		t.Error("column 2, and only it, is absent from the image")
	}
	// All present, the varchar says 5 bytes and 2 follow.
	if _, err := readImage([]byte{0, 1, 0, 0, 0, 5, 'a', 'b'}, columns, []byte{0b111}, fields); !errors.Is(err, errTruncatedImage) {
		t.Errorf("truncated image: %v", err)
	}
	if _, err := readImage([]byte{0}, []binlogColumn{{typ: 0xF0}}, []byte{1}, fields); err == nil || !strings.Contains(err.Error(), "binlog type 240") {
		t.Errorf("unknown type: %v", err)
	}
	// Integers sign-extend from their width, unless unsigned.
	signed := &decoder{kind: cdc.KindInt}
	if v, _ := signed.binary(binlogColumn{typ: mysql.MYSQL_TYPE_INT24}, []byte{0x00, 0x00, 0x80}, nil); v.Int != -8388608 {
		t.Errorf("mediumint -8388608 read as %d", v.Int)
	}
	unsigned := &decoder{kind: cdc.KindUint, t: columnType{unsigned: true}}
	if v, _ := unsigned.binary(binlogColumn{typ: mysql.MYSQL_TYPE_INT24}, []byte{0xFF, 0xFF, 0xFF}, nil); uint64(v.Int) != 16777215 {
		t.Errorf("mediumint unsigned 16777215 read as %d", v.Int)
	}
}

// A compressed rows event whose payload does not decompress is an error.
func TestCorruptCompressedRowsEvent(t *testing.T) {
	kept := rowImages{body: []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06}}
	_, err := kept.data(&replication.EventHeader{EventType: replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1})
	if err == nil || !strings.Contains(err.Error(), "decompress a rows event") {
		t.Errorf("corrupt compressed event: %v", err)
	}
	if data, err := kept.data(&replication.EventHeader{EventType: replication.WRITE_ROWS_EVENTv2}); err != nil || len(data) != 6 {
		t.Errorf("uncompressed event: %d bytes, %v", len(data), err)
	}
}

// An update's after image takes the before image's value for a column whose
// bytes did not change, and decodes the others: NULL on either side included.
func TestUpdateAfterImageDecodesOnlyWhatChanged(t *testing.T) {
	types := []columnType{{name: "id", base: "bigint"}, {name: "name", base: "varchar", charset: "utf8mb4"},
		{name: "qty", base: "int", nullable: true}}
	state := testTableState(t, types, []binlogColumn{{typ: mysql.MYSQL_TYPE_LONGLONG}, {typ: mysql.MYSQL_TYPE_VARCHAR, meta: 400}, {typ: mysql.MYSQL_TYPE_LONG}})
	image := func(name string, qty int32, null bool) []field {
		data := []byte{0}
		if null {
			data[0] = 1 << 2
		}
		data = binary.LittleEndian.AppendUint64(data, 7)
		data = append(binary.LittleEndian.AppendUint16(data, uint16(len(name))), name...)
		if !null {
			data = binary.LittleEndian.AppendUint32(data, uint32(qty))
		}
		fields := make([]field, 3)
		if _, err := readImage(data, state.columns, []byte{0x07}, fields); err != nil {
			t.Fatal(err)
		}
		return fields
	}
	for _, c := range []struct {
		name                 string
		before, after        []field
		wantName             string
		wantQty              int64
		wantNull, wantShared bool
	}{
		{"a value changed", image("ab", 1, false), image("ab", 2, false), "ab", 2, false, true},
		{"text changed, NULL kept", image("ab", 0, true), image("abc", 0, true), "abc", 0, true, false},
		{"NULL to a value", image("ab", 0, true), image("ab", 5, false), "ab", 5, false, true},
		{"a value to NULL", image("ab", 5, false), image("ab", 0, true), "ab", 0, true, true},
	} {
		st := &streamer{}
		before, _, err := st.decodeRow(state, rowImage{fields: c.before}, nil, nil, cdc.Unknown())
		if err != nil {
			t.Fatal(err)
		}
		after, partial, err := st.decodeRow(state, rowImage{fields: c.after}, &rowImage{fields: c.before}, before, cdc.Unchanged())
		if err != nil || partial {
			t.Fatalf("%s: partial %v, err %v", c.name, partial, err)
		}
		if after[0].Int != 7 || string(after[1].Bytes) != c.wantName || after[2].IsNull() != c.wantNull || (!c.wantNull && after[2].Int != c.wantQty) {
			t.Errorf("%s: after image %v", c.name, after)
		}
		if shared := &after[1].Bytes[0] == &before[1].Bytes[0]; shared != c.wantShared {
			t.Errorf("%s: the unchanged text shared with the before image: %v, want %v", c.name, shared, c.wantShared)
		}
	}
	// A MINIMAL after image that set qty alone: the others are left as they
	// were, and the row says so.
	data := binary.LittleEndian.AppendUint32([]byte{0}, 9)
	fields := make([]field, 3)
	if _, err := readImage(data, state.columns, []byte{0b100}, fields); err != nil {
		t.Fatal(err)
	}
	after, partial, err := (&streamer{}).decodeRow(state, rowImage{fields: fields}, nil, nil, cdc.Unchanged())
	if err != nil || !partial || after[0].Kind != cdc.KindUnchanged || after[1].Kind != cdc.KindUnchanged || after[2].Int != 9 {
		t.Errorf("a partial after image: %v, partial %v, err %v", after, partial, err)
	}
}
