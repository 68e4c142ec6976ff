package sink

import (
	"math/rand"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The hashes come from the Java client's own test (UtilsTest.testMurmur2).
func TestMurmur2MatchesJavaClient(t *testing.T) {
	cases := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for key, want := range cases {
		if got := murmur2([]byte(key)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", key, got, want)
		}
		// The Java client's partition: Utils.toPositive(hash) % n.
		for _, n := range []int32{1, 3, 12} {
			if got, want := partitionFor([]byte(key), n), int32(uint32(want)&0x7fffffff)%n; got != want {
				t.Errorf("partition(%q, %d) = %d, want %d", key, n, got, want)
			}
		}
	}
}

// franz-go's sticky key partitioner is documented to match the Java client: an
// independent implementation to compare against on arbitrary keys.
func TestPartitionsAgreeWithFranzGo(t *testing.T) {
	franz := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		key := make([]byte, rng.Intn(40))
		rng.Read(key)
		n := int32(1 + rng.Intn(64))
		want := int32(franz.Partition(&kgo.Record{Key: key}, int(n)))
		if got := partitionFor(key, n); got != want {
			t.Fatalf("key %x over %d partitions: got %d, franz-go %d", key, n, got, want)
		}
	}
}
