package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdc-dev/cdc"
)

// The server's answers that pass by themselves are transient; those saying it
// shuts down or starts up also say it was reached, so a first start waits.
func TestClassifyMarksWhatPassesByItself(t *testing.T) {
	for _, c := range []struct {
		code                  string
		transient, restarting bool
	}{
		{"57P01", true, true}, // terminating connection due to administrator command
		{"57P02", true, true},
		{"57P03", true, true}, // the database system is starting up
		{"08006", true, false},
		{"53300", true, false},
		{"55006", true, false},  // the slot is active for another process
		{"28P01", false, false}, // password authentication failed
		{"42501", false, false},
	} {
		err := classify(fmt.Errorf("connect to PostgreSQL: %w", &pgconn.PgError{Code: c.code}))
		if cdc.IsTransient(err) != c.transient || cdc.IsRestarting(err) != c.restarting {
			t.Errorf("SQLSTATE %s: transient %v, restarting %v; want %v, %v", c.code, cdc.IsTransient(err), cdc.IsRestarting(err), c.transient, c.restarting)
		}
	}
	if err := classify(errors.New("no answer")); cdc.IsTransient(err) {
		t.Errorf("an error without a server's answer is left as it is, got transient")
	}
}
