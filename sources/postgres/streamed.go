package postgres

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync/atomic"

	"github.com/jackc/pglogrepl"
)

// With streaming on (protocol 2), the server sends a transaction larger than
// its logical_decoding_work_mem while it is decoded, in blocks between Stream
// Start and Stream Stop messages, interleaved with other transactions, and
// ends it with Stream Commit or Stream Abort. cdc holds a streamed
// transaction's messages until its commit and then reads them as if the
// transaction had been sent whole at its commit: its changes get the same
// positions, and so the same event ids, as without streaming. A restart in
// the middle of a streamed transaction loses nothing: the server streams it
// again from its start, since its commit is past the slot's position.

// DefaultStreamedMemory is how many bytes of streamed transactions in progress
// are held in memory, all together; the rest goes to a file.
const DefaultStreamedMemory = 64 << 20

// heldRecordHeader is the subtransaction's xid and the message's length.
const heldRecordHeader = 8

// Held messages are appended to blocks of memory growing from firstSlab to
// slabSize bytes: most streamed transactions are small when the server's
// logical_decoding_work_mem is, and a few are large.
const firstSlab, slabSize = 64 << 10, 1 << 20

// streamedTransactions holds the transactions being streamed.
type streamedTransactions struct {
	// memoryLimit bounds the bytes held in memory, all transactions together.
	memoryLimit int64
	// dir holds the files of transactions past the limit; "": the system's.
	dir string
	// held is read by the metrics (see Source.Held).
	held     *heldBytes
	byXid    map[uint32]*heldTransaction
	inMemory int64
	onDisk   int64
	// spilling is told of each transaction that goes to disk.
	spilling func(xid uint32)
}

type heldBytes struct{ memory, disk atomic.Int64 }

// heldTransaction is the messages of one streamed transaction, each with the
// (sub)transaction that wrote it: first in memory, then, once the memory
// limit is reached, in a file that is unlinked as soon as it is created, so
// that nothing is left behind by a crash.
type heldTransaction struct {
	// first is the LSN of its first change.
	first       pglogrepl.LSN
	slabs       [][]byte
	memoryBytes int64
	file        *os.File
	writer      *bufio.Writer
	diskBytes   int64
	// aborted are the subtransactions rolled back: their changes are
	// dropped, as the server drops them from a transaction it sends whole.
	aborted map[uint32]bool
}

func newStreamedTransactions(memoryLimit int64, dir string, held *heldBytes, spilling func(xid uint32)) *streamedTransactions {
	return &streamedTransactions{memoryLimit: memoryLimit, dir: dir, held: held, byXid: map[uint32]*heldTransaction{}, spilling: spilling}
}

// start begins or continues a block of the transaction xid's messages;
// firstLSN is where the block starts.
func (ts *streamedTransactions) start(xid uint32, first bool, firstLSN pglogrepl.LSN) *heldTransaction {
	if t := ts.byXid[xid]; t != nil {
		if !first {
			return t
		}
		ts.drop(xid) // not expected: the server starts it over
	}
	t := &heldTransaction{first: firstLSN}
	ts.byXid[xid] = t
	return t
}

// oldest is the first LSN of the oldest transaction held, or the largest LSN
// when none is.
func (ts *streamedTransactions) oldest() pglogrepl.LSN {
	oldest := pglogrepl.LSN(math.MaxUint64)
	for _, t := range ts.byXid {
		oldest = min(oldest, t.first)
	}
	return oldest
}

// hold appends a message of subtransaction subxid to t: its kind, then its
// body.
func (ts *streamedTransactions) hold(xid uint32, t *heldTransaction, subxid uint32, kind byte, body []byte) error {
	size := int64(heldRecordHeader + 1 + len(body))
	var header [heldRecordHeader + 1]byte
	binary.BigEndian.PutUint32(header[:4], subxid)
	binary.BigEndian.PutUint32(header[4:], uint32(1+len(body)))
	header[heldRecordHeader] = kind
	if t.file == nil && ts.inMemory+size <= ts.memoryLimit {
		last := len(t.slabs) - 1
		if last < 0 || len(t.slabs[last])+int(size) > cap(t.slabs[last]) {
			grown := firstSlab
			if last >= 0 {
				grown = min(slabSize, 2*cap(t.slabs[last]))
			}
			t.slabs = append(t.slabs, make([]byte, 0, max(grown, int(size))))
			last++
		}
		t.slabs[last] = append(append(t.slabs[last], header[:]...), body...)
		t.memoryBytes += size
		ts.inMemory += size
		ts.held.memory.Store(ts.inMemory)
		return nil
	}
	if t.file == nil {
		f, err := os.CreateTemp(ts.dir, "cdc-streamed-transaction-*")
		if err != nil {
			return spillError(xid, err)
		}
		_ = os.Remove(f.Name()) // open, it stays readable; closed, it is gone
		t.file, t.writer = f, bufio.NewWriterSize(f, 1<<16)
		ts.spilling(xid)
	}
	if _, err := t.writer.Write(header[:]); err != nil {
		return spillError(xid, err)
	}
	if _, err := t.writer.Write(body); err != nil {
		return spillError(xid, err)
	}
	t.diskBytes += size
	ts.onDisk += size
	ts.held.disk.Store(ts.onDisk)
	return nil
}

func spillError(xid uint32, err error) error {
	return fmt.Errorf("hold the streamed transaction %d on disk: %w; give source.postgres.spill_directory room for the largest transaction (about its WAL size), or more memory with source.postgres.streaming_memory_mib: the server sends the transaction again when cdc starts again", xid, err)
}

