package mysql

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// The stream decodes row images itself, straight from the binlog's binary
// format into values. go-mysql would decode every value of every table into an
// interface (a []any per row, most values boxed, a map per row for the
// signedness): that was the largest cost of a backlog drain. go-mysql still
// reads the events and their headers; keepRowImages leaves the images to us.

// rowImages is what keepRowImages leaves in a rows event's Rows: its body,
// undecoded, and where the first row image starts in it.
type rowImages struct {
	body []byte
	pos  int
}

// keepRowImages is the syncer's decoder of rows events: it reads the event's
// header (table, columns present) and keeps the images for the stream. The
// body stays valid: go-mysql reads every packet into a buffer of its own.
func keepRowImages(e *replication.RowsEvent, body []byte) error {
	pos, err := e.DecodeHeader(body)
	if err != nil {
		return err
	}
	e.Rows = [][]any{{rowImages{body: body, pos: pos}}}
	return nil
}

// keptImages returns what keepRowImages left in the event.
func keptImages(e *replication.RowsEvent) (rowImages, bool) {
	if len(e.Rows) != 1 || len(e.Rows[0]) != 1 {
		return rowImages{}, false
	}
	kept, ok := e.Rows[0][0].(rowImages)
	return kept, ok
}

// data returns the row images, decompressed if the event is compressed.
func (k rowImages) data(h *replication.EventHeader) ([]byte, error) {
	switch h.EventType {
	case replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		data, err := mysql.DecompressMariadbData(k.body[k.pos:])
		if err != nil {
			return nil, fmt.Errorf("decompress a rows event: %w", err)
		}
		return data, nil
	}
	return k.body[k.pos:], nil
}

// libraryDecodes reports the rows events cdc leaves to go-mysql to decode:
// those of tables with MySQL's binary JSON (go-mysql renders it as MySQL
// prints it) and partial JSON updates (refused later as partial images).
func libraryDecodes(h *replication.EventHeader, state *tableState) bool {
	return state.binaryJSON || h.EventType == replication.PARTIAL_UPDATE_ROWS_EVENT
}

func hasBinaryJSON(columns []binlogColumn) bool {
	return slices.ContainsFunc(columns, func(c binlogColumn) bool { return c.typ == mysql.MYSQL_TYPE_JSON })
}

// decodeWithLibrary has go-mysql decode the rows kept in e.
func (k rowImages) decodeWithLibrary(e *replication.RowsEvent) error {
	e.Rows = nil
	return e.DecodeData(k.pos, k.body)
}

// binlogColumn is how a column's values are laid out in row images: its type
// code and the table map's metadata for it, with CHAR's real type (CHAR, ENUM
// or SET) and length unfolded from that metadata.
type binlogColumn struct {
	typ    byte
	meta   uint16
	length int // CHAR(n)'s maximum length in bytes, which decides its length prefix
}

func binlogColumns(e *replication.TableMapEvent) []binlogColumn {
	columns := make([]binlogColumn, len(e.ColumnType))
	for i, typ := range e.ColumnType {
		c := binlogColumn{typ: typ, meta: e.ColumnMeta[i]}
		if typ == mysql.MYSQL_TYPE_STRING {
			c.typ, c.length = mysql.MYSQL_TYPE_STRING, int(c.meta)
			if c.meta >= 256 {
				real := byte(c.meta >> 8)
				if real&0x30 != 0x30 {
					// Lengths past 255 keep two bits in the type byte.
					c.typ, c.length = real|0x30, int(c.meta&0xff)|int((real&0x30)^0x30)<<4
				} else {
					c.typ, c.length = real, int(c.meta&0xff)
				}
			}
		}
		columns[i] = c
	}
	return columns
}

// field is one column's place in a row image.
type field struct {
	absent bool   // not in the image (a partial row image)
	null   bool   // NULL
	raw    []byte // the value's bytes, without their length prefix
}

var errTruncatedImage = fmt.Errorf("the row image ends inside a value")

// readImage reads one row image from data into fields (one per column) and
// returns its length. present is the event's bitmap of the columns images hold.
// The fields' bytes are capped: appending to one cannot overwrite the event.
func readImage(data []byte, columns []binlogColumn, present []byte, fields []field) (int, error) {
	if len(present)*8 < len(columns) || len(fields) < len(columns) {
		return 0, fmt.Errorf("a column bitmap of %d bytes for %d columns", len(present), len(columns))
	}
	held := 0
	for i := range columns {
		if present[i>>3]&(1<<(i&7)) != 0 {
			held++
		}
	}
	nulls := (held + 7) / 8
	if len(data) < nulls {
		return 0, errTruncatedImage
	}
	pos, nth := nulls, 0
	for i, c := range columns {
		fields[i] = field{}
		if present[i>>3]&(1<<(i&7)) == 0 {
			fields[i].absent = true
			continue
		}
		if data[nth>>3]&(1<<(nth&7)) != 0 {
			fields[i].null = true
			nth++
			continue
		}
		nth++
		start, end, err := c.extent(data, pos)
		if err != nil {
			return 0, err
		}
		fields[i].raw = data[start:end:end]
		pos = end
	}
	return pos, nil
}

