package mapping

import (
	"fmt"
	"math/big"
)

// decimalDigits is an exact decimal rescaled to a target scale: the unscaled integer
// in small when it fits 18 digits (the common case, no allocation), else in big.
type decimalDigits struct {
	small int64
	big   *big.Int
}

// rescaleDecimal reads decimal text ("-12.340", "5", "1e3" is refused) and returns
// its unscaled value at the given scale, refusing any change of value: digits
// dropped by a smaller scale must be zeros, and the result must have at most
// precision digits.
func rescaleDecimal(text []byte, scale, precision int) (decimalDigits, error) {
	var d decimalDigits
	s := text
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	intPart, frac := s, []byte(nil)
	for i, c := range s {
		if c == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	if len(intPart)+len(frac) == 0 {
		return d, fmt.Errorf("%q is not a decimal number", text)
	}
	for len(frac) > scale {
		if frac[len(frac)-1] != '0' {
			return d, fmt.Errorf("%s has more than %d digits after the point", text, scale)
		}
		frac = frac[:len(frac)-1]
	}
	for len(intPart) > 0 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	digits := len(intPart) + scale
	if len(intPart) > precision-scale {
		return d, fmt.Errorf("%s has more than %d digits before the point (decimal(%d,%d))", text, precision-scale, precision, scale)
	}
	if digits <= 18 {
		var n int64
		for _, part := range [2][]byte{intPart, frac} {
			for _, c := range part {
				if c < '0' || c > '9' {
					return d, fmt.Errorf("%q is not a decimal number", text)
				}
				n = n*10 + int64(c-'0')
			}
		}
		for i := len(frac); i < scale; i++ {
			n *= 10
		}
		if neg {
			n = -n
		}
		d.small = n
		return d, nil
	}
	buf := make([]byte, 0, 1+digits)
	if neg {
		buf = append(buf, '-')
	}
	buf = append(buf, intPart...)
	buf = append(buf, frac...)
	for i := len(frac); i < scale; i++ {
		buf = append(buf, '0')
	}
	n, ok := new(big.Int).SetString(string(buf), 10)
	if !ok {
		return d, fmt.Errorf("%q is not a decimal number", text)
	}
	d.big = n
	return d, nil
}

func (d decimalDigits) twosComplement(buf *[8]byte) []byte {
	if d.big != nil {
		return bigTwosComplement(d.big)
	}
	return minimalTwosComplement(buf, d.small)
}