// abort drops the changes of subtransaction subxid of xid, or the whole
// transaction when subxid is xid.
func (ts *streamedTransactions) abort(xid, subxid uint32) {
	t := ts.byXid[xid]
	switch {
	case t == nil: // streamed before a restart, or nothing held
	case xid == subxid:
		ts.drop(xid)
	default:
		if t.aborted == nil {
			t.aborted = map[uint32]bool{}
		}
		t.aborted[subxid] = true
	}
}

// drop forgets a transaction and frees what it held.
func (ts *streamedTransactions) drop(xid uint32) {
	t := ts.byXid[xid]
	if t == nil {
		return
	}
	delete(ts.byXid, xid)
	ts.inMemory -= t.memoryBytes
	ts.onDisk -= t.diskBytes
	ts.held.memory.Store(ts.inMemory)
	ts.held.disk.Store(ts.onDisk)
	if t.file != nil {
		_ = t.file.Close()
	}
}

// close frees every transaction held.
func (ts *streamedTransactions) close() {
	for xid := range ts.byXid {
		ts.drop(xid)
	}
}

// replay calls fn with each message held, in order, but the changes of
// aborted subtransactions. Their relation and type messages stay: the server
// sends a table's shape once in a transaction, and it still describes the
// changes that follow. msg is valid only during the call.
func (t *heldTransaction) replay(fn func(msg []byte) error) error {
	visit := func(subxid uint32, msg []byte) error {
		if t.aborted[subxid] && msg[0] != 'R' && msg[0] != 'Y' {
			return nil
		}
		return fn(msg)
	}
	for _, slab := range t.slabs {
		for len(slab) > 0 {
			subxid := binary.BigEndian.Uint32(slab)
			n := int(binary.BigEndian.Uint32(slab[4:]))
			if err := visit(subxid, slab[heldRecordHeader:heldRecordHeader+n]); err != nil {
				return err
			}
			slab = slab[heldRecordHeader+n:]
		}
	}
	if t.file == nil {
		return nil
	}
	if err := t.writer.Flush(); err != nil {
		return fmt.Errorf("write a streamed transaction held on disk: %w", err)
	}
	if _, err := t.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read a streamed transaction held on disk: %w", err)
	}
	r := bufio.NewReaderSize(t.file, 1<<16)
	var header [heldRecordHeader]byte
	var msg []byte
	for {
		if _, err := io.ReadFull(r, header[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read a streamed transaction held on disk: %w", err)
		}
		n := int(binary.BigEndian.Uint32(header[4:]))
		if cap(msg) < n {
			msg = make([]byte, n)
		}
		msg = msg[:n]
		if _, err := io.ReadFull(r, msg); err != nil {
			return fmt.Errorf("read a streamed transaction held on disk: %w", err)
		}
		if err := visit(binary.BigEndian.Uint32(header[:4]), msg); err != nil {
			return err
		}
	}
}

// streamMessage handles the messages that frame a streamed transaction.
func (st *streamer) streamMessage(ctx context.Context, data []byte) error {
	switch data[0] {
	case 'S':
		if len(data) < 6 {
			return fmt.Errorf("decode pgoutput Stream Start message: %w", errShortMessage)
		}
		st.blockXid = binary.BigEndian.Uint32(data[1:5])
		st.block = st.streamed.start(st.blockXid, data[5] == 1, st.walStart)
		return nil
	case 'E':
		st.block = nil
		return nil
	}
	msg, err := pglogrepl.ParseV2(data, false)
	if err != nil {
		return fmt.Errorf("decode pgoutput message: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.StreamAbortMessageV2:
		st.streamed.abort(m.Xid, m.SubXid)
	case *pglogrepl.StreamCommitMessageV2:
		return st.streamCommit(ctx, m)
	}
	return nil
}

// hold keeps a message of the block under way until its transaction ends.
// In a block, the messages of a transaction's changes carry, after their
// kind, the xid of the (sub)transaction that wrote them; they are held
// without it, as the server sends them in a transaction sent whole.
func (st *streamer) hold(data []byte) error {
	switch data[0] {
	case 'R', 'Y', 'I', 'U', 'D', 'T', 'M':
	case 'O':
		return nil // the origin of the transaction's changes, which cdc does not filter on
	default:
		return fmt.Errorf("pgoutput message %q inside the streamed transaction %d's block", data[0], st.blockXid)
	}
	if len(data) < 5 {
		return fmt.Errorf("decode pgoutput %c message of a streamed transaction: %w", data[0], errShortMessage)
	}
	return st.streamed.hold(st.blockXid, st.block, binary.BigEndian.Uint32(data[1:5]), data[0], data[5:])
}

// streamCommit reads a streamed transaction's messages at its commit, as if
// the server had sent it whole then.
func (st *streamer) streamCommit(ctx context.Context, m *pglogrepl.StreamCommitMessageV2) error {
	st.inTxn, st.txn, st.commitTime, st.xid = true, Position{LSN: m.CommitLSN, Backfill: st.backfill.Fill}, m.CommitTime, m.Xid
	st.transaction = ""
	if t := st.streamed.byXid[m.Xid]; t != nil {
		err := t.replay(func(msg []byte) error {
			if err := st.maybeReportStatus(false); err != nil {
				return err
			}
			return st.handleMessage(ctx, msg)
		})
		st.streamed.drop(m.Xid)
		if err != nil {
			return err
		}
	}
	st.inTxn = false
	return st.flush(ctx)
}
