package mysql

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/sources/internal/reread"
)

// An XA transaction is logged in two parts: at XA PREPARE, its rows (MariaDB:
// after a GTID event flagged as a prepared XA; MySQL: after XA START), closed
// by an XA_PREPARE_LOG_EVENT; later, as a transaction of its own, XA COMMIT
// or XA ROLLBACK with its XID. Its rows become real at the XA COMMIT, and are
// sent there, as that transaction's changes; XA ROLLBACK drops them. A
// one-phase commit is an ordinary transaction (MariaDB) or a prepare event
// that says so (MySQL).
//
// While any is prepared, every position sent carries the boundary before the
// oldest one's prepare (Position.Prepared), so that a restart reads their
// rows again.

// mariadbPreparedXA is MariaDB's GTID event flag FL_PREPARED_XA: the
// transaction's rows are an XA PREPARE's.
const mariadbPreparedXA = 64

// xaTransaction is a prepared XA transaction's rows.
type xaTransaction struct {
	xid     string
	start   Boundary // before its prepare
	changes []cdc.Change
}

func (st *streamer) startXA() {
	if st.xa == nil {
		st.xa = &xaTransaction{start: st.txnStart.boundary()}
	}
}

// oldestPrepared is the boundary a restart must read the binlog from for the
// prepared XA transactions' rows, nil if none is prepared.
func (st *streamer) oldestPrepared() *Boundary {
	if len(st.prepared) == 0 {
		return nil
	}
	b := st.prepared[0].start
	return &b
}

// prepare handles an XA_PREPARE_LOG_EVENT: the end of an XA transaction's
// prepared rows, which are kept for its XA COMMIT; or, one-phase, its commit.
func (st *streamer) prepare(ctx context.Context, data []byte, end uint32) error {
	onePhase, xid, err := parseXAPrepare(data)
	if err != nil {
		return fmt.Errorf("the XA PREPARE at %s: %w", st.txnStart, err)
	}
	st.startXA() // a prepare without rows
	if onePhase {
		return st.commitXA(ctx, st.xa, nil, end)
	}
	st.xa.xid = xid
	st.prepared = append(st.prepared, st.xa)
	st.endTransaction(nil, end)
	return nil
}

// xaStatement handles the XA statements of the binlog: XA START opens a
// MySQL XA transaction's rows; XA COMMIT sends a prepared one's rows; XA
// ROLLBACK drops them.
func (st *streamer) xaStatement(ctx context.Context, q string, gset mysql.GTIDSet, end uint32) error {
	fields := strings.Fields(strings.ToUpper(q))
	verb := fields[1]
	switch verb {
	case "START", "BEGIN":
		st.begin()
		st.begun = true
		st.startXA()
		return nil
	case "END", "PREPARE":
		return nil
	case "COMMIT", "ROLLBACK":
	default:
		return nil
	}
	xid, err := parseXID(q)
	if err != nil {
		return fmt.Errorf("the statement %q at %s: %w", clip(q), st.txnStart, err)
	}
	if verb == "COMMIT" && strings.HasSuffix(strings.Join(fields, " "), "ONE PHASE") {
		st.startXA()
		return st.commitXA(ctx, st.xa, gset, end)
	}
	st.begin()
	i := slices.IndexFunc(st.prepared, func(x *xaTransaction) bool { return x.xid == xid })
	switch {
	case i >= 0 && verb == "COMMIT":
		return st.commitXA(ctx, st.prepared[i], gset, end)
	case i >= 0:
		st.prepared = slices.Delete(st.prepared, i, i+1)
	case verb == "COMMIT" && !st.replaying:
		return fmt.Errorf("XA COMMIT %s at %s commits an XA transaction whose rows cdc did not read: it was prepared before the position cdc started streaming from (the snapshot, or snapshot.mode never, began while it was prepared), so its rows are not in the topics. %s",
			xid, st.txnStart, startOver)
	}
	return st.commit(ctx, gset, end)
}

// commitXA sends an XA transaction's rows as the changes of the current
// transaction, and ends it. Until the end, it stays among the prepared: a
// position inside the transaction must still lead a restart to its rows.
func (st *streamer) commitXA(ctx context.Context, x *xaTransaction, gset mysql.GTIDSet, end uint32) error {
	if !st.replaying {
		for _, c := range x.changes {
			st.row++
			if st.row <= st.skip {
				continue
			}
			pos := st.txnStart
			pos.Row = st.row
			own := pos
			own.Backfill = nil
			c.Position, c.Transaction = own.cdc(), st.transactionID() // the XA COMMIT's
			st.backfill.Touch(c.Table, c.Before, c.After)
			st.captured = true
			st.incomplete = st.incomplete || reread.Lacks(&c)
			if st.batch == nil {
				st.batch = st.memory.Changes(st.s.cfg.BatchSize)
			}
			st.batch = append(st.batch, c)
			if len(st.batch) >= st.s.cfg.BatchSize {
				if err := st.send(ctx, pos, false); err != nil {
					return err
				}
			}
		}
	}
	st.prepared = slices.DeleteFunc(st.prepared, func(p *xaTransaction) bool { return p == x })
	st.xa = nil
	return st.commit(ctx, gset, end)
}

