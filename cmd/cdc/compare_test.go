package main

import (
	"fmt"
	"slices"
	"testing"
)

// The topic materializes to the last value per key, a tombstone removes the
// key, and each key of the table is then missing, matched, differing or a
// duplicate; topic keys no row claimed are extra. The answer must not depend
// on how many buckets the entries were spread over.
func TestComparisonFindsMissingExtraDifferingAndDuplicateKeys(t *testing.T) {
	for _, expected := range []int64{0, 50 * keysPerBucket} {
		t.Run(fmt.Sprintf("expected_%d", expected), func(t *testing.T) {
			c, err := newComparison(t.TempDir(), expected)
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			topic := [][2]string{
				{"k1", "v1"}, {"k2", "v2"}, {"k2", ""}, {"k3", "v3"}, {"k4", "old"}, {"k4", "v4"},
				{"k6", "v6"}, {"k7", ""}, {"k8", "v8"}, {"k8", ""}, {"k8", "v8 again"}, {"k9", "empty value follows"}, {"k9", "\x00"},
			}
			for _, kv := range topic {
				var value []byte // a tombstone
				if kv[1] != "" {
					value = []byte(kv[1])
				}
				if err := c.add(sideTopic, []byte(kv[0]), value); err != nil {
					t.Fatal(err)
				}
			}
			table := [][2]string{{"k1", "v1"}, {"k2", "v2"}, {"k3", "v3 changed"}, {"k4", "v4"}, {"k5", "v5"}, {"k1", "v1"}, {"k8", "v8 again"}, {"k9", "\x00"}}
			for _, kv := range table {
				if err := c.add(sideTable, []byte(kv[0]), []byte(kv[1])); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			result, err := c.compare(func(d difference, key, topicValue, tableValue []byte) {
				got = append(got, fmt.Sprintf("%s %s topic=%q table=%q", d, key, topicValue, tableValue))
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			want := []string{
				`differing k3 topic="v3" table="v3 changed"`,
				`duplicate key k1 topic="v1" table="v1"`,
				`extra k6 topic="v6" table=""`,
				`missing k2 topic="" table="v2"`,
				`missing k5 topic="" table="v5"`,
			}
			if !slices.Equal(got, want) {
				t.Errorf("differences:\n%q\nwant:\n%q", got, want)
			}
			if result.TopicKeys != 6 || result.TableRows != 8 {
				t.Errorf("%d topic keys and %d table rows, want 6 (k1 k3 k4 k6 k8 k9) and 8", result.TopicKeys, result.TableRows)
			}
			if n := result.differences(); n != 5 {
				t.Errorf("%d differences, want 5", n)
			}
		})
	}
}
