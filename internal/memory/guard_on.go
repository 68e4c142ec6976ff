//go:build cdcguard

package memory

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// Guarded says that this build guards released memory (see guard.go).
const Guarded = true

// newChunk returns an empty chunk of capacity n. Chunks of bytes are mapped
// apart from the Go heap, so that releasing them can make them unreadable.
func newChunk[T any](n int) []T {
	var zero T
	if _, isBytes := any(zero).(byte); !isBytes {
		return make([]T, 0, n)
	}
	data := mapPages(n)
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(data))), len(data))[:0:n]
}

func mapPages(n int) []byte {
	page := os.Getpagesize()
	size := (max(n, 1) + page - 1) / page * page
	data, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		panic(fmt.Sprintf("cdcguard: map %d bytes: %v", size, err))
	}
	return data
}

// protect gives a chunk of bytes back to the system and makes its addresses
// unreadable for the rest of the process: a read faults.
func protect(chunk []byte) {
	whole := unsafe.Slice(unsafe.SliceData(chunk), (cap(chunk)+os.Getpagesize()-1)/os.Getpagesize()*os.Getpagesize())
	if err := syscall.Madvise(whole, syscall.MADV_DONTNEED); err != nil {
		panic(fmt.Sprintf("cdcguard: give back a released chunk: %v", err))
	}
	if err := syscall.Mprotect(whole, syscall.PROT_NONE); err != nil {
		panic(fmt.Sprintf("cdcguard: protect a released chunk: %v", err))
	}
}

// poisoned is a whole page: a struct read through a pointer to it faults.
var poisoned = func() []byte {
	page := mapPages(1)
	protect(page)
	return page
}()

// Poisoned returns bytes whose reading faults: what the bytes of a released
// value or record become.
func Poisoned() []byte { return poisoned }
