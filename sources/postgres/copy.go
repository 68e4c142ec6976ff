package postgres

import (
	"bytes"
	"fmt"

	"github.com/cdc-dev/cdc/internal/memory"
)

// copyParser reads COPY ... TO STDOUT in text format (the default): one row per
// line, columns separated by tabs, \N for NULL, backslash escapes for tab,
// newline, backslash and other control characters. Unescaped, each column is
// exactly the type's text output, the same text logical replication sends, so one
// set of decoders serves snapshot and stream.
//
// It is an io.Writer for pgconn.CopyTo. onRow may block (back-pressure): the
// server then waits on its side of the COPY.
type copyParser struct {
	columns int
	partial []byte // a line split across Write calls
	onRow   func(fields [][]byte) error
	fields  [][]byte      // reused; a nil field is NULL
	arena   *memory.Arena // holds the fields the rows are made of
}

func (p *copyParser) Write(data []byte) (int, error) {
	n := len(data)
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			p.partial = append(p.partial, data...)
			break
		}
		line := data[:i]
		if len(p.partial) > 0 {
			line = append(p.partial, line...)
			p.partial = p.partial[:0]
		}
		if err := p.row(line); err != nil {
			return 0, err
		}
		data = data[i+1:]
	}
	return n, nil
}

// row splits and unescapes one line in a copy carved from the arena, which the
// row's values may keep referring to.
func (p *copyParser) row(line []byte) error {
	line = p.arena.Copy(line)
	escaped := bytes.IndexByte(line, '\\') >= 0 // most rows have no NULL and nothing to unescape
	p.fields = p.fields[:0]
	for {
		field, rest, more := bytes.Cut(line, []byte{'\t'})
		switch {
		case !escaped || bytes.IndexByte(field, '\\') < 0: // the field as it is
		case len(field) == 2 && field[0] == '\\' && field[1] == 'N':
			field = nil
		default:
			// Unescaping only shortens a field: it is done in place.
			field = unescapeCopy(field[:0], field)
		}
		p.fields = append(p.fields, field[:len(field):len(field)])
		if !more {
			break
		}
		line = rest
	}
	if len(p.fields) != p.columns {
		return fmt.Errorf("COPY row has %d columns, want %d", len(p.fields), p.columns)
	}
	return p.onRow(p.fields)
}

// unescapeCopy appends src unescaped to dst. It never writes dst past the
// byte of src it is reading, so src may be unescaped in place (dst = src[:0]).
func unescapeCopy(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != '\\' || i+1 == len(src) {
			dst = append(dst, c)
			continue
		}
		i++
		switch c = src[i]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case 'x':
			v, n := 0, 0
			for ; n < 2 && i+1 < len(src) && isHex(src[i+1]); n++ {
				i++
				v = v<<4 | hexValue(src[i])
			}
			if n == 0 {
				dst = append(dst, 'x')
			} else {
				dst = append(dst, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '7'; n++ {
				i++
				v = v<<3 | int(src[i]-'0')
			}
			dst = append(dst, byte(v))
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexValue(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}