// extent tells where the value at data[pos:] starts and ends, its length
// prefix skipped.
func (c binlogColumn) extent(data []byte, pos int) (start, end int, err error) {
	prefix, size := 0, 0
	switch c.typ {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_YEAR:
		size = 1
	case mysql.MYSQL_TYPE_SHORT:
		size = 2
	case mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_TIME:
		size = 3
	case mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_TIMESTAMP:
		size = 4
	case mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_DATETIME:
		size = 8
	case mysql.MYSQL_TYPE_TIMESTAMP2:
		size = 4 + int(c.meta+1)/2
	case mysql.MYSQL_TYPE_DATETIME2:
		size = 5 + int(c.meta+1)/2
	case mysql.MYSQL_TYPE_TIME2:
		size = 3 + int(c.meta+1)/2
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		size = decimalSize(int(c.meta>>8), int(c.meta&0xff))
	case mysql.MYSQL_TYPE_BIT:
		size = (int(c.meta>>8)*8 + int(c.meta&0xff) + 7) / 8
	case mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
		size = int(c.meta & 0xff)
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		prefix = 1
		if c.meta >= 256 {
			prefix = 2
		}
	case mysql.MYSQL_TYPE_STRING:
		prefix = 1
		if c.length >= 256 {
			prefix = 2
		}
	case mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_GEOMETRY, mysql.MYSQL_TYPE_JSON, mysql.MYSQL_TYPE_VECTOR:
		prefix = int(c.meta)
		if prefix < 1 || prefix > 4 {
			return 0, 0, fmt.Errorf("binlog type %d with a length prefix of %d bytes", c.typ, prefix)
		}
	case mysql.MYSQL_TYPE_NULL:
	default:
		return 0, 0, fmt.Errorf("binlog type %d, which cdc cannot read", c.typ)
	}
	if prefix > 0 {
		if len(data)-pos < prefix {
			return 0, 0, errTruncatedImage
		}
		for i := range prefix {
			size |= int(data[pos+i]) << (8 * i)
		}
		pos += prefix
	}
	if size < 0 || len(data)-pos < size {
		return 0, 0, errTruncatedImage
	}
	return pos, pos + size, nil
}

// binary decodes a value of a row image, laid out as c says.
func (d *decoder) binary(c binlogColumn, raw []byte, a *memory.Arena) (cdc.Value, error) {
	switch c.typ {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG:
		u := mysql.FixedLengthInt(raw)
		if d.t.unsigned {
			return cdc.Uint(u), nil
		}
		shift := 64 - 8*len(raw) // sign-extends the column's width
		return cdc.Int(int64(u<<shift) >> shift), nil
	case mysql.MYSQL_TYPE_YEAR:
		if raw[0] == 0 {
			return cdc.Int(0), nil
		}
		return cdc.Int(1900 + int64(raw[0])), nil
	case mysql.MYSQL_TYPE_FLOAT:
		return cdc.Float(float64(math.Float32frombits(binary.LittleEndian.Uint32(raw)))), nil
	case mysql.MYSQL_TYPE_DOUBLE:
		return cdc.Float(math.Float64frombits(binary.LittleEndian.Uint64(raw))), nil
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		precision, scale := int(c.meta>>8), int(c.meta&0xff)
		return cdc.Decimal(appendDecimal(a.Bytes(precision + 3)[:0], raw, precision, scale)), nil
	case mysql.MYSQL_TYPE_BIT:
		n := mysql.BFixedLengthInt(raw)
		if d.kind == cdc.KindBool {
			return cdc.Bool(n != 0), nil
		}
		return cdc.Uint(n), nil
	case mysql.MYSQL_TYPE_ENUM:
		return d.enum(int64(mysql.FixedLengthInt(raw)))
	case mysql.MYSQL_TYPE_SET:
		return d.set(mysql.FixedLengthInt(raw))
	case mysql.MYSQL_TYPE_DATE:
		v := mysql.FixedLengthInt(raw)
		return d.date(int(v>>9), int(v>>5&15), int(v&31))
	case mysql.MYSQL_TYPE_DATETIME2:
		return d.datetime2(raw)
	case mysql.MYSQL_TYPE_TIMESTAMP2:
		seconds := int64(mysql.BFixedLengthInt(raw[:4]))
		if seconds == 0 {
			return d.zeroDate(cdc.Value{}, errZeroDatetime)
		}
		return cdc.Timestamp(seconds*1_000_000 + fraction(raw[4:])), nil
	case mysql.MYSQL_TYPE_TIME2:
		return cdc.Duration(time2(raw)), nil
	case mysql.MYSQL_TYPE_TIMESTAMP: // before MySQL 5.6's formats
		seconds := int64(mysql.FixedLengthInt(raw))
		if seconds == 0 {
			return d.zeroDate(cdc.Value{}, errZeroDatetime)
		}
		return cdc.Timestamp(seconds * 1_000_000), nil
	case mysql.MYSQL_TYPE_DATETIME: // YYYYMMDDhhmmss as a number
		v := mysql.FixedLengthInt(raw)
		day, clock := v/1_000_000, v%1_000_000
		return d.datetime(int(day/10000), int(day/100%100), int(day%100),
			int(clock/10000), int(clock/100%100), int(clock%100), 0)
	case mysql.MYSQL_TYPE_TIME: // [-]HHMMSS as a signed 24-bit number
		v := int64(mysql.FixedLengthInt(raw)<<40) >> 40
		sign := int64(1)
		if v < 0 {
			sign, v = -1, -v
		}
		return cdc.Duration(sign * ((v/10000*60+v/100%100)*60 + v%100) * 1_000_000), nil
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING,
		mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_GEOMETRY:
		return d.parse(raw)
	}
	return cdc.Value{}, fmt.Errorf("unexpected binlog type %d for a %s column", c.typ, d.t.render())
}

