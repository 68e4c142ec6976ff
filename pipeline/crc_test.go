package pipeline

import (
	"hash/crc64"
	"math/rand/v2"
	"testing"
)

// Event ids must not change: the slicing-by-8 CRCs equal hash/crc64's for
// every length, split anywhere.
func TestCRC64TableMatchesHashCRC64(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, poly := range []uint64{crc64.ISO, crc64.ECMA} {
		ours, std := makeCRC64Table(poly), crc64.MakeTable(poly)
		for n := range 300 {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			seed := rng.Uint64()
			split := rng.IntN(n + 1)
			got := ours.update(ours.update(seed, p[:split]), p[split:])
			if want := crc64.Update(seed, std, p); got != want {
				t.Fatalf("polynomial %x, %d bytes split at %d: %x, hash/crc64 says %x", poly, n, split, got, want)
			}
		}
	}
}
