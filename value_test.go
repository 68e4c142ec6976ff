package cdc

import (
	"math"
	"testing"
)

// Equal is "the same value", and so "encodes alike": the mapping relies on it to
// detect key changes and updates of hidden columns without encoding.
func TestEqualMeansTheSameBits(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		a, b Value
		want bool
	}{
		{Float(nan), Float(nan), true},
		{Float(0), Float(math.Copysign(0, -1)), false},
		{Float(1.5), Float(1.5), true},
		{Int(1), Uint(1), false},
		{String([]byte("a")), String([]byte("a")), true},
		{String([]byte("a")), Bytes([]byte("a")), false},
		{Decimal([]byte("1.00")), Decimal([]byte("1.0")), false},
		{Null(), String(nil), false},
		{Timestamp(5), Timestamp(5), true},
	}
	for _, c := range cases {
		if got := c.a.Equal(c.b); got != c.want {
			t.Errorf("%v (%s) equal %v (%s): %v, want %v", c.a, c.a.Kind, c.b, c.b.Kind, got, c.want)
		}
	}
}
