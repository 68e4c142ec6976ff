package postgres

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/cdc-dev/cdc"
)

// decodeText turns a value in PostgreSQL's text output format into a cdc.Value,
// exactly. The connection runs with DateStyle=ISO and TimeZone=UTC (see
// sessionParams), so dates and times have one known form. src must not be reused
// by the caller: strings and decimals keep referring to it.
func decodeText(kind cdc.Kind, withZone bool, src []byte) (cdc.Value, error) {
	switch kind {
	case cdc.KindBool:
		return cdc.Bool(len(src) == 1 && src[0] == 't'), nil
	case cdc.KindInt:
		n, err := strconv.ParseInt(string(src), 10, 64)
		return cdc.Int(n), err
	case cdc.KindUint:
		n, err := strconv.ParseUint(string(src), 10, 64)
		return cdc.Uint(n), err
	case cdc.KindFloat:
		f, err := strconv.ParseFloat(string(src), 64)
		return cdc.Float(f), err
	case cdc.KindDecimal:
		return cdc.Decimal(src), nil
	case cdc.KindJSON:
		return cdc.JSON(src), nil
	case cdc.KindBytes:
		if len(src) < 2 || src[0] != '\\' || src[1] != 'x' {
			return cdc.Value{}, fmt.Errorf("bytea %.20q is not in hex format (bytea_output=hex)", src)
		}
		b := make([]byte, hex.DecodedLen(len(src)-2))
		_, err := hex.Decode(b, src[2:])
		return cdc.Bytes(b), err
	case cdc.KindDate:
		days, err := parseDate(src)
		return cdc.Date(days), err
	case cdc.KindTime:
		us, err := parseTimeOfDay(src)
		return cdc.TimeOfDay(us), err
	case cdc.KindTimestamp:
		us, err := parseTimestamp(src, withZone)
		if errors.Is(err, errTimestampRange) {
			// PostgreSQL counts to 294276 AD; a long of microseconds to
			// 294247: the value is real, but no timestamp field holds it.
			return cdc.Invalid(src), nil
		}
		return cdc.Timestamp(us), err
	}
	return cdc.String(src), nil
}

const microsPerDay = 86_400_000_000

// parseDate reads "2024-01-31", "0044-03-15 BC", "10000-01-01", "infinity".
func parseDate(s []byte) (int64, error) {
	switch string(s) {
	case "infinity":
		return cdc.InfinityDays, nil
	case "-infinity":
		return cdc.NegInfinityDays, nil
	}
	y, m, d, rest, err := parseYMD(s)
	if err != nil {
		return 0, err
	}
	bc, rest := cutBC(rest)
	if len(rest) != 0 {
		return 0, fmt.Errorf("date %q: unexpected %q", s, rest)
	}
	return civilDays(y, m, d, bc), nil
}

// parseYMD reads year-month-day, the year of any width, and returns what follows.
func parseYMD(s []byte) (y, m, d int64, rest []byte, err error) {
	y, s1, ok := number(s, 4, 7)
	if !ok || len(s1) < 6 || s1[0] != '-' || s1[3] != '-' {
		return 0, 0, 0, nil, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	m, _, ok1 := number(s1[1:3], 2, 2)
	d, _, ok2 := number(s1[4:6], 2, 2)
	if !ok1 || !ok2 || m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, 0, 0, nil, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return y, m, d, s1[6:], nil
}

// civilDays counts days since 1970-01-01 in the proleptic Gregorian calendar that
// Avro's date and timestamps use, where 1 BC is year 0.
func civilDays(y, m, d int64, bc bool) int64 {
	if bc {
		y = 1 - y
	}
	return daysFromCivil(y, m, d)
}

func cutBC(s []byte) (bool, []byte) {
	if n := len(s); n >= 3 && string(s[n-3:]) == " BC" {
		return true, s[:n-3]
	}
	return false, s
}

// number reads between min and max leading digits.
func number(s []byte, min, max int) (int64, []byte, bool) {
	var n int64
	i := 0
	for ; i < len(s) && i < max && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int64(s[i]-'0')
	}
	return n, s[i:], i >= min
}

