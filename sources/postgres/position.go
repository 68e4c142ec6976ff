package postgres

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"

	"github.com/cdc-dev/cdc"
)

// Position is a point in the logical replication stream: the LSN of a
// transaction's commit record and the 1-based index of a change inside that
// transaction. Index 0 stands before the first change of the commit at LSN: a
// heartbeat or the end of a snapshot, where nothing at LSN itself was seen yet.
//
// A snapshot under way is stored at the slot's consistent point with the
// cursor of the chunks read so far: a restart reads the rest and then streams
// from the consistent point. A backfill under way travels in every position of
// the stream until it is done.
type Position struct {
	LSN      pglogrepl.LSN
	Index    uint32
	Cursor   *cdc.SnapshotCursor
	Backfill *cdc.Backfill
}

// String formats the position so that text order is log order:
// "00000000/016B3748:0000000005" (the LSN's two halves zero-padded, then the index),
// followed by " cursor=..." during a snapshot.
func (p Position) String() string {
	// Every streamed change carries one: written without fmt, in one allocation.
	var b strings.Builder
	b.Grow(28)
	var text [28]byte
	const hex = "0123456789ABCDEF"
	for i, v := 0, uint64(p.LSN); i < 16; i, v = i+1, v<<4 {
		text[i+i/8] = hex[v>>60] // the halves at 0-7 and 9-16
	}
	text[8], text[17] = '/', ':'
	for i, v := 27, p.Index; i > 17; i, v = i-1, v/10 {
		text[i] = byte('0' + v%10) // an uint32 has at most 10 digits
	}
	b.Write(text[:])
	if p.Cursor != nil {
		b.WriteString(" cursor=" + p.Cursor.String())
	}
	if p.Backfill != nil {
		b.WriteString(" backfill=" + p.Backfill.String())
	}
	return b.String()
}

// ParsePosition reads the form String writes.
func ParsePosition(s string) (Position, error) {
	var backfill *cdc.Backfill
	if base, rest, ok := strings.Cut(s, " backfill="); ok {
		b, err := cdc.ParseBackfill(rest)
		if err != nil {
			return Position{}, fmt.Errorf("postgres position %q: %w", s, err)
		}
		s, backfill = base, &b
	}
	var cursor *cdc.SnapshotCursor
	if base, rest, ok := strings.Cut(s, " cursor="); ok {
		c, err := cdc.ParseSnapshotCursor(rest)
		if err != nil {
			return Position{}, fmt.Errorf("postgres position %q: %w", s, err)
		}
		s, cursor = base, &c
	}
	if len(s) != 28 || s[8] != '/' || s[17] != ':' {
		return Position{}, fmt.Errorf("postgres position %q: want 00000000/00000000:0000000000", s)
	}
	hi, err1 := strconv.ParseUint(s[:8], 16, 32)
	lo, err2 := strconv.ParseUint(s[9:17], 16, 32)
	idx, err3 := strconv.ParseUint(s[18:], 10, 32)
	if err1 != nil || err2 != nil || err3 != nil {
		return Position{}, fmt.Errorf("postgres position %q: want 00000000/00000000:0000000000", s)
	}
	return Position{LSN: pglogrepl.LSN(hi<<32 | lo), Index: uint32(idx), Cursor: cursor, Backfill: backfill}, nil
}

func (p Position) cdc() cdc.Position { return cdc.Position(p.String()) }

// after reports whether p comes strictly after q in the log.
func (p Position) after(q Position) bool {
	return p.LSN > q.LSN || (p.LSN == q.LSN && p.Index > q.Index)
}
