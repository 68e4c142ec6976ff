package pipeline

import (
	"encoding/binary"
	"hash/crc64"
)

// crc64Table computes the CRC-64s of event ids (see events.id) eight bytes a
// step. hash/crc64 does so only from 64 bytes on, and an id's input is
// shorter (a position is about 60 bytes): byte by byte, the id's two CRCs took
// 6% of a MariaDB backlog drain. The values are hash/crc64's, so ids do not
// change.
type crc64Table [8][256]uint64

func makeCRC64Table(poly uint64) *crc64Table {
	t := new(crc64Table)
	t[0] = *crc64.MakeTable(poly)
	for i := range 256 {
		crc := t[0][i]
		for j := 1; j < 8; j++ {
			crc = t[0][crc&0xff] ^ crc>>8
			t[j][i] = crc
		}
	}
	return t
}

// update returns crc64.Update(crc, table of the same polynomial, p).
func (t *crc64Table) update(crc uint64, p []byte) uint64 {
	crc = ^crc
	for len(p) >= 8 {
		crc ^= binary.LittleEndian.Uint64(p)
		crc = t[7][crc&0xff] ^ t[6][crc>>8&0xff] ^ t[5][crc>>16&0xff] ^ t[4][crc>>24&0xff] ^
			t[3][crc>>32&0xff] ^ t[2][crc>>40&0xff] ^ t[1][crc>>48&0xff] ^ t[0][crc>>56]
		p = p[8:]
	}
	for _, b := range p {
		crc = t[0][byte(crc)^b] ^ crc>>8
	}
	return ^crc
}
