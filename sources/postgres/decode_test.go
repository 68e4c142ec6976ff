package postgres

import (
	"math"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cdc-dev/cdc"
)

func TestPositionTextOrderIsLogOrder(t *testing.T) {
	ps := []Position{{LSN: 0x1_0000_0000}, {LSN: 0x16B3748, Index: 5}, {LSN: 0x16B3748, Index: 12}, {LSN: 0x16B3749}, {Index: 1}, {LSN: math.MaxUint64, Index: math.MaxUint32}}
	texts := make([]string, len(ps))
	for i, p := range ps {
		texts[i] = p.String()
		back, err := ParsePosition(texts[i])
		if err != nil || back != p {
			t.Fatalf("%v -> %q -> %v, %v", p, texts[i], back, err)
		}
	}
	sort.Strings(texts)
	sort.Slice(ps, func(i, j int) bool { return ps[j].after(ps[i]) })
	for i := range ps {
		if texts[i] != ps[i].String() {
			t.Fatalf("text order %v differs from log order %v", texts, ps)
		}
	}
	if got := (Position{LSN: pglogrepl.LSN(0x16B3748), Index: 5}).String(); got != "00000000/016B3748:0000000005" {
		t.Fatalf("got %s", got)
	}
	cursor := &cdc.SnapshotCursor{Table: cdc.TableName{Schema: "shop", Name: "customer"}, After: []string{"it's 42"}}
	during := Position{LSN: 0x16B3748, Cursor: cursor}
	if back, err := ParsePosition(during.String()); err != nil || back.LSN != during.LSN || !reflect.DeepEqual(back.Cursor, cursor) {
		t.Errorf("%q reads back as %v, %v", during.String(), back, err)
	}
	for _, bad := range []string{"", "0/16B3748", "00000000/016B3748:00000000x5", "00000000-016B3748:0000000005", "00000000/016B3748:0000000005 cursor=what=1"} {
		if _, err := ParsePosition(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestDatesAndTimestampsDecodeToTheProlepticGregorianCalendar(t *testing.T) {
	day := func(y int, m time.Month, d int) int64 { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400 }
	micros := func(tm time.Time) int64 { return tm.Unix()*1_000_000 + int64(tm.Nanosecond()/1000) }
	cases := []struct {
		kind     cdc.Kind
		withZone bool
		text     string
		want     int64
	}{
		{cdc.KindDate, false, "1970-01-01", 0},
		{cdc.KindDate, false, "2024-02-29", day(2024, 2, 29)},
		{cdc.KindDate, false, "1969-12-31", -1},
		{cdc.KindDate, false, "0001-01-01", day(1, 1, 1)},
		{cdc.KindDate, false, "0001-01-01 BC", day(0, 1, 1)}, // 1 BC is year 0
		{cdc.KindDate, false, "4713-11-24 BC", day(-4712, 11, 24)},
		{cdc.KindDate, false, "10000-01-01", day(10000, 1, 1)},
		{cdc.KindDate, false, "infinity", cdc.InfinityDays},
		{cdc.KindDate, false, "-infinity", cdc.NegInfinityDays},
		{cdc.KindTime, false, "00:00:00", 0},
		{cdc.KindTime, false, "13:45:07.5", ((13*60+45)*60+7)*1_000_000 + 500_000},
		{cdc.KindTime, false, "23:59:59.999999", 86_399_999_999},
		{cdc.KindTime, false, "24:00:00", 86_400_000_000},
		{cdc.KindTimestamp, false, "2024-01-31 13:45:00.000001", micros(time.Date(2024, 1, 31, 13, 45, 0, 1000, time.UTC))},
		{cdc.KindTimestamp, false, "1900-06-01 00:00:00", micros(time.Date(1900, 6, 1, 0, 0, 0, 0, time.UTC))},
		{cdc.KindTimestamp, false, "0044-03-15 12:00:00 BC", micros(time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC))},
		{cdc.KindTimestamp, true, "2024-01-31 13:45:00.123+00", micros(time.Date(2024, 1, 31, 13, 45, 0, 123e6, time.UTC))},
		{cdc.KindTimestamp, true, "2024-01-31 13:45:00+05:30", micros(time.Date(2024, 1, 31, 8, 15, 0, 0, time.UTC))},
		{cdc.KindTimestamp, true, "1890-01-01 00:00:00-00:09:21", micros(time.Date(1890, 1, 1, 0, 9, 21, 0, time.UTC))},
		{cdc.KindTimestamp, true, "infinity", cdc.InfinityMicros},
	}
	for _, c := range cases {
		v, err := decodeText(c.kind, c.withZone, []byte(c.text))
		if err != nil || v.Int != c.want || v.Kind != c.kind {
			t.Errorf("%s %q = %v (%d), %v; want %d", c.kind, c.text, v, v.Int, err, c.want)
		}
	}
	for _, bad := range []string{"2024-1-31", "2024-13-01", "2024-01-31x", "hello"} {
		if _, err := decodeText(cdc.KindDate, false, []byte(bad)); err == nil {
			t.Errorf("date %q accepted", bad)
		}
	}
	if _, err := decodeText(cdc.KindTimestamp, true, []byte("2024-01-31 13:45:00")); err == nil {
		t.Error("timestamptz without offset accepted")
	}
}

// PostgreSQL's timestamps run to 294276 AD, past the 294247 AD at which
// microseconds since 1970 overflow an int64: such a value is invalid (a value
// error when mapped), never wrapped; the last one that fits is exact.
func TestTimestampsPastTheInt64RangeAreInvalidNotWrapped(t *testing.T) {
	for _, c := range []struct {
		withZone bool
		text     string
	}{
		{false, "294247-01-10 04:00:54.775807"}, // math.MaxInt64 itself: the value that stands for infinity
		{false, "294247-01-10 04:00:54.775808"},
		{false, "294276-12-31 23:59:59.999999"},
		{true, "294276-12-31 23:59:59.999999+00"},
		{true, "294247-01-10 04:00:54.775807-01"},
	} {
		v, err := decodeText(cdc.KindTimestamp, c.withZone, []byte(c.text))
		if err != nil || v.Kind != cdc.KindInvalid || string(v.Bytes) != c.text {
			t.Errorf("%q = %v %v (%d), %v; want an invalid value with its text", c.text, v.Kind, v, v.Int, err)
		}
	}
	last, err := decodeText(cdc.KindTimestamp, false, []byte("294247-01-10 04:00:54.775806"))
	if err != nil || last.Kind != cdc.KindTimestamp || last.Int != math.MaxInt64-1 {
		t.Errorf("the last timestamp that fits = %v (%d), %v", last.Kind, last.Int, err)
	}
	first, err := decodeText(cdc.KindTimestamp, false, []byte("4714-11-24 00:00:00 BC"))
	if err != nil || first.Kind != cdc.KindTimestamp || first.Int != -210866803200000000 {
		t.Errorf("PostgreSQL's first timestamp = %v (%d), %v", first.Kind, first.Int, err)
	}
}

func TestScalarsDecodeExactly(t *testing.T) {
	cases := []struct {
		kind cdc.Kind
		text string
		want cdc.Value
	}{
		{cdc.KindBool, "t", cdc.Bool(true)},
		{cdc.KindBool, "f", cdc.Bool(false)},
		{cdc.KindInt, "-9223372036854775808", cdc.Int(math.MinInt64)},
		{cdc.KindUint, "4294967295", cdc.Uint(4294967295)},
		{cdc.KindFloat, "-Infinity", cdc.Float(math.Inf(-1))},
		{cdc.KindFloat, "1.2345678901234567e+300", cdc.Float(1.2345678901234567e+300)},
		{cdc.KindDecimal, "-0.000100", cdc.Decimal([]byte("-0.000100"))},
		{cdc.KindBytes, `\x00ff10`, cdc.Bytes([]byte{0, 0xff, 0x10})},
		{cdc.KindString, "zürich ✓", cdc.String([]byte("zürich ✓"))},
		{cdc.KindJSON, `{"a": 1}`, cdc.JSON([]byte(`{"a": 1}`))},
	}
	for _, c := range cases {
		v, err := decodeText(c.kind, false, []byte(c.text))
		if err != nil || !v.Equal(c.want) {
			t.Errorf("%s %q = %v, %v; want %v", c.kind, c.text, v, err, c.want)
		}
	}
	nan, err := decodeText(cdc.KindFloat, false, []byte("NaN"))
	if err != nil || !math.IsNaN(nan.Float) {
		t.Errorf("NaN = %v, %v", nan, err)
	}
	if _, err := decodeText(cdc.KindBytes, false, []byte("abc")); err == nil {
		t.Error("escape-format bytea accepted")
	}
}

func TestMajorVersionOfServerVersion(t *testing.T) {
	for v, want := range map[string]int{"15.10 (Debian 15.10-0+deb12u1)": 15, "9.6.24": 9, "17devel": 17, "": 0} {
		if got := majorVersion(v); got != want {
			t.Errorf("%q: %d, want %d", v, got, want)
		}
	}
}