// date reads a date as days since the epoch.
func (d *decoder) date(year, month, day int) (cdc.Value, error) {
	days, err := epochDays(year, month, day)
	return d.zeroDate(cdc.Date(days), err)
}

// datetime reads a wall-clock reading as microseconds since the epoch, in UTC.
func (d *decoder) datetime(year, month, day, hour, minute, second int, micros int64) (cdc.Value, error) {
	days, err := epochDays(year, month, day)
	if err == nil && (hour > 23 || minute > 59 || second > 59) {
		err = fmt.Errorf("not a datetime: '%04d-%02d-%02d %02d:%02d:%02d'", year, month, day, hour, minute, second)
	}
	return d.zeroDate(cdc.Timestamp(days*86400_000_000+int64((hour*60+minute)*60+second)*1_000_000+micros), err)
}

// datetime2 reads MySQL 5.6's DATETIME: 40 bits, big-endian, offset by 2^39 —
// a sign bit, year×13+month (17 bits), day (5), hour (5), minute (6), second
// (6) — then the fraction.
func (d *decoder) datetime2(raw []byte) (cdc.Value, error) {
	packed := int64(mysql.BFixedLengthInt(raw[:5])) - 0x80_0000_0000
	if packed == 0 {
		return d.zeroDate(cdc.Value{}, errZeroDatetime)
	}
	if packed < 0 {
		return cdc.Value{}, fmt.Errorf("a negative datetime in the binlog (%d)", packed)
	}
	ymd, hms := packed>>17, packed&(1<<17-1)
	yearMonth := ymd >> 5
	return d.datetime(int(yearMonth/13), int(yearMonth%13), int(ymd&31),
		int(hms>>12), int(hms>>6&63), int(hms&63), fraction(raw[5:]))
}

// fraction reads the fractional seconds of MySQL 5.6's temporal types:
// big-endian, in hundredths (1 byte), ten-thousandths (2) or millionths (3).
func fraction(raw []byte) int64 {
	switch len(raw) {
	case 1:
		return int64(raw[0]) * 10000
	case 2:
		return int64(mysql.BFixedLengthInt(raw)) * 100
	case 3:
		return int64(mysql.BFixedLengthInt(raw))
	}
	return 0
}

// time2 reads MySQL 5.6's TIME as signed microseconds. Its integer part is 24
// bits offset by 2^23 — a sign bit, hour (10 bits), minute (6), second (6) —
// and the fraction follows; a negative time with a fraction of 1 or 2 bytes
// stores the fraction complemented, for its binary order (MySQL's my_time.cc).
func time2(raw []byte) int64 {
	var packed int64 // the integer part shifted by 24 bits, plus microseconds
	switch whole := int64(mysql.BFixedLengthInt(raw[:3])) - 0x80_0000; len(raw) {
	case 3:
		packed = whole << 24
	case 4, 5:
		frac, scale, wrap := int64(raw[3]), int64(10000), int64(0x100)
		if len(raw) == 5 {
			frac, scale, wrap = int64(mysql.BFixedLengthInt(raw[3:5])), 100, 0x10000
		}
		if whole < 0 && frac != 0 {
			whole, frac = whole+1, frac-wrap
		}
		packed = whole<<24 + frac*scale
	default:
		packed = int64(mysql.BFixedLengthInt(raw[:6])) - 0x8000_0000_0000
	}
	sign := int64(1)
	if packed < 0 {
		sign, packed = -1, -packed
	}
	hms, micros := packed>>24, packed&(1<<24-1)
	hours, minutes, seconds := hms>>12&1023, hms>>6&63, hms&63
	return sign * (((hours*60+minutes)*60+seconds)*1_000_000 + micros)
}

