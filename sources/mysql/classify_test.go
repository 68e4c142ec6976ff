package mysql

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/cdc-dev/cdc"
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
	}
}
