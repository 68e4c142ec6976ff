package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// A comparison holds an entity topic's records and the entity's projection of
// its table, spilled to files by a hash of the key, and compares the two one
// bucket at a time: memory holds one bucket's keys and values, however large
// the table. Buckets are sized from the expected number of records.
type comparison struct {
	buckets []spillFile
}

type spillFile struct {
	f *os.File
	w *bufio.Writer
}

// side says which of the two an entry comes from.
type side byte

const (
	sideTopic side = iota
	sideTable
)

// keysPerBucket keeps a bucket (keys, values, map overhead) to a few tens of
// megabytes with records of a few hundred bytes.
const (
	keysPerBucket = 100_000
	maxBuckets    = 1024
)

// newComparison creates the spill files of a comparison in dir, for about
// expected records.
func newComparison(dir string, expected int64) (*comparison, error) {
	n := int(min(max(expected/keysPerBucket+1, 1), maxBuckets))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &comparison{}
	for i := range n {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("bucket-%04d", i)))
		if err != nil {
			c.close()
			return nil, err
		}
		c.buckets = append(c.buckets, spillFile{f: f, w: bufio.NewWriterSize(f, 16<<10)})
	}
	return c, nil
}

// add appends an entry. Topic entries must all come before table entries, each
// key's topic entries in offset order; a nil value is a tombstone.
func (c *comparison) add(s side, key, value []byte) error {
	w := c.buckets[fnv1a(key)%uint64(len(c.buckets))].w
	var head [1 + 2*binary.MaxVarintLen64]byte
	head[0] = byte(s)
	n := 1 + binary.PutUvarint(head[1:], uint64(len(key)))
	valueLen := uint64(0) // a tombstone
	if value != nil {
		valueLen = uint64(len(value)) + 1
	}
	n += binary.PutUvarint(head[n:], valueLen)
	w.Write(head[:n])
	w.Write(key)
	_, err := w.Write(value)
	return err
}

// fnv1a is the 64-bit FNV-1a hash, computed in place: hash/fnv's hasher
// escapes to the heap, one allocation per record compared.
func fnv1a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// difference is how a key differs between topic and table.
type difference uint8

const (
	// missing: the table has a row for the key, the topic has no live record.
	missing difference = iota
	// extra: the topic has a live record for a key the table has no row for.
	extra
	// differing: both have the key, with different values.
	differing
	// duplicated: the table gives the key to more than one row.
	duplicated
	differences
)

var differenceNames = [differences]string{missing: "missing", extra: "extra", differing: "differing", duplicated: "duplicate key"}

func (d difference) String() string { return differenceNames[d] }

// compared counts what a comparison found.
type compared struct {
	TopicKeys, TableRows int64
	Found                [differences]int64
}

func (c compared) differences() int64 {
	var n int64
	for _, f := range c.Found {
		n += f
	}
	return n
}

// compare reads the buckets back and calls found for each difference, with the
// topic's value and the table's (nil where absent).
func (c *comparison) compare(found func(d difference, key, topicValue, tableValue []byte)) (compared, error) {
	var out compared
	for _, b := range c.buckets {
		if err := b.w.Flush(); err != nil {
			return out, err
		}
		if _, err := b.f.Seek(0, io.SeekStart); err != nil {
			return out, err
		}
		if err := compareBucket(bufio.NewReaderSize(b.f, 64<<10), &out, found); err != nil {
			return out, fmt.Errorf("read back %s: %w", b.f.Name(), err)
		}
	}
	return out, nil
}

type topicEntry struct {
	value   []byte
	matched bool
}

func compareBucket(r *bufio.Reader, out *compared, found func(d difference, key, topicValue, tableValue []byte)) error {
	live := map[string]*topicEntry{}
	for {
		s, key, value, err := readEntry(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if s == sideTopic {
			if value == nil {
				delete(live, string(key))
			} else {
				live[string(key)] = &topicEntry{value: value}
			}
			continue
		}
		out.TableRows++
		e, ok := live[string(key)]
		switch {
		case !ok:
			out.Found[missing]++
			found(missing, key, nil, value)
		case e.matched:
			out.Found[duplicated]++
			found(duplicated, key, e.value, value)
		default:
			e.matched = true
			if !bytes.Equal(e.value, value) {
				out.Found[differing]++
				found(differing, key, e.value, value)
			}
		}
	}
	out.TopicKeys += int64(len(live))
	var unmatched []string
	for k, e := range live {
		if !e.matched {
			unmatched = append(unmatched, k)
		}
	}
	slices.Sort(unmatched) // the same examples on every run
	for _, k := range unmatched {
		out.Found[extra]++
		found(extra, []byte(k), live[k].value, nil)
	}
	return nil
}

func readEntry(r *bufio.Reader) (side, []byte, []byte, error) {
	s, err := r.ReadByte()
	if err != nil {
		return 0, nil, nil, err
	}
	keyLen, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, nil, io.ErrUnexpectedEOF
	}
	valueLen, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, nil, io.ErrUnexpectedEOF
	}
	buf := make([]byte, keyLen+max(valueLen, 1)-1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, nil, io.ErrUnexpectedEOF
	}
	key, value := buf[:keyLen], buf[keyLen:]
	if valueLen == 0 {
		value = nil
	}
	return side(s), key, value, nil
}

// close removes the spill files.
func (c *comparison) close() {
	for _, b := range c.buckets {
		b.f.Close()
		os.Remove(b.f.Name())
	}
}
