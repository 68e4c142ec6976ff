package postgres

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/internal/memory"
)

// In binary mode (pgoutput's binary option, PostgreSQL 14 and later) the
// walsender sends each value in its type's binary send format instead of
// running its text output function: numeric_out, timestamptz_out and their
// kind were most of its CPU in a backlog drain, and the daemon then parsed the
// text back. The option holds for the whole stream: the server sends every
// column whose type has a send function in binary, so cdc asks for it only
// when it can decode every column of every mapped table exactly, into the
// same values text mode gives; otherwise the stream stays in text, and the
// log says which column keeps it there.

// binaryDecoders decode the binary send format of the built-in base types,
// by OID. Arrays, ranges, intervals, network and geometric types, money, enums
// and extension types have none: cdc carries them as their text output,
// which only the server can write.
var binaryDecoders = map[uint32]func(src []byte, a *memory.Arena) (cdc.Value, error){
	16:   binaryBool,
	17:   func(src []byte, _ *memory.Arena) (cdc.Value, error) { return cdc.Bytes(src), nil },
	18:   binaryText, // "char"
	19:   binaryText, // name
	20:   binaryInt(8),
	21:   binaryInt(2),
	23:   binaryInt(4),
	25:   binaryText, // text
	26:   binaryOID,
	114:  func(src []byte, _ *memory.Arena) (cdc.Value, error) { return cdc.JSON(src), nil },
	700:  binaryFloat4,
	701:  binaryFloat8,
	1042: binaryText, // bpchar, with its padding as the text output has it
	1043: binaryText, // varchar
	1082: binaryDate,
	1083: binaryTime,
	1114: binaryTimestamp(false),
	1184: binaryTimestamp(true),
	1700: binaryNumeric,
	2950: binaryUUID,
	3802: binaryJSONB,
}

// fixed checks a fixed-size value's length.
func fixed(src []byte, n int) error {
	if len(src) != n {
		return fmt.Errorf("%d bytes in binary, want %d", len(src), n)
	}
	return nil
}

func binaryBool(src []byte, _ *memory.Arena) (cdc.Value, error) {
	return cdc.Bool(len(src) == 1 && src[0] != 0), fixed(src, 1)
}

func binaryText(src []byte, _ *memory.Arena) (cdc.Value, error) { return cdc.String(src), nil }

func binaryInt(size int) func([]byte, *memory.Arena) (cdc.Value, error) {
	return func(src []byte, _ *memory.Arena) (cdc.Value, error) {
		if err := fixed(src, size); err != nil {
			return cdc.Value{}, err
		}
		switch size {
		case 2:
			return cdc.Int(int64(int16(binary.BigEndian.Uint16(src)))), nil
		case 4:
			return cdc.Int(int64(int32(binary.BigEndian.Uint32(src)))), nil
		}
		return cdc.Int(int64(binary.BigEndian.Uint64(src))), nil
	}
}

func binaryOID(src []byte, _ *memory.Arena) (cdc.Value, error) {
	if err := fixed(src, 4); err != nil {
		return cdc.Value{}, err
	}
	return cdc.Uint(uint64(binary.BigEndian.Uint32(src))), nil
}

func binaryFloat4(src []byte, _ *memory.Arena) (cdc.Value, error) {
	if err := fixed(src, 4); err != nil {
		return cdc.Value{}, err
	}
	return cdc.Float(float64(math.Float32frombits(binary.BigEndian.Uint32(src)))), nil
}

func binaryFloat8(src []byte, _ *memory.Arena) (cdc.Value, error) {
	if err := fixed(src, 8); err != nil {
		return cdc.Value{}, err
	}
	return cdc.Float(math.Float64frombits(binary.BigEndian.Uint64(src))), nil
}

// PostgreSQL's binary dates and timestamps count from 2000-01-01.
const (
	epochDays   = 10957 // 1970-01-01 to 2000-01-01
	epochMicros = epochDays * 86_400_000_000
)

func binaryDate(src []byte, _ *memory.Arena) (cdc.Value, error) {
	if err := fixed(src, 4); err != nil {
		return cdc.Value{}, err
	}
	switch days := int32(binary.BigEndian.Uint32(src)); days {
	case math.MaxInt32:
		return cdc.Date(cdc.InfinityDays), nil
	case math.MinInt32:
		return cdc.Date(cdc.NegInfinityDays), nil
	default:
		return cdc.Date(int64(days) + epochDays), nil
	}
}

func binaryTime(src []byte, _ *memory.Arena) (cdc.Value, error) {
	if err := fixed(src, 8); err != nil {
		return cdc.Value{}, err
	}
	return cdc.TimeOfDay(int64(binary.BigEndian.Uint64(src))), nil
}

