package postgres

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/internal/memory"
)

// numeric encodes a numeric's binary form: digits of base 10,000.
func numeric(weight int16, sign, dscale uint16, digits ...uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(digits)))
	b = binary.BigEndian.AppendUint16(b, uint16(weight))
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, dscale)
	for _, d := range digits {
		b = binary.BigEndian.AppendUint16(b, d)
	}
	return b
}

func TestBinaryNumericIsWrittenAsNumericOutWritesIt(t *testing.T) {
	var arena memory.Arena
	for want, src := range map[string][]byte{
		"123.450":                  numeric(0, 0, 3, 123, 4500),
		"-0.000000000000000000001": numeric(-6, 0x4000, 21, 1000),
		"10000":                    numeric(1, 0, 0, 1),
		"0":                        numeric(0, 0, 0),
		"0.00":                     numeric(0, 0, 2),
		"12345678.9":               numeric(1, 0, 1, 1234, 5678, 9000),
		"NaN":                      numeric(0, 0xC000, 0),
		"-Infinity":                numeric(0, 0xF000, 0),
	} {
		v, err := binaryNumeric(src, &arena)
		if err != nil || string(v.Bytes) != want {
			t.Errorf("%x: %q (%v), want %q", src, v.Bytes, err, want)
		}
	}
}

func TestATimestampPastTheLongRangeReadsAsItsText(t *testing.T) {
	far := time.Date(294270, 1, 1, 0, 0, 0, 0, time.UTC)
	us := (far.Unix()-946684800)*1e6 + 120
	if got := timestampText(us, true); got != "294270-01-01 00:00:00.00012+00" {
		t.Errorf("got %q", got)
	}
	if got := timestampText(us-120, false); got != "294270-01-01 00:00:00" {
		t.Errorf("got %q", got)
	}
}
