package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cdc-dev/cdc"
)

// The stream reads pgoutput's Insert, Update and Delete messages itself:
// pglogrepl's parser allocates a struct and a copy for every column of every
// row, which cost more than a quarter of a backlog drain. The other messages,
// rare, are still pglogrepl's.

// rowMessage is one Insert ('I'), Update ('U') or Delete ('D') message of
// pgoutput's protocol 1. Its columns' bytes are the message's: valid until
// the next message is received unless the message was copied first.
type rowMessage struct {
	op cdc.Op
	// oldKind is 'O' when old is the whole old row (REPLICA IDENTITY FULL),
	// 'K' when only its key, and 0 when the message has no old row.
	oldKind  byte
	old, new []tupleColumn // new is empty for a delete
}

// tupleColumn is one column of a row: kind 'n' (NULL), 'u' (an unchanged
// TOASTed value, not sent), 't' (text) or 'b' (binary), and its bytes.
type tupleColumn struct {
	kind byte
	data []byte
}

var errShortMessage = errors.New("the message ends early")

// parse reads data into m, reusing m's column buffers; the relation id
// (bytes 1 to 4) is read by the caller.
func (m *rowMessage) parse(data []byte) error {
	if len(data) < 6 {
		return errShortMessage
	}
	switch data[0] {
	case 'I':
		m.op = cdc.OpInsert
	case 'U':
		m.op = cdc.OpUpdate
	case 'D':
		m.op = cdc.OpDelete
	default:
		return fmt.Errorf("not a row message: %q", data[0])
	}
	m.oldKind = 0
	m.old, m.new = m.old[:0], m.new[:0]
	rest := data[5:]
	var err error
	if m.op != cdc.OpInsert && (rest[0] == 'K' || rest[0] == 'O') {
		m.oldKind = rest[0]
		if m.old, rest, err = readTuple(rest[1:], m.old); err != nil {
			return err
		}
	}
	switch {
	case m.op == cdc.OpDelete:
		if m.oldKind == 0 {
			return fmt.Errorf("a delete without its old row (%q)", rest[:1])
		}
	case len(rest) == 0 || rest[0] != 'N':
		return fmt.Errorf("no new row in the %c message", data[0])
	default:
		if m.new, rest, err = readTuple(rest[1:], m.new); err != nil {
			return err
		}
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d bytes after the %c message's rows", len(rest), data[0])
	}
	return nil
}

// readTuple reads a row: a column count, then each column's kind and, for
// text and binary values, their length and bytes.
func readTuple(data []byte, out []tupleColumn) ([]tupleColumn, []byte, error) {
	if len(data) < 2 {
		return nil, nil, errShortMessage
	}
	n := int(binary.BigEndian.Uint16(data))
	data = data[2:]
	for range n {
		if len(data) < 1 {
			return nil, nil, errShortMessage
		}
		c := tupleColumn{kind: data[0]}
		data = data[1:]
		switch c.kind {
		case 'n', 'u':
		case 't', 'b':
			if len(data) < 4 {
				return nil, nil, errShortMessage
			}
			size := int(binary.BigEndian.Uint32(data))
			if size < 0 || len(data)-4 < size {
				return nil, nil, errShortMessage
			}
			c.data, data = data[4:4+size:4+size], data[4+size:]
		default:
			return nil, nil, fmt.Errorf("unknown column kind %q", c.kind)
		}
		out = append(out, c)
	}
	return out, data, nil
}
