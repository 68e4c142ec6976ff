//go:build !cdcguard

package memory

// Guarded says that this build guards released memory (see guard.go).
const Guarded = false

func newChunk[T any](n int) []T { return make([]T, 0, n) }

func protect([]byte) {}

// Poisoned returns bytes whose reading faults in a guarded build: what the
// bytes of a released value or record become. Nil in other builds.
func Poisoned() []byte { return nil }
