package mapping

import (
	"encoding/binary"
	"math"
	"math/big"
)

// Avro binary encoding, from the specification's "Binary Encoding" section: ints and
// longs are zig-zag varints, floats and doubles little-endian IEEE 754, bytes and
// strings a long length then the data, a union the branch index then the value.

func appendLong(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

func appendFloat(dst []byte, f float32) []byte {
	return binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
}

func appendDouble(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

func appendBytes(dst, b []byte) []byte {
	return append(appendLong(dst, int64(len(b))), b...)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// minimalTwosComplement returns the shortest big-endian two's-complement form of n,
// as Java's BigInteger.toByteArray does: the form Avro decimals use.
func minimalTwosComplement(buf *[8]byte, n int64) []byte {
	binary.BigEndian.PutUint64(buf[:], uint64(n))
	i := 0
	for i < 7 && ((buf[i] == 0 && buf[i+1]&0x80 == 0) || (buf[i] == 0xff && buf[i+1]&0x80 != 0)) {
		i++
	}
	return buf[i:]
}

// bigTwosComplement is minimalTwosComplement for numbers beyond 64 bits.
func bigTwosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n-1 has the bits of n inverted.
	x := new(big.Int).Neg(n)
	x.Sub(x, big.NewInt(1))
	b := x.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}

// appendFixedTwosComplement sign-extends a minimal two's-complement number to size
// bytes, or reports false when it does not fit.
func appendFixedTwosComplement(dst, minimal []byte, size int) ([]byte, bool) {
	if len(minimal) > size {
		return dst, false
	}
	pad := byte(0)
	if minimal[0]&0x80 != 0 {
		pad = 0xff
	}
	for i := len(minimal); i < size; i++ {
		dst = append(dst, pad)
	}
	return append(dst, minimal...), true
}
