package cdc

// Arena hands out rows of values and byte buffers carved from larger chunks,
// so that decoding a batch of rows costs a few allocations instead of several
// per row. A chunk is never reused: the garbage collector frees it once nothing
// refers to any part of it. The zero Arena is ready; it is not safe for
// concurrent use.
type Arena struct {
	values []Value
	bytes  []byte
}

const (
	arenaValues = 4096     // values per chunk (160 KiB)
	arenaBytes  = 64 << 10 // bytes per chunk
)

// Row returns n NULL values.
func (a *Arena) Row(n int) []Value { return carve(&a.values, n, arenaValues) }

// Bytes returns a buffer of n bytes.
func (a *Arena) Bytes(n int) []byte { return carve(&a.bytes, n, arenaBytes) }

// carve cuts n elements off the chunk, starting a new chunk of size when it
// has too few left; a request above an eighth of a chunk gets its own slice.
func carve[T any](chunk *[]T, n, size int) []T {
	if cap(*chunk)-len(*chunk) < n {
		if n > size/8 {
			return make([]T, n)
		}
		*chunk = make([]T, 0, size)
	}
	start := len(*chunk)
	*chunk = (*chunk)[:start+n]
	return (*chunk)[start : start+n : start+n]
}

// Copy returns a copy of b carved from the arena.
func (a *Arena) Copy(b []byte) []byte {
	out := a.Bytes(len(b))
	copy(out, b)
	return out
}

// CopyString returns the bytes of s carved from the arena.
func (a *Arena) CopyString(s string) []byte {
	out := a.Bytes(len(s))
	copy(out, s)
	return out
}