// decimalSize is the length of a DECIMAL(precision, scale) in row images:
// each side of the point in groups of 9 digits (4 bytes), the leftover
// digits in as few bytes as hold them.
func decimalSize(precision, scale int) int {
	integral := precision - scale
	return integral/9*4 + leftoverBytes[integral%9] + scale/9*4 + leftoverBytes[scale%9]
}

var leftoverBytes = [9]int{0, 1, 1, 2, 2, 3, 3, 4, 4}

// appendDecimal appends a DECIMAL's text, as MySQL prints it, read from its
// binary form (MySQL's decimal2bin): groups of digits, big-endian, the leftover
// integer digits first and the leftover fractional ones last; a negative
// number is stored complemented, and the first bit is flipped so that numbers
// sort as their bytes do.
func appendDecimal(dst, raw []byte, precision, scale int) []byte {
	negative := raw[0]&0x80 == 0
	var mask byte
	if negative {
		mask = 0xff
		dst = append(dst, '-')
	}
	pos := 0
	group := func(n int) uint64 {
		var v uint64
		for i := range n {
			b := raw[pos+i]
			if pos+i == 0 {
				b ^= 0x80
			}
			v = v<<8 | uint64(b^mask)
		}
		pos += n
		return v
	}
	integral := precision - scale
	leading := true // no digit written yet: leading zeros are dropped
	digits := func(v uint64, width int) {
		if leading {
			if v == 0 {
				return
			}
			leading = false
			dst = strconv.AppendUint(dst, v, 10)
			return
		}
		dst = appendPadded(dst, v, width)
	}
	digits(group(leftoverBytes[integral%9]), integral%9)
	for range integral / 9 {
		digits(group(4), 9)
	}
	if leading {
		dst = append(dst, '0')
	}
	if scale > 0 {
		dst = append(dst, '.')
		for range scale / 9 {
			dst = appendPadded(dst, group(4), 9)
		}
		if left := scale % 9; left > 0 {
			dst = appendPadded(dst, group(leftoverBytes[left]), left)
		}
	}
	return dst
}

// appendPadded appends v with leading zeros to width digits.
func appendPadded(dst []byte, v uint64, width int) []byte {
	for n := decimalDigits(v); n < width; n++ {
		dst = append(dst, '0')
	}
	return strconv.AppendUint(dst, v, 10)
}

func decimalDigits(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

// imageReader reads the images of a rows event in order: the only image of
// an insert or delete (k = 0), the before (0) and after (1) images of an update.
type imageReader struct {
	// cdc's reading: the images left, their columns, the columns each image
	// holds, and a buffer for each image of a row
	data    []byte
	columns []binlogColumn
	present [2][]byte
	fields  [2][]field
	// go-mysql's reading, and how many of its images were read
	decoded [][]any
	skipped [][]int
	read    int
}

func (r *imageReader) next(k int) (rowImage, bool, error) {
	if r.columns != nil {
		if len(r.data) == 0 {
			return rowImage{}, false, nil
		}
		n, err := readImage(r.data, r.columns, r.present[k], r.fields[k])
		if err != nil {
			return rowImage{}, false, err
		}
		r.data = r.data[n:]
		return rowImage{fields: r.fields[k]}, true, nil
	}
	if r.read >= len(r.decoded) {
		return rowImage{}, false, nil
	}
	image := rowImage{values: r.decoded[r.read]}
	if r.read < len(r.skipped) {
		image.skipped = r.skipped[r.read]
	}
	r.read++
	return image, true, nil
}

// rowImage is one image of a row: cdc's fields, or go-mysql's values.
type rowImage struct {
	fields  []field
	values  []any
	skipped []int // the columns go-mysql's values lack
}

// absent reports a column the image does not hold (binlog_row_image is not
// FULL).
func (img rowImage) absent(column int) bool {
	if img.values != nil {
		return slices.Contains(img.skipped, column)
	}
	return img.fields[column].absent
}

// texts reads the first two columns as text: the watermark table's.
func (img rowImage) texts() (string, string, bool) {
	if img.values != nil {
		if len(img.values) < 2 {
			return "", "", false
		}
		return text(img.values[0]), text(img.values[1]), true
	}
	if len(img.fields) < 2 || img.fields[0].null || img.fields[1].null {
		return "", "", false
	}
	return string(img.fields[0].raw), string(img.fields[1].raw), true
}