func binaryTimestamp(withZone bool) func([]byte, *memory.Arena) (cdc.Value, error) {
	return func(src []byte, a *memory.Arena) (cdc.Value, error) {
		if err := fixed(src, 8); err != nil {
			return cdc.Value{}, err
		}
		switch us := int64(binary.BigEndian.Uint64(src)); {
		case us == math.MaxInt64:
			return cdc.Timestamp(cdc.InfinityMicros), nil
		case us == math.MinInt64:
			return cdc.Timestamp(cdc.NegInfinityMicros), nil
		case us > math.MaxInt64-epochMicros:
			// PostgreSQL counts to 294276 AD; a long of microseconds since
			// 1970 to 294247: the value is real, but no timestamp field
			// holds it. Its text, for messages, is the one text mode gives.
			return cdc.Invalid(a.CopyString(timestampText(us, withZone))), nil
		default:
			return cdc.Timestamp(us + epochMicros), nil
		}
	}
}

// timestampText writes microseconds since 2000-01-01 (AD) as PostgreSQL's
// text output does, in UTC.
func timestampText(us int64, withZone bool) string {
	t := time.Unix(us/1e6+epochMicros/1e6, us%1e6*1e3).UTC()
	text := fmt.Sprintf("%d-%02d-%02d %02d:%02d:%02d", t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second())
	if frac := us % 1e6; frac != 0 {
		text += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
	}
	if withZone {
		text += "+00"
	}
	return text
}

func binaryJSONB(src []byte, _ *memory.Arena) (cdc.Value, error) {
	if len(src) == 0 || src[0] != 1 {
		return cdc.Value{}, fmt.Errorf("jsonb in binary of an unknown version")
	}
	return cdc.JSON(src[1:]), nil
}

func binaryUUID(src []byte, a *memory.Arena) (cdc.Value, error) {
	if err := fixed(src, 16); err != nil {
		return cdc.Value{}, err
	}
	text := a.Bytes(36)
	hex.Encode(text[0:8], src[0:4])
	text[8] = '-'
	hex.Encode(text[9:13], src[4:6])
	text[13] = '-'
	hex.Encode(text[14:18], src[6:8])
	text[18] = '-'
	hex.Encode(text[19:23], src[8:10])
	text[23] = '-'
	hex.Encode(text[24:36], src[10:16])
	return cdc.String(text), nil
}

// binaryNumeric writes a numeric's binary form (digits of base 10,000, the
// weight of the first, a sign, the display scale) as numeric_out does: the
// integer part without leading zeros, then exactly dscale digits after the
// point.
func binaryNumeric(src []byte, a *memory.Arena) (cdc.Value, error) {
	if len(src) < 8 {
		return cdc.Value{}, fmt.Errorf("numeric of %d bytes", len(src))
	}
	ndigits := int(binary.BigEndian.Uint16(src[0:]))
	weight := int(int16(binary.BigEndian.Uint16(src[2:])))
	sign := binary.BigEndian.Uint16(src[4:])
	dscale := int(binary.BigEndian.Uint16(src[6:]))
	if len(src) != 8+2*ndigits {
		return cdc.Value{}, fmt.Errorf("numeric of %d bytes for %d digits", len(src), ndigits)
	}
	switch sign {
	case 0xC000:
		return cdc.Decimal(a.CopyString("NaN")), nil
	case 0xD000:
		return cdc.Decimal(a.CopyString("Infinity")), nil
	case 0xF000:
		return cdc.Decimal(a.CopyString("-Infinity")), nil
	}
	digit := func(i int) int {
		if i < 0 || i >= ndigits {
			return 0
		}
		return int(binary.BigEndian.Uint16(src[8+2*i:]))
	}
	out := make([]byte, 0, 2+4*(max(weight, 0)+1)+dscale+4)
	if sign == 0x4000 {
		out = append(out, '-')
	}
	if weight < 0 {
		out = append(out, '0')
	}
	for i := 0; i <= weight; i++ {
		d := digit(i)
		if i == 0 {
			out = strconv.AppendInt(out, int64(d), 10)
			continue
		}
		out = append(out, byte('0'+d/1000), byte('0'+d/100%10), byte('0'+d/10%10), byte('0'+d%10))
	}
	if dscale > 0 {
		out = append(out, '.')
		for i, written := weight+1, 0; written < dscale; i++ {
			d := digit(i)
			for _, c := range [4]byte{byte('0' + d/1000), byte('0' + d/100%10), byte('0' + d/10%10), byte('0' + d%10)} {
				if written < dscale {
					out = append(out, c)
					written++
				}
			}
		}
	}
	return cdc.Decimal(a.Copy(out)), nil
}

// decodeBinary decodes a value of base type oid sent in binary.
func decodeBinary(oid uint32, src []byte, a *memory.Arena) (cdc.Value, error) {
	decode, ok := binaryDecoders[oid]
	if !ok {
		return cdc.Value{}, errNoBinaryDecoder
	}
	return decode(src, a)
}

var errNoBinaryDecoder = fmt.Errorf("sent in binary, which cdc cannot decode for its type")

// binaryBlocker names a column of the mapped tables whose type cdc cannot
// decode in binary ("" if none), as the tables were described: the stream
// then stays in text.
func (s *Source) binaryBlocker() string {
	s.catalogMu.Lock()
	defer s.catalogMu.Unlock()
	for _, name := range s.cfg.Tables {
		if column := s.relations[name].textOnly; column != "" {
			return column
		}
	}
	return ""
}
