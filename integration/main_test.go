// Package integration runs the cdc daemon, as a separate process, against a
// private PostgreSQL cluster and an in-process Kafka-protocol broker, writes rows
// with SQL and compares what the topics hold, decoded with an independent Avro
// implementation, with what the tables hold.
package integration

import (
	"fmt"
	"os"
	"testing"

	"github.com/cdc-dev/cdc/integration/harness"
)

var (
	pg     *harness.Postgres
	maria  *harness.MariaDB
	cdcBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cdc-integration")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if cdcBin, err = harness.BuildCDC(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// A missing server is a failure, not a skip: `make test` installs it.
	if pg, err = harness.StartPostgres(harness.StreamEveryLargeTransaction); err != nil {
		fmt.Fprintln(os.Stderr, "start PostgreSQL:", err)
		return 1
	}
	defer pg.Stop()
	if maria, err = harness.StartMariaDB(); err != nil {
		fmt.Fprintln(os.Stderr, "start MariaDB:", err)
		return 1
	}
	defer maria.Stop()
	return m.Run()
}