// daysFromCivil converts a proleptic Gregorian date to days since 1970-01-01
// (Howard Hinnant's days_from_civil).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// parseTimeOfDay reads "HH:MM:SS[.ffffff]" into microseconds since midnight;
// PostgreSQL allows 24:00:00.
func parseTimeOfDay(s []byte) (int64, error) {
	us, rest, err := parseClock(s)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("time %q: unexpected %q", s, rest)
	}
	return us, err
}

func parseClock(s []byte) (int64, []byte, error) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, nil, fmt.Errorf("time %q: want HH:MM:SS", s)
	}
	h, _, ok1 := number(s[0:2], 2, 2)
	mi, _, ok2 := number(s[3:5], 2, 2)
	sec, _, ok3 := number(s[6:8], 2, 2)
	if !ok1 || !ok2 || !ok3 {
		return 0, nil, fmt.Errorf("time %q: want HH:MM:SS", s)
	}
	us := ((h*60+mi)*60 + sec) * 1_000_000
	rest := s[8:]
	if len(rest) > 0 && rest[0] == '.' {
		frac, r, ok := number(rest[1:], 1, 6)
		if !ok {
			return 0, nil, fmt.Errorf("time %q: bad fraction", s)
		}
		for i := len(rest) - 1 - len(r); i < 6; i++ {
			frac *= 10
		}
		us += frac
		rest = r
	}
	return us, rest, nil
}

// parseTimestamp reads "2024-01-31 13:45:00.5", with a "+00", "+05:30" or
// "-03:00:15" offset when withZone, and an optional " BC".
func parseTimestamp(s []byte, withZone bool) (int64, error) {
	switch string(s) {
	case "infinity":
		return cdc.InfinityMicros, nil
	case "-infinity":
		return cdc.NegInfinityMicros, nil
	}
	y, m, d, rest, err := parseYMD(s)
	if err != nil {
		return 0, err
	}
	if len(rest) < 1 || rest[0] != ' ' {
		return 0, fmt.Errorf("timestamp %q: want a time after the date", s)
	}
	tod, rest, err := parseClock(rest[1:])
	if err != nil {
		return 0, fmt.Errorf("timestamp %q: %w", s, err)
	}
	var offset int64
	if withZone {
		if offset, rest, err = parseOffset(rest); err != nil {
			return 0, fmt.Errorf("timestamp %q: %w", s, err)
		}
	}
	bc, rest := cutBC(rest)
	if len(rest) != 0 {
		return 0, fmt.Errorf("timestamp %q: unexpected %q", s, rest)
	}
	us, ok := timestampMicros(civilDays(y, m, d, bc), tod-offset)
	if !ok {
		return 0, errTimestampRange
	}
	return us, nil
}

// errTimestampRange is a timestamp whose microseconds since 1970 do not fit
// an int64 (or fall on the values that stand for infinity).
var errTimestampRange = errors.New("timestamp outside the range of microseconds since 1970 in an int64")

// timestampMicros is days*microsPerDay + rest, unless that overflows an int64
// or is one of the two values that stand for ±infinity.
func timestampMicros(days, rest int64) (int64, bool) {
	const limit = math.MaxInt64 / microsPerDay
	if days > limit || days < -limit {
		return 0, false
	}
	base := days * microsPerDay
	us := base + rest
	if (rest > 0 && us < base) || (rest < 0 && us > base) || us == cdc.InfinityMicros || us == cdc.NegInfinityMicros {
		return 0, false
	}
	return us, true
}

// parseOffset reads "+HH", "+HH:MM" or "+HH:MM:SS" into microseconds east of UTC.
func parseOffset(s []byte) (int64, []byte, error) {
	if len(s) < 3 || (s[0] != '+' && s[0] != '-') {
		return 0, nil, fmt.Errorf("want a UTC offset, got %q", s)
	}
	sign := int64(1)
	if s[0] == '-' {
		sign = -1
	}
	h, rest, ok := number(s[1:], 2, 2)
	if !ok {
		return 0, nil, fmt.Errorf("bad UTC offset %q", s)
	}
	secs := h * 3600
	for unit := int64(60); len(rest) >= 3 && rest[0] == ':' && unit >= 1; unit /= 60 {
		n, r, ok := number(rest[1:], 2, 2)
		if !ok {
			return 0, nil, fmt.Errorf("bad UTC offset %q", s)
		}
		secs += n * unit
		rest = r
	}
	return sign * secs * 1_000_000, rest, nil
}