// ownedChange copies a change's values out of the batches' memory, which is
// reused once a batch is released.
func ownedChange(c cdc.Change) cdc.Change {
	own := func(row []cdc.Value) []cdc.Value {
		if row == nil {
			return nil
		}
		out := slices.Clone(row)
		for i := range out {
			out[i].Bytes = slices.Clone(out[i].Bytes)
		}
		return out
	}
	c.Before, c.After = own(c.Before), own(c.After)
	return c
}

// parseXAPrepare reads an XA_PREPARE_LOG_EVENT: one-phase flag, format id,
// lengths of the global transaction id and the branch qualifier, and both.
func parseXAPrepare(data []byte) (onePhase bool, xid string, err error) {
	if len(data) < 13 {
		return false, "", fmt.Errorf("XA_PREPARE_LOG_EVENT of %d bytes", len(data))
	}
	format := binary.LittleEndian.Uint32(data[1:])
	gtrid, bqual := binary.LittleEndian.Uint32(data[5:]), binary.LittleEndian.Uint32(data[9:])
	if uint64(13)+uint64(gtrid)+uint64(bqual) > uint64(len(data)) {
		return false, "", fmt.Errorf("XA_PREPARE_LOG_EVENT with an XID longer than the event")
	}
	g := data[13 : 13+gtrid]
	return data[0] != 0, xidKey(g, data[13+gtrid:13+gtrid+bqual], uint64(format)), nil
}

// xidPattern reads the XID of an XA statement as the server logs it,
// X'gtrid',X'bqual',formatID; or as a client may write it, with quoted text
// and the optional parts left out.
var xidPattern = regexp.MustCompile(`(?i)^XA\s+\w+\s+(X'[0-9a-f]*'|'(?:[^']|'')*')(?:\s*,\s*(X'[0-9a-f]*'|'(?:[^']|'')*'))?(?:\s*,\s*(\d+))?`)

func parseXID(q string) (string, error) {
	m := xidPattern.FindStringSubmatch(q)
	if m == nil {
		return "", fmt.Errorf("cannot read its XID")
	}
	literal := func(s string) []byte {
		if s == "" {
			return nil
		}
		if s[0] == 'X' || s[0] == 'x' {
			b, _ := hex.DecodeString(s[2 : len(s)-1])
			return b
		}
		return []byte(strings.ReplaceAll(s[1:len(s)-1], "''", "'"))
	}
	format := uint64(1) // the server's default
	if m[3] != "" {
		format, _ = strconv.ParseUint(m[3], 10, 64)
	}
	return xidKey(literal(m[1]), literal(m[2]), format), nil
}

func xidKey(gtrid, bqual []byte, format uint64) string {
	return fmt.Sprintf("X'%x',X'%x',%d", gtrid, bqual, format)
}

// mysqlGTID renders a MySQL GTID event's transaction as a GTID set.
func mysqlGTID(sid []byte, gno int64) string {
	if len(sid) != 16 {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x:%d", sid[0:4], sid[4:6], sid[6:8], sid[8:10], sid[10:16], gno)
}

// preparedXAWait bounds how long a snapshot waits for prepared XA
// transactions to end: a prepared one's rows are in the binlog before the
// snapshot's position and visible only after it.
const preparedXAWait = time.Minute

// waitPreparedXA waits until no XA transaction is prepared (XA RECOVER) before
// a snapshot, or streaming without one, starts: the rows of one prepared then
// would be in the binlog before the start, and in the tables only after it.
func (s *Source) waitPreparedXA(ctx context.Context, conn *client.Conn) error {
	started := time.Now()
	for logged := false; ; {
		res, err := conn.Execute("XA RECOVER")
		if err != nil {
			s.log.Warn("cannot list prepared XA transactions (XA RECOVER; MySQL needs XA_RECOVER_ADMIN): a transaction prepared when cdc starts reading would stop it at its XA COMMIT", "error", err)
			return nil
		}
		if res.RowNumber() == 0 {
			return nil
		}
		var xids []string
		for i := range res.RowNumber() {
			data, _ := res.GetString(i, 3)
			xids = append(xids, data)
		}
		if time.Since(started) > preparedXAWait {
			return fmt.Errorf("XA transactions %s have been prepared and neither committed nor rolled back for over %s: their rows would be lost to a snapshot (or stream) that starts now. End them (XA COMMIT or XA ROLLBACK; XA RECOVER lists them), then start cdc",
				strings.Join(xids, ", "), preparedXAWait)
		}
		if !logged {
			s.log.Info("waiting for prepared XA transactions to end before reading starts", "xids", strings.Join(xids, ","), "up_to", preparedXAWait)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
