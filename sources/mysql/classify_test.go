package mysql

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/sources"
)

func TestClassifyMarksWhatPassesByItself(t *testing.T) {
	for _, c := range []struct {
		err       error
		transient bool
	}{
		// go-mysql's read of a connection the server closed: a restart under a query.
		{fmt.Errorf("read @@binlog_row_metadata: %w", fmt.Errorf("io.ReadFull(header) failed. err EOF: %w", mysql.ErrBadConn)), true},
		{fmt.Errorf("stream: %w", &mysql.MyError{Code: mysql.ER_SERVER_SHUTDOWN}), true},
		{&mysql.MyError{Code: mysql.ER_CON_COUNT_ERROR}, true},
		{&mysql.MyError{Code: erConnectionKilled}, true},
		{&mysql.MyError{Code: mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG}, false},
		{&mysql.MyError{Code: mysql.ER_ACCESS_DENIED_ERROR}, false},
		{errors.New("binlog_format is STATEMENT"), false},
	} {
		if got := cdc.IsTransient(classify(c.err)); got != c.transient {
			t.Errorf("classify(%v): transient %v, want %v", c.err, got, c.transient)
		}
		// A server shutting down was reached: a first start waits for it.
		var myErr *mysql.MyError
		want := errors.As(c.err, &myErr) && myErr.Code == mysql.ER_SERVER_SHUTDOWN
		if restarting := cdc.IsRestarting(classify(c.err)); restarting != want {
			t.Errorf("classify(%v): restarting %v, want %v", c.err, restarting, want)
		}
	}
}

// Another replica with cdc's server id, as MariaDB and MySQL say it.
func TestSameServerIDIsToldInBothDialects(t *testing.T) {
	for _, c := range []struct {
		err  *mysql.MyError
		same bool
	}{
		{&mysql.MyError{Code: erSlaveSameID, Message: "A slave with the same server_uuid/server_id is already connected"}, true},
		{&mysql.MyError{Code: mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG, Message: "A slave with the same server_uuid/server_id as this slave has connected to the master"}, true},
		{&mysql.MyError{Code: mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG, Message: "Could not find GTID state requested by slave in any binlog files"}, false},
	} {
		if got := sameServerID(c.err); got != c.same {
			t.Errorf("sameServerID(%d %q) = %v, want %v", c.err.Code, c.err.Message, got, c.same)
		}
	}
}

// snapshot.mode when_needed answers a purged binlog, however it is wrapped,
// and nothing else; the other modes answer none.
func TestWhenNeededSnapshotsAgainOnlyForALostPosition(t *testing.T) {
	purged := fmt.Errorf("resume: %w", purgedError(Position{File: "mysql-bin.000001", Offset: 4}, "binlog mysql-bin.000001 is no longer on the server"))
	other := errors.New("binlog_format is STATEMENT")
	for _, c := range []struct {
		mode  cdc.SnapshotMode
		err   error
		again bool
	}{
		{cdc.SnapshotWhenNeeded, purged, true},
		{cdc.SnapshotWhenNeeded, other, false},
		{cdc.SnapshotWhenNeeded, nil, false},
		{cdc.SnapshotInitial, purged, false},
	} {
		s := &Source{cfg: Config{Settings: sources.Settings{Snapshot: c.mode}}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if got := s.snapshotAgain(c.err); got != c.again {
			t.Errorf("mode %s, %v: snapshot again %v, want %v", c.mode, c.err, got, c.again)
		}
	}
}
